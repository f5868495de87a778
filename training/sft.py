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

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a file by `accelerate launch training/sft.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.arguments import ScriptArguments  # noqa: E402  (needs the path fix above)

if TYPE_CHECKING:
    from trl import ModelConfig, SFTConfig, TrlParser

logger = logging.getLogger("training.sft")

EMBEDDED_MODEL = "embedded"


def build_parser() -> TrlParser:
    from trl import ModelConfig, SFTConfig, TrlParser

    return TrlParser((ScriptArguments, SFTConfig, ModelConfig), prog="training/sft.py")


def parse_args(argv: list[str] | None = None) -> tuple[ScriptArguments, SFTConfig, ModelConfig]:
    """Recipe YAML + flags -> the three option groups; unknown keys and flags raise ``ValueError``."""
    script_args, training_args, model_args = build_parser().parse_args_and_config(args=argv)
    return script_args, training_args, model_args


def recipe_path(argv: list[str]) -> str | None:
    return argv[argv.index("--config") + 1] if "--config" in argv[:-1] else None


def resolve_model_path(name_or_path: str | None) -> str:
    """``embedded`` -> the prepared embedded model dir (through the CLI: training does not import datagen)."""
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


def prepare_datasets(
    script_args: ScriptArguments, training_args: SFTConfig, tokenizer: Any
) -> tuple[Any, Any, Any]:
    """The mixture, optionally one example per assistant turn, over-long examples dropped, split."""
    from training.mixture import build_mixture, drop_over_long, expand_per_turn

    dataset, report = build_mixture(script_args.sources, seed=training_args.seed)
    report.per_turn_examples = script_args.per_turn_examples
    if script_args.per_turn_examples:
        dataset = expand_per_turn(dataset, num_proc=training_args.dataset_num_proc)
    dataset = drop_over_long(
        dataset, tokenizer, training_args.max_length, report, training_args.dataset_num_proc
    )
    eval_dataset = None
    if script_args.test_split_size:
        size = script_args.test_split_size
        split = dataset.train_test_split(test_size=int(size) if size >= 1 else size, seed=training_args.seed)
        dataset, eval_dataset = split["train"], split["test"]
    return dataset, eval_dataset, report


def format_marker_callback(spec: Any) -> Any:
    """A callback that drops the tool-format marker into every checkpoint, so any checkpoint can be served."""
    from transformers import TrainerCallback

    from training.chat_templates import write_format_marker

    class FormatMarkerCallback(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and checkpoint.is_dir():
                write_format_marker(checkpoint, spec)

    return FormatMarkerCallback()


def train(
    script_args: ScriptArguments,
    training_args: SFTConfig,
    model_args: ModelConfig,
    recipe: str | None = None,
    command: list[str] | None = None,
) -> Path:
    """Run one fine-tuning job as configured; returns the output directory."""
    from transformers import AutoTokenizer
    from trl import SFTTrainer, get_peft_config, get_quantization_config

    from training.chat_templates import resolve_template, write_format_marker
    from training.export import export_merged, push_output_dir
    from training.model_card import write_model_card

    spec = resolve_template(script_args.template, script_args.tool_format)
    if training_args.chat_template_path is not None:
        raise ValueError(
            "set the chat template with `template:` (ours records its tool-call format), not chat_template_path."
        )
    if not training_args.assistant_only_loss:
        logger.warning("assistant_only_loss is off: the loss also covers system, user and tool tokens.")
    requested_model = model_args.model_name_or_path  # `embedded` or a Hub id, for the model card
    model_path = resolve_model_path(requested_model)
    model_args.model_name_or_path = model_path

    tokenizer = AutoTokenizer.from_pretrained(
        model_path, revision=model_args.model_revision, trust_remote_code=training_args.trust_remote_code
    )
    tokenizer.chat_template = spec.read()
    train_dataset, eval_dataset, report = prepare_datasets(script_args, training_args, tokenizer)

    model_init_kwargs = {
        "revision": model_args.model_revision,
        "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
    }
    training_args.model_init_kwargs = {**model_init_kwargs, **(training_args.model_init_kwargs or {})}
    # We push ourselves after training (our model card, the marker file); the Trainer's own push
    # would create the repo at start-up and overwrite the card.
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False

    trainer = SFTTrainer(
        model=model_path,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset if training_args.eval_strategy != "no" else None,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        quantization_config=get_quantization_config(model_args),
        callbacks=[format_marker_callback(spec)],
    )
    resume = resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(training_args.output_dir)
    trainer.save_state()  # trainer_state.json: the loss log of the run

    output_dir = Path(training_args.output_dir)
    if trainer.accelerator.is_main_process:
        write_format_marker(output_dir, spec)
        report.write(output_dir / "data_report.json")
        (output_dir / "train_metrics.json").write_text(json.dumps(result.metrics, indent=2) + "\n")
        if script_args.merge_lora and model_args.use_peft:
            export_merged(output_dir, output_dir / "merged", spec, model_init_kwargs)
        write_model_card(
            output_dir,
            script_args,
            training_args,
            model_args,
            spec,
            report,
            result.metrics,
            recipe,
            base_model=requested_model,
        )
        if push_to_hub:
            push_output_dir(
                output_dir,
                training_args.hub_model_id,
                private=bool(training_args.hub_private_repo),
                token=training_args.hub_token,
            )
    trainer.accelerator.wait_for_everyone()
    return output_dir


def main(argv: list[str] | None = None) -> int:
    from training.recipe_files import resolve_config_flag

    try:
        argv = resolve_config_flag(list(sys.argv[1:] if argv is None else argv))  # a recipe name or a path
    except FileNotFoundError as exc:
        print(f"training.sft: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    script_args, training_args, model_args = parse_args(argv)
    train(script_args, training_args, model_args, recipe=recipe_path(argv), command=argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
