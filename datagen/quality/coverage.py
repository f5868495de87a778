"""Coverage figures: which tools and tool pairs the dialogues exercise against the domain's tool
graph, how many users and personas the tasks spread over, which policy checks fired, and the
distribution of turns and tool calls per dialogue."""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from datagen.envs.base import Domain
from datagen.quality.corpus import Corpus

log = logging.getLogger(__name__)

DomainLoader = Callable[[str], Domain]


def load_domain(name: str) -> Domain:
    from datagen.envs.registry import get_domain

    return get_domain(name)


def distribution(values: Sequence[int]) -> dict[str, Any]:
    """min / quartiles / mean / p90 / max and a histogram (value -> dialogues)."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def pct(p: float) -> int:
        return ordered[min(len(ordered) - 1, int(p * (len(ordered) - 1) + 0.5))]

    return {
        "count": len(ordered),
        "min": ordered[0],
        "p25": pct(0.25),
        "median": pct(0.5),
        "mean": round(statistics.fmean(ordered), 2),
        "p75": pct(0.75),
        "p90": pct(0.9),
        "max": ordered[-1],
        "histogram": {str(k): v for k, v in sorted(Counter(ordered).items())},
    }


def _tool_figures(corpus: Corpus, domain: Domain | None, env: str | None) -> dict[str, Any]:
    used: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for dialogue in corpus.dialogues:
        calls = dialogue.tool_calls()
        used.update(calls)
        pairs.update((a, b) for a, b in zip(calls, calls[1:], strict=False) if a != b)
    figures: dict[str, Any] = {"calls_per_tool": dict(used.most_common())}
    if domain is None:
        figures["graph"] = f"domain {env!r} could not be loaded; tools are counted without its graph"
        return figures
    reads = {t.name for t in domain.read_tools()}
    writes = {t.name for t in domain.write_tools()}
    edges = {(a, b) for a, targets in domain.dependency_graph().items() for b in targets}
    seen = set(pairs)
    figures.update(
        {
            "domain": domain.name,
            "read_tools": {"used": len(reads & set(used)), "of": len(reads)},
            "write_tools": {"used": len(writes & set(used)), "of": len(writes)},
            "unused_tools": sorted((reads | writes) - set(used)),
            "unknown_tools": sorted(set(used) - reads - writes),
            "graph_edges": {"used": len(edges & seen), "of": len(edges)},
            "pairs_outside_graph": len(seen - edges),
            "top_pairs": [
                {"pair": f"{a} -> {b}", "count": n, "in_graph": (a, b) in edges}
                for (a, b), n in pairs.most_common(15)
            ],
        }
    )
    return figures


def coverage(corpus: Corpus, domains: DomainLoader = load_domain) -> dict[str, Any]:
    """The coverage figures of ``corpus``; a domain that cannot be loaded is named, not fatal."""
    env = corpus.envs[0] if len(corpus.envs) == 1 else None
    domain = None
    if env is not None:
        try:
            domain = domains(env)
        except Exception as exc:  # an uninstalled adapter, a third-party domain that is gone
            log.info("coverage: domain %s not loaded (%s)", env, exc)
    checks_known = sorted(c.name for c in domain.checks) if domain is not None else []
    fired = dict(corpus.policy_hits.most_common())
    return {
        "envs": corpus.envs,
        "tools": _tool_figures(corpus, domain, env if env else ", ".join(corpus.envs) or None),
        "users": {"distinct": len(set(corpus.users)), "tasks": len(corpus.users)},
        "personas": {"distinct": len(set(corpus.personas)), "tasks_or_rows": len(corpus.personas)},
        "policy_checks": {
            "fired": fired,
            "of": len(checks_known) or None,
            "never_fired": [c for c in checks_known if c not in fired],
        },
        "turns_per_dialogue": distribution([len(d.user_turns()) for d in corpus.dialogues]),
        "calls_per_dialogue": distribution([len(d.tool_calls()) for d in corpus.dialogues]),
    }
