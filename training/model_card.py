"""The model card (README.md) of a trained checkpoint: base model, format, data with counts, recipe."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.chat_templates import TemplateSpec
from training.mixture import MixtureReport

if TYPE_CHECKING:
    from trl import ModelConfig, SFTConfig

    from training.arguments import ScriptArguments

CARD_TEMPLATE = Path(__file__).parent / "model_card.md.jinja"


def dataset_ids(report: MixtureReport) -> list[str]:
    """Hub ids for the card's metadata: Hub sources by name, local exports by the repo their card names."""
    ids: list[str] = []
    for source in report.sources:
        card = source.card.get("card", {}) if source.card else {}
        pushed = card.get("dataset_id") or card.get("repo_id") if isinstance(card, dict) else None
        if isinstance(pushed, str):
            ids.append(pushed)
        elif not Path(source.path).exists() and "/" in source.path:
            ids.append(source.path)
    return sorted(set(ids))


def render_model_card(
    script_args: ScriptArguments,
    training_args: SFTConfig,
    model_args: ModelConfig,
    spec: TemplateSpec,
    report: MixtureReport,
    metrics: dict[str, Any],
    recipe: str | None,
    merged: bool,
    command: list[str] | None = None,
) -> str:
    import jinja2

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    template = environment.from_string(CARD_TEMPLATE.read_text(encoding="utf-8"))
    precision = "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32"
    report_dict = report.to_dict()
    for source, entry in zip(report.sources, report_dict["sources"], strict=True):
        entry["rows_failed"] = source.rows_failed
    return template.render(
        library_name="peft" if model_args.use_peft else "transformers",
        base_model=model_args.model_name_or_path,
        title=training_args.hub_model_id or Path(training_args.output_dir).name,
        datasets=dataset_ids(report),
        use_peft=model_args.use_peft,
        lora_r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        merged=merged,
        template=spec.name,
        tool_format=spec.tool_format,
        per_turn=script_args.per_turn_examples,
        max_length=training_args.max_length,
        sources=report_dict["sources"],
        recipe_path=recipe,
        recipe_text=Path(recipe).read_text(encoding="utf-8").strip()
        if recipe and Path(recipe).is_file()
        else "",
        learning_rate=training_args.learning_rate,
        epochs=training_args.num_train_epochs,
        max_steps=training_args.max_steps,
        batch_size=training_args.per_device_train_batch_size,
        grad_accum=training_args.gradient_accumulation_steps,
        packing=training_args.packing,
        padding_free=training_args.padding_free,
        precision=precision,
        seed=training_args.seed,
        metrics=metrics,
        command=shlex.join(["training/sft.py", *command]) if command else "",
    )


def write_model_card(
    output_dir: Path,
    script_args: ScriptArguments,
    training_args: SFTConfig,
    model_args: ModelConfig,
    spec: TemplateSpec,
    report: MixtureReport,
    metrics: dict[str, Any],
    recipe: str | None,
    command: list[str] | None = None,
) -> Path:
    merged = (output_dir / "merged").is_dir()
    text = render_model_card(
        script_args, training_args, model_args, spec, report, metrics, recipe, merged, command
    )
    path = output_dir / "README.md"
    path.write_text(text, encoding="utf-8")
    if merged:
        (output_dir / "merged" / "README.md").write_text(text, encoding="utf-8")
    return path
