"""What the TRL entry points (``sft.py``, ``dpo.py``, ``grpo.py``) share, so that each one only says
what is its own: the trainer, its data, its config class.

- the parser: a recipe YAML plus flags onto our script arguments, TRL's ``<Method>Config`` and
  ``ModelConfig``, with unknown keys refused;
- the model side: ``embedded`` resolved to the prepared embedded model, the tokenizer given our chat
  template (the one the runtime serves with), ``model_init_kwargs`` from ``ModelConfig``;
- the end of a run: the model (or LoRA adapter) and tokenizer, the tool-format marker in every
  checkpoint, the data report, the metrics, an optional merged copy, the model card, the Hub push.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.recipe_files import Kind

if TYPE_CHECKING:
    from trl import ModelConfig, TrlParser

    from training.chat_templates import TemplateSpec
    from training.mixture import MixtureReport

logger = logging.getLogger(__name__)

EMBEDDED_MODEL = "embedded"


def trl_parser(script_class: type, config_class: type, prog: str) -> TrlParser:
    """TRL's parser over our script arguments, TRL's trainer config and ``ModelConfig``."""
    from trl import ModelConfig, TrlParser

    return TrlParser((script_class, config_class, ModelConfig), prog=prog)


def parse_recipe(
    script_class: type, config_class: type, prog: str, argv: list[str] | None
) -> tuple[Any, Any, Any]:
    """Recipe YAML + flags -> (our arguments, TRL's config, ``ModelConfig``); any problem (an unknown
    key, bad YAML, a value that cannot train) is a ``TrainingRecipeError`` of one line."""
    from training.recipe_parse import parse_training_recipe

    script_args, training_args, model_args = parse_training_recipe(
        trl_parser(script_class, config_class, prog), argv
    )
    return script_args, training_args, model_args


def recipe_path(argv: list[str]) -> str | None:
    """The value of ``--config`` in ``argv``, if any."""
    from training.recipe_parse import take_config_flag

    return take_config_flag(argv)[0]


def resolve_model_path(name_or_path: str | None) -> str:
    """``embedded`` -> the prepared embedded model dir (through the CLI: the trainers do not import datagen)."""
    if not name_or_path:
        raise ValueError(
            "no model_name_or_path: set it in the recipe (a Hub id, a local dir, or `embedded`)."
        )
    if name_or_path != EMBEDDED_MODEL:
        return name_or_path
    command = [sys.executable, "-m", "datagen.cli", "models", "prepare"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or not Path(lines[-1]).is_dir():
        raise RuntimeError(
            f"model_name_or_path: embedded needs the embedded model, but `{' '.join(command)}` failed "
            f"(exit {result.returncode}): {result.stderr.strip()[-500:]}; run `apigen-mt models prepare` and retry."
        )
    return lines[-1]


def resolve_checkpoint(resume: str | None, output_dir: str) -> str | bool | None:
    """``true``/``latest`` -> resume from the newest checkpoint in output_dir (an error if there is none)."""
    if resume is None or resume.lower() in {"false", "no", ""}:
        return None
    if resume.lower() in {"true", "latest", "yes"}:
        from transformers.trainer_utils import get_last_checkpoint

        if not Path(output_dir).is_dir() or get_last_checkpoint(output_dir) is None:
            raise ValueError(
                f"resume_from_checkpoint={resume!r}, but {output_dir} holds no checkpoint-* directory."
            )
        return True
    if not Path(resume).is_dir():
        raise ValueError(
            f"resume_from_checkpoint={resume!r} is not a directory; give a checkpoint dir or `latest`."
        )
    return resume


def format_marker_callback(spec: TemplateSpec) -> Any:
    """A callback that drops the tool-format marker into every checkpoint, so any checkpoint can be served."""
    from transformers import TrainerCallback

    from training.chat_templates import write_format_marker

    class FormatMarkerCallback(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and checkpoint.is_dir():
                write_format_marker(checkpoint, spec)

    return FormatMarkerCallback()


@dataclass
class PreparedModel:
    """The model side of a run, as every trainer here needs it."""

    spec: TemplateSpec
    tokenizer: Any
    path: str  # what the trainer loads (``embedded`` resolved to its directory)
    requested: str  # as the recipe named it, for the model card
    init_kwargs: dict[str, Any]


def prepare_model(script_args: Any, training_args: Any, model_args: ModelConfig) -> PreparedModel:
    """Template, model path, tokenizer (with the training template) and ``model_init_kwargs``; also
    turns the Trainer's own Hub push off (``push_after`` does it with our card and marker)."""
    from transformers import AutoTokenizer

    from training.chat_templates import resolve_template

    spec = resolve_template(script_args.template, script_args.tool_format)
    if getattr(training_args, "chat_template_path", None) is not None:
        raise ValueError(
            "set the chat template with `template:` (ours records its tool-call format), not chat_template_path."
        )
    requested = model_args.model_name_or_path
    model_path = resolve_model_path(requested)
    model_args.model_name_or_path = model_path
    tokenizer = AutoTokenizer.from_pretrained(
        model_path, revision=model_args.model_revision, trust_remote_code=training_args.trust_remote_code
    )
    tokenizer.chat_template = spec.read()
    init_kwargs = {
        "revision": model_args.model_revision,
        "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
    }
    training_args.model_init_kwargs = {**init_kwargs, **(training_args.model_init_kwargs or {})}
    return PreparedModel(spec, tokenizer, model_path, requested, init_kwargs)


