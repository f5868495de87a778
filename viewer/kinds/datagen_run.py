"""A datagen run directory: overview (funnel, tokens, models, recipe, quality), blueprints (accepted
and rejected) and dialogues (verified and failed)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from apigen_rules.fields import count, items, mapping, number, text_of, texts
from apigen_rules.redact import redact_config
from datagen.quality import corpus_from_run
from datagen.quality.funnel import KINDS, run_funnel
from datagen.rundir import DatagenRun, read_rows
from viewer import dialogues
from viewer.charts import funnel_svg
from viewer.kinds.base import Kind, Options, quality_section, settings_section
from viewer.site import Collection, Column, Section, Source, slugify
from viewer.untrusted import formatted

BLUEPRINT_COLUMNS = [
    Column("status", "status", filter=True),
    Column("kind", "kind", filter=True),
    Column("stage", "rejected at", filter=True),
    Column("tools", "tools", "list", filter=True, search=True),
    Column("user", "user", search=True),
    Column("persona", "persona", search=True),
    Column("rounds", "rounds", "num"),
    Column("verified", "verified dialogues", "num"),
    Column("instruction", "instruction", search=True),
]
DIALOGUE_COLUMNS = [
    Column("blueprint", "blueprint", "ref", search=True, target="blueprints"),
    Column("success", "verdict", "verdict", filter=True),
    Column("failure", "failure class", filter=True),
    Column("attempt", "attempt", "num"),
    Column("turns", "user turns", "num"),
    Column("calls", "tool calls", "num"),
    Column("termination", "ended by", filter=True),
    Column("persona", "persona", search=True),
]


def _rounds(record: dict[str, Any], reviews: Any) -> list[dict[str, Any]]:
    by_round = {text_of(r.get("round")): r for r in items(reviews) if isinstance(r, dict)}
    rounds = []
    for attempt in items(record.get("attempts")):
        if isinstance(attempt, dict):
            rounds.append({**attempt, "review": by_round.get(text_of(attempt.get("round")))})
    return rounds


def _tools(actions: list[Any]) -> list[str]:
    return sorted({text_of(a.get("name")) for a in actions if isinstance(a, dict) and a.get("name")})


def dialogue_id(row: dict[str, Any]) -> str:
    """A Phase 2 record's id (older records lack one: blueprint and attempt name it)."""
    return text_of(row.get("id") or f"{text_of(row.get('blueprint_id'))}-a{text_of(row.get('attempt'))}")


def _blueprint_records(run: DatagenRun, phase2: dict[str, list[dict[str, Any]]]):
    """(table row, record) of every blueprint: the accepted ones, then the rejected drafts; an id
    met twice keeps its first row."""
    seen: set[str] = set()
    yield from _accepted_records(run, phase2, seen)
    yield from _rejected_records(run, seen)


def _accepted_records(run: DatagenRun, phase2: dict[str, list[dict[str, Any]]], seen: set[str]):
    for row in read_rows(run.blueprints):
        if not isinstance(row.get("id"), str) or row["id"] in seen:
            continue
        seen.add(row["id"])
        provenance = dict(mapping(row.get("provenance")))
        funnel = mapping(provenance.pop("funnel", None))
        diff = provenance.pop("diff", [])
        reviews = provenance.pop("reviews", [])
        kind = provenance.get("kind") or funnel.get("kind") or "base"
        tried = phase2.get(row["id"], [])
        actions = items(row.get("actions"))
        yield (
            {
                "id": row["id"],
                "status": "accepted",
                "kind": kind,
                "stage": None,
                "tools": _tools(actions),
                "user": row.get("user_id"),
                "persona": dialogues.shorten(row.get("persona"), 80),
                "rounds": len(items(funnel.get("attempts"))),
                "verified": sum(1 for t in tried if t.get("success")),
                "instruction": dialogues.shorten(row.get("instruction"), 160),
            },
            {
                **{
                    k: row.get(k)
                    for k in ("id", "env", "seed", "user_id", "persona", "instruction", "actions", "outputs")
                },
                "status": "accepted",
                "kind": kind,
                "parents": provenance.get("parents") or [],
                "diff": diff,
                "rounds": _rounds(funnel, reviews),
                "dialogues": [
                    {"id": dialogue_id(t), "success": t.get("success"), "failure": t.get("failure")}
                    for t in tried
                ],
                "provenance": provenance,
            },
        )


