"""Preference training (DPO) of function-calling models with TRL, on pairs of a verified and a failed
dialogue of one task (``apigen-mt export --output-format preference``).

    accelerate launch [--config_file recipes/accelerate/<cfg>.yaml] training/dpo.py \
        --config recipes/dpo/<model>/<variant>.yaml [--any_option value ...]
    apigen-mt train --method dpo --config <model>/<variant> [--accelerate-config <cfg>] [...]

The shape of ``training/sft.py`` (``training.entrypoint``): the recipe sets defaults for our script
arguments (``sources`` of layout ``preference``, or ``--dataset_path DIR``; the chat template), TRL's
``DPOConfig`` (``beta``, ``loss_type``, ...) and ``ModelConfig`` (``use_peft`` for LoRA, where the
reference model is the base with the adapter switched off). Usually the model is an SFT output
(``outputs/sft/<model>-full`` or a LoRA run's ``merged/``). The prompt, chosen and rejected messages
are rendered with the same chat template as SFT and the runtime, with the row's tools; pairs over
``max_length`` are dropped, never cut. The output directory gets what an SFT run leaves: the model,
the tokenizer with the template, ``apigen_mt.json``, ``data_report.json``, the model card, optionally
``merged/`` and a Hub push.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if __package__ in (None, ""):  # run as a file by `accelerate launch training/dpo.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.arguments import ScriptArguments  # noqa: E402  (needs the path fix above)
from training.entrypoint import (  # noqa: E402
    parse_recipe,
    run_main,
    train_on_mixture,
)

if TYPE_CHECKING:
    from trl import DPOConfig, ModelConfig

logger = logging.getLogger("training.dpo")


@dataclass
class DPOScriptArguments(ScriptArguments):
    """``ScriptArguments`` for preference pairs: ``dataset_path`` is read as a preference export."""

    DATASET_PATH_LAYOUT: ClassVar[str] = "preference"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.per_turn_examples:
            raise ValueError(
                "per_turn_examples applies to SFT; a preference pair is already one turn (or one dialogue)."
            )
        wrong = [(s.path, s.layout) for s in self.sources if s.layout != "preference"]
        if wrong:
            raise ValueError(
                f"DPO trains on preference pairs, but sources {wrong} are conversations; give an "
                "`apigen-mt export --output-format preference` folder (or any prompt/chosen/rejected dataset) "
                "with layout: preference."
            )


def parse_args(argv: list[str] | None = None) -> tuple[DPOScriptArguments, DPOConfig, ModelConfig]:
    """Recipe YAML + flags -> the three option groups; unknown keys and flags raise ``ValueError``."""
    from trl import DPOConfig

    return parse_recipe(DPOScriptArguments, DPOConfig, "training/dpo.py", argv)


def dpo_settings(training_args: DPOConfig, model_args: ModelConfig) -> dict[str, Any]:
    """What the model card states about the preference loss."""
    reference = (
        "the base model with the LoRA adapter off"
        if model_args.use_peft
        else "a frozen copy of the base model"
    )
    return {"beta": training_args.beta, "loss_type": training_args.loss_type, "reference": reference}


def train(
    script_args: DPOScriptArguments,
    training_args: DPOConfig,
    model_args: ModelConfig,
    recipe: str | None = None,
    command: list[str] | None = None,
) -> Path:
    """Run one DPO job as configured; returns the output directory."""
    from trl import DPOTrainer

    return train_on_mixture(
        DPOTrainer,
        method="dpo",
        script_args=script_args,
        training_args=training_args,
        model_args=model_args,
        recipe=recipe,
        command=command,
        card_extra=dpo_settings,
    )


def main(argv: list[str] | None = None) -> int:
    """The DPO entry point: recipe and flags parsed, then training; errors a user can fix are one line
    (see :func:`training.entrypoint.run_main`). Returns the exit code."""
    return run_main(argv, kind="dpo", parse_args=parse_args, train=train)


if __name__ == "__main__":
    raise SystemExit(main())
