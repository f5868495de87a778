"""The model card (README.md) of a trained checkpoint: base model, method, format, data with counts, recipe."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apigen_rules.redact import redact_text
from training.chat_templates import TemplateSpec
from training.mixture import MixtureReport

if TYPE_CHECKING:
    from trl import ModelConfig, SFTConfig

    from training.arguments import ScriptArguments

CARD_TEMPLATE = Path(__file__).parent / "model_card.md.jinja"
# `model_name_or_path: embedded` is apigen-mt's conversion of this Hub model (the dataset card,
# datagen/export/provenance.py, names the same id; a test checks they agree).
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HUB_CACHE_DIR = re.compile(r"(?:^|/)models--([^/]+?)--([^/]+)/snapshots/[^/]+/?$")
# Each entry point's method: the file that ran and TRL's trainer (the card's first sentence and tags).
METHODS = {
    "sft": ("training/sft.py", "SFTTrainer"),
    "dpo": ("training/dpo.py", "DPOTrainer"),
    "grpo": ("training/grpo.py", "GRPOTrainer"),
}


def base_model_hub_id(name_or_path: str | None) -> str | None:
    """The Hub id of the base model, for the card's ``base_model`` (which the Hub refuses as a local
    path): ``embedded`` -> its Hub id, a Hub id as is, a snapshot in the Hugging Face cache -> the id
    it was downloaded from; None for any other local directory."""
    if not name_or_path:
        return None
    if name_or_path == "embedded":
        return EMBEDDED_HUB_ID
    if not Path(name_or_path).exists():
        return name_or_path if _HUB_ID.match(name_or_path) else None
    cached = _HUB_CACHE_DIR.search(Path(name_or_path).resolve().as_posix())
    return f"{cached.group(1)}/{cached.group(2)}" if cached else None


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
    base_model: str | None = None,
    library_name: str | None = None,
    method: str = "sft",
    extra: dict[str, Any] | None = None,
) -> str:
    """``base_model``: the model as the recipe named it (before ``embedded`` became a local path);
    ``library_name``: defaults to ``peft`` for an adapter, ``transformers`` for full weights;
    ``method``: sft, dpo or grpo; ``extra``: the method's own settings, shown as they are."""
    import jinja2

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    template = environment.from_string(CARD_TEMPLATE.read_text(encoding="utf-8"))
    precision = "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32"
    report_dict = report.to_dict()
    for source, entry in zip(report.sources, report_dict["sources"], strict=True):
        entry["rows_failed"] = source.rows_failed
    entry_point, trainer = METHODS[method]
    card = template.render(
        method=method,
        entry_point=entry_point,
        trainer=trainer,
        method_settings=extra or {},
        assistant_only_loss=bool(getattr(training_args, "assistant_only_loss", False)),
        library_name=library_name or ("peft" if model_args.use_peft else "transformers"),
        base_model=base_model_hub_id(base_model or model_args.model_name_or_path),
        base_model_path=model_args.model_name_or_path,
        title=training_args.hub_model_id or Path(training_args.output_dir).name,
        datasets=dataset_ids(report),
        use_peft=model_args.use_peft,
        lora_r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        merged=merged,
        template=spec.name,
        tool_format=spec.tool_format,
        per_turn=getattr(script_args, "per_turn_examples", False),
        max_length=getattr(training_args, "max_length", None),
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
        packing=getattr(training_args, "packing", False),
        padding_free=getattr(training_args, "padding_free", False),
        precision=precision,
        seed=training_args.seed,
        metrics=metrics,
        command=shlex.join([entry_point, *command]) if command else "",
    )
    # The card embeds the recipe file and the command line verbatim and is pushed with the model:
    # a `hub_token:` in the recipe or a `--hub_token` flag must not be uploaded with it.
    return redact_text(card)


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
    base_model: str | None = None,
    method: str = "sft",
    extra: dict[str, Any] | None = None,
) -> Path:
    """The card of the output (an adapter with ``use_peft``) and, if there is one, of ``merged/``
    (full weights: ``library_name: transformers``)."""
    merged = (output_dir / "merged").is_dir()
    args = (script_args, training_args, model_args, spec, report, metrics, recipe, merged, command)
    path = output_dir / "README.md"
    kwargs = {"base_model": base_model, "method": method, "extra": extra}
    path.write_text(render_model_card(*args, **kwargs), encoding="utf-8")
    if merged:
        text = render_model_card(*args, **kwargs, library_name="transformers")
        (output_dir / "merged" / "README.md").write_text(text, encoding="utf-8")
    return path