def _rejected_records(run: DatagenRun, seen: set[str]):
    for row in read_rows(run.rejections):
        if not isinstance(row.get("task_id"), str) or row["task_id"] in seen:
            continue
        seen.add(row["task_id"])
        draft = mapping(row.get("draft"))
        provenance = dict(mapping(row.get("provenance")))
        reviews = provenance.pop("reviews", [])
        funnel = mapping(row.get("funnel"))
        kind = row.get("kind") or provenance.get("kind") or "base"
        actions = items(draft.get("actions"))
        user = mapping(provenance.get("sampler")).get("user_id")
        yield (
            {
                "id": row["task_id"],
                "status": "rejected",
                "kind": kind,
                "stage": row.get("stage") or "unknown",
                "tools": _tools(actions),
                "user": user,
                "persona": "",
                "rounds": len(items(funnel.get("attempts"))),
                "verified": 0,
                "instruction": dialogues.shorten(draft.get("instruction") or draft.get("raw"), 160),
            },
            {
                "id": row["task_id"],
                "status": "rejected",
                "kind": kind,
                "stage": row.get("stage") or "unknown",
                "reasons": texts(row.get("reasons")),
                "user_id": user,
                "instruction": draft.get("instruction"),
                "actions": actions,
                "outputs": draft.get("outputs") or [],
                "raw": draft.get("raw"),
                "parents": provenance.get("parents") or [],
                "rounds": _rounds(funnel, reviews),
                "dialogues": [],
                "provenance": provenance,
            },
        )


def _dialogue_records(run: DatagenRun, blueprints: dict[str, dict[str, Any]], options: Options):
    diffs = dialogues.GoldDiffs(options.domains)
    for path in (run.trajectories, run.failures):
        for row in read_rows(path):
            row_id = dialogue_id(row)
            lines, note = diffs.diff(row, blueprints.get(text_of(row.get("blueprint_id"))))
            listed = dialogues.list_row(row, row_id)
            listed.update(blueprint=row.get("blueprint_id"), attempt=row.get("attempt"))
            yield listed, dialogues.detail(row, row_id, lines, note)


def _tokens(run: DatagenRun, funnel: dict[str, Any]) -> list[tuple[str, str]]:
    p1, p2 = run.read_phase1_stats(), run.read_phase2_stats()
    tokens, session = mapping(p1.get("tokens")), mapping(p2.get("this_session"))
    verified = count(funnel["dialogues"].get("kept_distinct"))
    p2_total = count(p2.get("prompt_tokens")) + count(p2.get("completion_tokens"))
    rate = number(session.get("generated_tokens_per_s"))
    pairs = [
        ("Phase 1 tokens (prompt / completion)", f"{count(tokens.get('prompt')):,} / {count(tokens.get('completion')):,}"),
        ("Phase 1 tokens per accepted blueprint", formatted(p1.get("tokens_per_accepted") or None, ",.0f")),
        ("Phase 2 tokens (prompt / completion)", f"{count(p2.get('prompt_tokens')):,} / {count(p2.get('completion_tokens')):,}"),
        ("Phase 2 tokens per kept dialogue", f"{p2_total / verified:,.0f}" if verified else "–"),
        ("Phase 2 generation rate (last session)", f"{rate:,.1f} tokens/s over {formatted(session.get('elapsed_s'), ',.0f', '?')} s" if rate else "–"),
        ("Phase 1 acceptance (base tasks)", f"{formatted(p1.get('acceptance_rate'), '.0%')} (first round {formatted(p1.get('first_round_acceptance_rate'), '.0%')})" if "acceptance_rate" in p1 else "–"),
        ("Phase 2 success rate (attempts)", formatted(p2.get("success_rate"), ".0%")),
    ]  # fmt: skip
    return pairs


