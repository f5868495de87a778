"""The dataset card (README.md with YAML metadata) generated from a run directory."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


def _recipe_text(run_dir: Path) -> tuple[str, dict[str, Any]]:
    for name in ("config.yaml", "config.json", "resolved_config.yaml", "resolved_config.json"):
        path = run_dir / name
        if path.exists():
            text = path.read_text(encoding="utf-8")
            data = yaml.safe_load(text) if path.suffix == ".yaml" else json.loads(text)
            return yaml.safe_dump(data, sort_keys=False).strip(), data if isinstance(data, dict) else {}
    return "", {}


def build_card(
    run_dir: Path,
    splits: dict[str, list[dict[str, Any]]],
    phase2: dict[str, Any],
    *,
    license: str | None,
    pretty_name: str,
    skipped: list[str],
):
    from huggingface_hub import DatasetCard, DatasetCardData

    recipe, recipe_data = _recipe_text(run_dir)
    phase1_path = run_dir / "stats.json"
    phase1 = phase1_path.read_text(encoding="utf-8").strip() if phase1_path.exists() else ""
    rows = [r for part in splits.values() for r in part]
    models: dict[str, list[str]] = {}
    for row in rows:
        for role, name in (row["source_models"] or {}).items():
            models.setdefault(role, [])
            if name not in models[role]:
                models[role].append(name)
    count = len(rows)
    size = "n<1K" if count < 1000 else "1K<n<10K" if count < 10_000 else "10K<n<100K" if count < 100_000 else "n>100K"
    card_data = DatasetCardData(
        license=license or recipe_data.get("license") or "other",
        language=["en"],
        pretty_name=pretty_name,
        size_categories=[size],
        task_categories=["text-generation"],
        tags=["function-calling", "tool-use", "multi-turn", "synthetic", "apigen-mt"],
        configs=[
            {"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits]}
        ],
    )
    template = resources.files("datagen.export").joinpath("card_template.md").read_text(encoding="utf-8")
    return DatasetCard.from_template(
        card_data,
        template_str=template,
        pretty_name=pretty_name,
        splits=[
            {"name": s, "rows": len(part), "blueprints": len({r["blueprint_id"] for r in part})}
            for s, part in splits.items()
        ],
        domains=sorted({r["env"] for r in rows}),
        models=models,
        agent_modes=sorted({r["agent_mode"] for r in rows}),
        phase1=phase1,
        phase2=json.dumps(phase2, indent=2),
        recipe=recipe,
        skipped=skipped,
    )