def take_hub_push(training_args: Any) -> bool:
    """Whether to push after training. We push ourselves (our model card, the marker file); the
    Trainer's own push would create the repo at start-up and overwrite the card."""
    push, training_args.push_to_hub = bool(training_args.push_to_hub), False
    return push


def peft_and_quantization(model_args: ModelConfig) -> dict[str, Any]:
    """The trainer's ``peft_config`` (LoRA when ``use_peft``) and the model's quantization settings."""
    from trl import get_peft_config, get_quantization_config

    return {
        "peft_config": get_peft_config(model_args),
        "quantization_config": get_quantization_config(model_args),
    }


def train_on_mixture(
    trainer_class: type,
    *,
    method: str,
    script_args: Any,
    training_args: Any,
    model_args: ModelConfig,
    recipe: str | None,
    command: list[str] | None,
    card_extra: Callable[[Any, ModelConfig], dict[str, Any]] | None = None,
) -> Path:
    """An entry point whose data is a mixture of datasets (SFT's conversations, DPO's preference
    pairs): the model side, the mixture, TRL's trainer of the method, the run and its end."""
    from training.mixture import prepare_datasets

    prepared = prepare_model(script_args, training_args, model_args)
    train_dataset, eval_dataset, report = prepare_datasets(script_args, training_args, prepared.tokenizer)
    push = take_hub_push(training_args)
    trainer = trainer_class(
        model=prepared.path,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset if training_args.eval_strategy != "no" else None,
        processing_class=prepared.tokenizer,
        callbacks=[format_marker_callback(prepared.spec)],
        **peft_and_quantization(model_args),
    )
    return train_and_finish(
        trainer,
        method=method,
        script_args=script_args,
        training_args=training_args,
        model_args=model_args,
        prepared=prepared,
        report=report,
        recipe=recipe,
        command=command,
        push=push,
        card_extra=card_extra(training_args, model_args) if card_extra else None,
    )


def train_and_finish(trainer: Any, **finish: Any) -> Path:
    """Train (resuming when ``resume_from_checkpoint`` asks), then :func:`finish_run`."""
    training_args = finish["training_args"]
    resume = resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    result = trainer.train(resume_from_checkpoint=resume)
    return finish_run(trainer, result, **finish)


def finish_run(
    trainer: Any,
    result: Any,
    *,
    method: str,
    script_args: Any,
    training_args: Any,
    model_args: ModelConfig,
    prepared: PreparedModel,
    report: MixtureReport,
    recipe: str | None,
    command: list[str] | None,
    push: bool,
    card_extra: dict[str, Any] | None = None,
) -> Path:
    """Save everything a run leaves behind (module docstring); returns the output directory."""
    from training.chat_templates import write_format_marker
    from training.export import export_merged, push_output_dir
    from training.model_card import write_model_card

    trainer.save_model(training_args.output_dir)
    trainer.save_state()  # trainer_state.json: the loss and reward log of the run
    output_dir = Path(training_args.output_dir)
    if trainer.accelerator.is_main_process:
        write_format_marker(output_dir, prepared.spec)
        report.write(output_dir / "data_report.json")
        (output_dir / "train_metrics.json").write_text(json.dumps(result.metrics, indent=2) + "\n")
        if script_args.merge_lora and model_args.use_peft:
            export_merged(output_dir, output_dir / "merged", prepared.spec, prepared.init_kwargs)
        write_model_card(
            output_dir,
            script_args,
            training_args,
            model_args,
            prepared.spec,
            report,
            result.metrics,
            recipe,
            command,
            base_model=prepared.requested,
            method=method,
            extra=card_extra,
        )
        if push:
            push_output_dir(
                output_dir,
                training_args.hub_model_id,
                private=bool(training_args.hub_private_repo),
                token=training_args.hub_token,
            )
    trainer.accelerator.wait_for_everyone()
    return output_dir


def run_main(
    argv: list[str] | None,
    *,
    kind: Kind,
    parse_args: Callable[[list[str]], tuple[Any, Any, Any]],
    train: Callable[..., Path],
) -> int:
    """``main`` of an entry point: the recipe found by name or path, logging, parse, train."""
    from apigen_rules.redact import redact_text
    from training.recipe_files import resolve_config_flag
    from training.recipe_parse import check_data

    try:
        argv = resolve_config_flag(list(sys.argv[1:] if argv is None else argv), kind)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        # Parsing and check_data check the whole recipe (keys, values, template, data) before any model loads; a
        # problem there is the recipe's, so its ValueError is one line (later ones keep their traceback).
        script_args, training_args, model_args = parse_args(argv)
        check_data(script_args, recipe_path(argv) or f"training/{kind}.py")
    except (FileNotFoundError, ValueError) as exc:
        print(f"training.{kind}: {redact_text(' '.join(str(exc).split()))}", file=sys.stderr)
        return 2
    train(script_args, training_args, model_args, recipe=recipe_path(argv), command=argv)
    return 0
