"""The quality figures as markdown: what `apigen-mt stats` prints and the dataset card shows."""

from __future__ import annotations

from typing import Any


def _ratio(part: dict[str, Any]) -> str:
    return f"{part['used']}/{part['of']}"


def _dist(d: dict[str, Any]) -> str:
    if not d.get("count"):
        return "no dialogues"
    return (
        f"min {d['min']} · median {d['median']} · mean {d['mean']} · p90 {d['p90']} · max {d['max']} "
        f"({d['count']} dialogues)"
    )


def _coverage(cov: dict[str, Any]) -> list[str]:
    tools = cov["tools"]
    lines = []
    if "graph_edges" in tools:
        lines.append(
            f"- Tools used in dialogues ({tools['domain']}): write {_ratio(tools['write_tools'])}, "
            f"read {_ratio(tools['read_tools'])}; tool-graph edges exercised {_ratio(tools['graph_edges'])}, "
            f"consecutive pairs outside the graph: {tools['pairs_outside_graph']}"
        )
        if tools["unused_tools"]:
            lines.append(f"- Tools never called: {', '.join(tools['unused_tools'])}")
    else:
        lines.append(f"- Tools used: {len(tools['calls_per_tool'])} ({tools.get('graph', '')})")
    lines.append(
        f"- Users: {cov['users']['distinct']} distinct over {cov['users']['tasks']} tasks; "
        f"personas: {cov['personas']['distinct']} distinct"
    )
    checks = cov["policy_checks"]
    fired = ", ".join(f"{k} ×{v}" for k, v in checks["fired"].items()) or "none"
    of = f" (of {checks['of']} checks)" if checks.get("of") else ""
    lines.append(f"- Policy checks that fired: {fired}{of}")
    lines.append(f"- User turns per dialogue: {_dist(cov['turns_per_dialogue'])}")
    lines.append(f"- Tool calls per dialogue: {_dist(cov['calls_per_dialogue'])}")
    return lines


def _pairs(found: dict[str, Any], limit: int = 10) -> list[str]:
    lines = []
    for p in found["listed"][:limit]:
        where = f" ({p['a_in']} / {p['b_in']})" if "a_in" in p else ""
        lines.append(f"  - `{p['a']}` ~ `{p['b']}`{where}: Jaccard {p['jaccard']}")
    if found["pairs"] > limit:
        lines.append(f"  - … {found['pairs'] - limit} more")
    return lines


def _duplicates(dups: dict[str, Any]) -> list[str]:
    lines = [
        f"- Near-duplicates among the {dups['texts']}: {dups['pairs']} pairs. Rule: {dups['rule']}.",
        *_pairs(dups),
    ]
    if "across_splits" in dups:
        lines.append(f"- Near-duplicates across splits (leaks): {dups['across_splits']['pairs']} pairs")
        lines += _pairs(dups["across_splits"])
    return lines


def _contamination(con: dict[str, Any], limit: int = 20) -> list[str]:
    checked = ", ".join(f"{k} {v}" for k, v in con["benchmarks"].items()) or "none"
    lines = [
        f"- Benchmark items checked: {checked}. Rule: {con['rule']}.",
        f"- Texts checked: {con['texts_checked']} ({con['texts_too_short']} shorter than {con['ngram']} "
        f"words not judged); flagged: **{con['flagged']}**",
    ]
    lines += [f"- Note: {note}" for note in con["notes"]]
    for f in con["listed"][:limit]:
        lines.append(
            f"  - `{f['item']}` {f['where']}: {f['overlap']:.0%} of its n-grams in "
            f"{f['benchmark']} `{f['benchmark_item']}`"
        )
    if con["flagged"] > limit:
        lines.append(f"  - … {con['flagged'] - limit} more")
    return lines


def to_markdown(report: dict[str, Any], level: int = 2) -> str:
    """The whole report; ``level`` is the heading level of each collection's title."""
    head = "#" * level
    lines: list[str] = []
    for name, entry in report["collections"].items():
        size = entry["size"]
        lines += [
            f"{head} {name}",
            "",
            f"{size['instructions']} task instructions, {size['dialogues']} dialogues.",
            "",
        ]
        if entry.get("splits"):
            parts = ", ".join(
                f"{s} {v['rows']} rows / {v['blueprints']} blueprints" for s, v in entry["splits"].items()
            )
            lines += [f"Splits: {parts}.", ""]
        lines += [f"{head}# Coverage", "", *_coverage(entry["coverage"]), ""]
        lines += [f"{head}# Diversity and near-duplicates", "", *_duplicates(entry["near_duplicates"]), ""]
        lines += [f"{head}# Benchmark contamination", "", *_contamination(entry["contamination"]), ""]
    across = report.get("near_duplicates_across")
    if across:
        lines += [
            f"{head} Near-duplicates across collections",
            "",
            f"- {across['pairs']} pairs. Rule: {across['rule']}.",
        ]
        lines += _pairs(across)
    return "\n".join(lines).rstrip() + "\n"
