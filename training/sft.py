"""Supervised fine-tuning of function-calling models with TRL.

    accelerate launch [--config_file recipes/accelerate/<cfg>.yaml] training/sft.py \
        --config recipes/sft/<model>/<variant>.yaml [--any_option value ...]
    apigen-mt train --config <model>/<variant> [--accelerate-config <cfg>] [--any_option value ...]

``--config`` takes a recipe file or the name of a packaged one (``qwen2.5-7b/full``); ``python -m
training.sft`` and ``accelerate launch -m training.sft`` run this file from an installed copy.

The recipe YAML sets defaults for three groups of options, and flags override them: ours
(``training.arguments.ScriptArguments``: data sources, chat template, per-turn examples, LoRA merge),
TRL's ``SFTConfig`` and TRL's ``ModelConfig`` (``use_peft`` turns on LoRA through PEFT). An unknown key
is an error. ``model_name_or_path: embedded`` means the toolkit's embedded SmolLM2 model, located (and
prepared if needed) with ``apigen-mt models prepare`` at run time.

The loss falls on assistant tokens only (text and tool calls), through the ``{% generation %}`` markers
of the chosen template. The output directory gets the model (or LoRA adapter), the tokenizer with the
training chat template, ``apigen_mt.json`` naming the tool-call format, ``data_report.json`` and a
model card; optionally a merged model and a push to the Hub.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):  # run as a file by `accelerate launch training/sft.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.arguments import ScriptArguments  # noqa: E402  (needs the path fix above)
from training.entrypoint import (  # noqa: E402
    EMBEDDED_MODEL,
    parse_recipe,
    resolve_model_path,
    run_main,
    train_on_mixture,
)

if TYPE_CHECKING:
    from trl import ModelConfig, SFTConfig

logger = logging.getLogger("training.sft")

__all__ = ["EMBEDDED_MODEL", "main", "parse_args", "resolve_model_path", "train"]


def parse_args(argv: list[str] | None = None) -> tuple[ScriptArguments, SFTConfig, ModelConfig]:
    """Recipe YAML + flags -> the three option groups; unknown keys and flags raise ``ValueError``."""
    from trl import SFTConfig

    return parse_recipe(ScriptArguments, SFTConfig, "training/sft.py", argv)


def train(
    script_args: ScriptArguments,
    training_args: SFTConfig,
    model_args: ModelConfig,
    recipe: str | None = None,
    command: list[str] | None = None,
) -> Path:
    """Run one fine-tuning job as configured; returns the output directory."""
    from trl import SFTTrainer

    if not training_args.assistant_only_loss:
        logger.warning("assistant_only_loss is off: the loss also covers system, user and tool tokens.")
    return train_on_mixture(
        SFTTrainer,
        method="sft",
        script_args=script_args,
        training_args=training_args,
        model_args=model_args,
        recipe=recipe,
        command=command,
    )


def main(argv: list[str] | None = None) -> int:
    """The SFT entry point: recipe and flags parsed, then training; errors a user can fix are one line
    (see :func:`training.entrypoint.run_main`). Returns the exit code."""
    return run_main(argv, kind="sft", parse_args=parse_args, train=train)


if __name__ == "__main__":
    raise SystemExit(main())
