"""The dataset card (README.md with YAML metadata) generated from a run directory."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from datagen.rundir import DatagenRun


def _recipe_text(run_dir: Path) -> tuple[str, dict[str, Any]]:
    data = DatagenRun(run_dir).read_recipe()
    return (yaml.safe_dump(data, sort_keys=False).strip() if data else ""), data


DATA_FILES = {"hf": "data/{split}-*.parquet", "sharegpt": "{split}.json", "jsonl": "{split}.jsonl"}
FACTS_FILE = "export.json"


def export_facts(
    run_dir: Path,
    splits: dict[str, list[dict[str, Any]]],
    phase2: dict[str, Any],
    *,
    fmt: str,
    skipped: list[str],
) -> dict[str, Any]:
    """What the card states, machine-readable: written next to the data as ``export.json`` so that
    a model trained on it (training/model_card.py) can name the run's funnel without parsing prose."""
    phase1 = DatagenRun(run_dir).read_phase1_stats() or None
    rows = [r for part in splits.values() for r in part]
    models: dict[str, list[str]] = {}
    for row in rows:
        for role, name in (row["source_models"] or {}).items():
            models.setdefault(role, [])
            if name not in models[role]:
                models[role].append(name)
    return {
        "run_dir": str(run_dir),
        "format": fmt,
        "splits": {
            s: {"rows": len(part), "blueprints": len({r["blueprint_id"] for r in part})}
            for s, part in splits.items()
        },
        "domains": sorted({r["env"] for r in rows}),
        "models": models,
        "agent_modes": sorted({r["agent_mode"] for r in rows}),
        "phase1": phase1,
        "phase2": phase2,
        "skipped": skipped,
    }


def build_card(facts: dict[str, Any], run_dir: Path, *, license: str | None, pretty_name: str):
    from huggingface_hub import DatasetCard, DatasetCardData

    recipe, recipe_data = _recipe_text(run_dir)
    count = sum(split["rows"] for split in facts["splits"].values())
    size = (
        "n<1K"
        if count < 1000
        else "1K<n<10K"
        if count < 10_000
        else "10K<n<100K"
        if count < 100_000
        else "n>100K"
    )
    pattern = DATA_FILES[facts["format"]]
    card_data = DatasetCardData(
        license=license or recipe_data.get("license") or "other",
        language=["en"],
        pretty_name=pretty_name,
        size_categories=[size],
        task_categories=["text-generation"],
        tags=["function-calling", "tool-use", "multi-turn", "synthetic", "apigen-mt"],
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": pattern.format(split=s)} for s in facts["splits"]],
            }
        ],
    )
    template = resources.files("datagen.export").joinpath("card_template.md").read_text(encoding="utf-8")
    return DatasetCard.from_template(
        card_data,
        template_str=template,
        pretty_name=pretty_name,
        splits=[{"name": s, **split} for s, split in facts["splits"].items()],
        domains=facts["domains"],
        models=facts["models"],
        agent_modes=facts["agent_modes"],
        phase1=json.dumps(facts["phase1"], indent=2) if facts["phase1"] is not None else "",
        phase2=json.dumps(facts["phase2"], indent=2),
        recipe=recipe,
        skipped=facts["skipped"],
    )
