"""Quality figures users check before they train: coverage, near-duplicates, benchmark
contamination, splits. Computed here (datagen) so the dataset card can show them; ``apigen-mt stats``
and ``apigen-mt view`` print and render the same dictionaries.

- :mod:`datagen.quality.corpus`: what the figures are computed over (a run, or exported rows)
- :mod:`datagen.quality.coverage`, :mod:`~datagen.quality.duplicates`,
  :mod:`~datagen.quality.contamination`: one figure each
- :mod:`datagen.quality.funnel`: the run's funnel counted per task (base and recombined apart)
- :mod:`datagen.quality.text`: the figures as plain text and markdown
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from datagen.quality.contamination import benchmark_references, contamination
from datagen.quality.corpus import Corpus, DialogueFacts, corpus_from_rows, corpus_from_run
from datagen.quality.coverage import DomainLoader, coverage, load_domain
from datagen.quality.duplicates import Settings, near_duplicates
from datagen.rundir import DatagenRun, read_rows


def _unique_names(corpora: Sequence[Corpus]) -> list[str]:
    names: list[str] = []
    for corpus in corpora:
        name, n = corpus.name, 2
        while name in names:
            name, n = f"{corpus.name} ({n})", n + 1
        names.append(name)
    return names


def quality_report(
    corpora: Sequence[Corpus],
    *,
    domains: DomainLoader = load_domain,
    duplicates: Settings | None = None,
) -> dict[str, Any]:
    """The figures of each corpus, and the near-duplicates across them when there are several."""
    names = _unique_names(corpora)
    settings = duplicates or Settings()
    dups = near_duplicates({n: c.duplicate_texts() for n, c in zip(names, corpora, strict=True)}, settings)
    report: dict[str, Any] = {"collections": {}}
    for name, corpus in zip(names, corpora, strict=True):
        entry: dict[str, Any] = {
            "size": {
                "instructions": len(corpus.instructions),
                "dialogues": len(corpus.dialogues),
            },
            "coverage": coverage(corpus, domains),
            "near_duplicates": {
                "rule": dups["rule"],
                "texts": "task instructions" if corpus.instructions else "each dialogue's user turns",
                **dups["within"][name],
            },
            "contamination": contamination(corpus, benchmark_references(corpus.envs, domains)),
        }
        if corpus.splits:
            entry["splits"] = corpus.splits
            if len(corpus.splits) > 1:
                by_split: dict[str, list[tuple[str, str]]] = {s: [] for s in corpus.splits}
                split_of = {
                    key: d.split or "train" for d in corpus.dialogues for key in (d.blueprint_id, d.id)
                }
                for item_id, text in corpus.duplicate_texts():
                    by_split[split_of.get(item_id, "train")].append((item_id, text))
                entry["near_duplicates"]["across_splits"] = near_duplicates(by_split, settings)["across"]
        report["collections"][name] = entry
    if len(corpora) > 1:
        report["near_duplicates_across"] = {"rule": dups["rule"], **dups["across"]}
    return report


def export_corpus(run: DatagenRun, splits: Mapping[str, Sequence[Mapping[str, Any]]]) -> Corpus:
    """The corpus of an export: its rows with their split, plus the instructions, users and policy
    checks of the blueprints they come from (read from the run)."""
    rows = [{**row, "split": split} for split, part in splits.items() for row in part]
    corpus = corpus_from_rows(run.root.name, rows)
    kept = {d.blueprint_id for d in corpus.dialogues}
    from_run = corpus_from_run(run)
    blueprints = {b.get("id"): b for b in read_rows(run.blueprints)}
    corpus.instructions = [(i, t) for i, t in from_run.instructions if i in kept]
    corpus.users = [str(blueprints[i]["user_id"]) for i in kept if blueprints.get(i, {}).get("user_id")]
    corpus.personas = [str(blueprints[i]["persona"]) for i in kept if blueprints.get(i, {}).get("persona")]
    corpus.policy_hits = from_run.policy_hits
    return corpus


__all__ = [
    "Corpus",
    "DialogueFacts",
    "Settings",
    "corpus_from_rows",
    "corpus_from_run",
    "export_corpus",
    "quality_report",
]
