"""The dataset card (README.md with YAML metadata) generated from a run directory.

The metadata is what the Hub reads: the licence (with ``license_name`` and ``license_link`` when it
is ``other``), the ``configs`` that point ``load_dataset`` at the data files of the export, and the
usual task tags. The text states the teacher models and their licence terms, the toolkit build, the
export date, the split rule and the run's funnels.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from apigen_rules.export_files import DATA_FILES, LICENSE_FILE
from apigen_rules.redact import redact_config
from datagen.export.provenance import teachers, toolkit_build, utc_now
from datagen.export.rows import split_rule
from datagen.rundir import DatagenRun


def _recipe_text(run_dir: Path) -> tuple[str, dict[str, Any]]:
    # A run directory written before recipes were saved redacted may still hold credentials.
    data = redact_config(DatagenRun(run_dir).read_recipe())
    return (yaml.safe_dump(data, sort_keys=False).strip() if data else ""), data


@dataclass(frozen=True)
class License:
    """The card's licence: a Hub licence id, or ``other`` with a name and a link."""

    license: str
    license_name: str | None = None
    license_link: str | None = None

    def metadata(self) -> dict[str, str]:
        fields = {"license": self.license}
        if self.license == "other":
            fields |= {"license_name": self.license_name or "", "license_link": self.license_link or ""}
        return fields


def resolve_license(
    run_dir: Path, license: str | None, license_name: str | None, license_link: str | None
) -> License:
    """Flags first, then the recipe's ``license``/``license_name``/``license_link``, else ``other``.

    ``other`` with neither name nor link becomes "unspecified" with a LICENSE.md in the export that
    says so and lists the teacher models' terms; a name without a link (or the reverse) is an error.
    """
    _, recipe = _recipe_text(run_dir)
    chosen = license or recipe.get("license") or "other"
    name = license_name or (recipe.get("license_name") if not license else None)
    link = license_link or (recipe.get("license_link") if not license else None)
    if chosen != "other":
        return License(chosen)
    if not name and not link:
        return License("other", "unspecified", LICENSE_FILE)
    if not (name and link):
        missing = "license_link" if name else "license_name"
        raise ValueError(
            f"license: other needs both license_name and license_link; {missing} is missing. "
            f"Set it in the recipe or pass --{missing.replace('_', '-')} (a URL or a file name in the export)."
        )
    return License("other", name, link)


def export_facts(
    run_dir: Path,
    splits: dict[str, list[dict[str, Any]]],
    phase2: dict[str, Any],
    *,
    fmt: str,
    skipped: list[str],
    seed: int,
    fractions: dict[str, float],
    license: License,
    group_by: str = "blueprint",
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
        "created": utc_now(),
        "toolkit": toolkit_build(),
        "license": license.metadata(),
        "split": {"seed": seed, **fractions, "group_by": group_by, "rule": split_rule(group_by)},
        "splits": {
            s: {"rows": len(part), "blueprints": len({r["blueprint_id"] for r in part})}
            for s, part in splits.items()
        },
        "domains": sorted({r["env"] for r in rows}),
        "models": models,
        "teachers": teachers(models),
        "agent_modes": sorted({r["agent_mode"] for r in rows}),
        "verification": dict(Counter(r.get("verification", "state") for r in rows)),
        "user_modes": sorted({r.get("user_mode", "model") for r in rows}),
        "phase1": phase1,
        "phase2": phase2,
        "quality": quality_figures(run_dir, splits),
        "skipped": skipped,
    }


def data_fingerprint(out_dir: Path, files: list[Path]) -> str:
    """sha256 over the export's data files (their paths in the export and their bytes).

    The card's config carries it because ``datasets`` (5.2) keys its cache of a local folder whose
    card has ``configs`` by the folder's name, the card's configs and its ``dataset_info``, not by
    what the data files hold: without it, ``load_dataset(DIR)`` after a re-export into the same
    folder, or into another folder of the same name, returns the rows of the earlier export."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(out_dir).as_posix().encode("utf-8") + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def quality_figures(run_dir: Path, splits: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Coverage, near-duplicates (within the data and across its splits) and benchmark contamination
    of the exported rows and the instructions of their blueprints (``datagen.quality``)."""
    from datagen.quality import export_corpus, quality_report
    from datagen.rundir import DatagenRun

    report = quality_report([export_corpus(DatagenRun(run_dir), splits)])
    return next(iter(report["collections"].values()))


def _size_category(count: int) -> str:
    for limit, name in ((1000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if count < limit:
            return name
    return "n>100K"


def build_card(facts: dict[str, Any], run_dir: Path, *, pretty_name: str):
    from huggingface_hub import DatasetCard, DatasetCardData

    recipe, _ = _recipe_text(run_dir)
    pattern = DATA_FILES[facts["format"]]
    card_data = DatasetCardData(
        **facts["license"],
        language=["en"],
        pretty_name=pretty_name,
        size_categories=[_size_category(sum(split["rows"] for split in facts["splits"].values()))],
        task_categories=["text-generation"],
        tags=["function-calling", "tool-use", "multi-turn", "synthetic", "apigen-mt"],
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": pattern.format(split=s)} for s in facts["splits"]],
                # What datasets keys its cache on (data_fingerprint): a re-export is never read stale.
                "description": f"apigen-mt export; data files sha256 {facts['data_sha256']}",
            }
        ],
    )
    template = resources.files("datagen.export").joinpath("card_template.md").read_text(encoding="utf-8")
    return DatasetCard.from_template(
        card_data,
        template_str=template,
        pretty_name=pretty_name,
        fmt=facts["format"],
        license=facts["license"],
        teachers=facts["teachers"],
        toolkit=facts["toolkit"],
        created=facts["created"],
        split=facts["split"],
        splits=[{"name": s, **split} for s, split in facts["splits"].items()],
        domains=facts["domains"],
        agent_modes=facts["agent_modes"],
        verification=facts.get("verification") or {},
        user_modes=facts.get("user_modes", ["model"]),
        phase1=json.dumps(facts["phase1"], indent=2) if facts["phase1"] is not None else "",
        phase2=json.dumps(facts["phase2"], indent=2),
        quality=_quality_markdown(facts.get("quality")),
        recipe=recipe,
        skipped=facts["skipped"],
        preference=facts.get("preference"),
        provenance=facts.get("provenance"),
    )


def _quality_markdown(quality: dict[str, Any] | None) -> str:
    from datagen.quality.text import to_markdown

    if not quality:
        return ""
    body = to_markdown({"collections": {"_": quality}}, level=2)
    return body.split("\n", 1)[1].strip()  # the card's own heading replaces the collection's


def license_file(facts: dict[str, Any]) -> str:
    """LICENSE.md of an export whose licence was left unspecified: says so, and lists the terms that
    do apply (the teacher models')."""
    template = resources.files("datagen.export").joinpath("license_template.md").read_text(encoding="utf-8")
    import jinja2

    return jinja2.Template(template, keep_trailing_newline=True).render(teachers=facts["teachers"])