def _models(run: DatagenRun, recipe: dict[str, Any], phase2_rows: list[dict[str, Any]]) -> dict[str, Any]:
    roles: dict[str, Counter[str]] = defaultdict(Counter)
    for row in read_rows(run.blueprints):
        provenance = mapping(row.get("provenance"))
        if provenance.get("generator"):
            roles["generator"][text_of(provenance["generator"])] += 1
        for judge in items(provenance.get("judges")):
            roles["judge"][text_of(judge)] += 1
    for row in phase2_rows:
        for role, name in mapping(row.get("models")).items():
            roles[f"dialogue {role}"][text_of(name)] += 1
    table = [[role, name, n] for role, names in roles.items() for name, n in names.most_common()]
    if not table and recipe.get("generator"):
        table = [["generator (recipe)", text_of(mapping(recipe.get("generator")).get("model")), "–"]]
    return {"header": ["role", "model", "records"], "rows": table, "numeric": {2}}


def build(path: Path, options: Options) -> Source:
    run = DatagenRun(path)
    recipe = redact_config(run.read_recipe())
    funnel = run_funnel(run)
    phase2_rows = read_rows(run.trajectories) + read_rows(run.failures)
    by_blueprint: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in phase2_rows:
        by_blueprint[text_of(row.get("blueprint_id"))].append(row)
    blueprint_rows = {text_of(r.get("id")): r for r in read_rows(run.blueprints)}
    d = funnel.dialogues
    stages = [[b.label, *(b.counts.get(k, 0) for k in KINDS), b.total] for b in funnel.bars]
    rejected = [
        [kind, stage, n]
        for kind, by_stage in funnel.rejected_by_stage.items()
        for stage, n in sorted(by_stage.items())
    ]
    sections = [
        Section("Funnel", "svg", funnel_svg(funnel), note=(
            "Tasks at each stage; a task passed a stage when any of its drafts did. Base and recombined "
            "tasks are separate series." + (" Read from the summaries: this run kept no records." if funnel.source != "records" else ""))),
        Section("Funnel counts", "table", {"header": ["stage", *KINDS, "all"], "rows": stages, "numeric": {1, 2, 3}}),
        Section("Dialogues", "kv", [
            ("attempts", d.get("attempts", 0)), ("verified", d.get("verified", 0)),
            ("kept (distinct verified dialogues)", d.get("kept_distinct", 0)),
            ("verified repeats of an earlier dialogue", d.get("duplicate_successes", 0)),
            ("failed", f"{d.get('failed', 0)} " + ", ".join(f"{k} {v}" for k, v in sorted((d.get("failures") or {}).items()))),
        ]),
        Section("Rejections by stage", "table", {"header": ["kind", "stage", "tasks"], "rows": rejected, "numeric": {2}}),
        Section("Tokens and rates", "kv", _tokens(run, funnel.as_dict())),
        Section("Models per role", "table", _models(run, recipe, phase2_rows)),
        settings_section(recipe, "Recipe", "As saved beside the run, credentials redacted.") if recipe
        else Section("Recipe", "pre", "no recipe saved in the run"),
    ]  # fmt: skip
    sections += quality_section(lambda: corpus_from_run(run), options)
    accepted = next((b.total for b in funnel.bars if b.label == "accepted"), 0)
    return Source(
        slug=slugify(path.name, options.slugs),
        title=f"datagen run {path.name}",
        kind="datagen run",
        sections=sections,
        collections=[
            Collection(
                "blueprints",
                "Blueprints",
                "blueprint",
                BLUEPRINT_COLUMNS,
                _blueprint_records(run, by_blueprint),
            ),
            Collection(
                "dialogues",
                "Dialogues",
                "dialogue",
                DIALOGUE_COLUMNS,
                _dialogue_records(run, blueprint_rows, options),
            ),
        ],
        headline=f"{funnel.bars[0].total if funnel.bars else 0} tasks proposed, {accepted} accepted, "
        f"{d.get('kept_distinct', 0)} dialogues kept",
    )


KIND = Kind("datagen run", lambda path: path.is_dir() and DatagenRun(path).is_run(), build)
