"""The CSV tables of a score folder: the leaderboard's (``data_overall/non_live/live/multi_turn/
agentic.csv``), each a list of (column, value) for this run's one row, so a column and its value are
written side by side and cannot drift apart; and every figure with its interval (``data_intervals.csv``)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from evaluation.bfcl import data
from evaluation.bfcl.scoring import CategoryScore, summarise

Table = list[tuple[str, str]]

# Leaderboard column titles of category lists, in the lists' order.
_MULTI_TURN = ("Base", "Miss Func", "Miss Param", "Long Context")
_WEB_SEARCH = ("Web Search Base", "Web Search No Snippet")
_MEMORY = ("Memory KV", "Memory Vector", "Memory Recursive Summarization")


def percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def score_tables(model: str, scores: dict[str, CategoryScore]) -> dict[str, Table]:
    """File name -> the run's row of that leaderboard table."""
    s = summarise(scores)

    def acc(category: str) -> str:
        return percent(scores[category].accuracy) if category in scores else "N/A"

    def group(categories: list[str], key: str) -> str:
        """A group's score, or N/A when none of its categories was evaluated (missing ones count as 0)."""
        return percent(s[key]) if any(c in scores for c in categories) else "N/A"

    def columns(titles: tuple[str, ...], categories: list[str], prefix: str = "") -> Table:
        return [(prefix + title, acc(c)) for title, c in zip(titles, categories, strict=True)]

    return {
        "data_non_live.csv": [
            ("Rank", "1"), ("Model", model), ("Non-Live Overall Acc", percent(s["non_live"])),
            ("AST Summary", percent(s["non_live_ast"])), ("Simple AST", percent(s["non_live_simple"])),
            ("Python Simple AST", acc("simple_python")), ("Java Simple AST", acc("simple_java")),
            ("JavaScript Simple AST", acc("simple_javascript")), ("Multiple AST", acc("multiple")),
            ("Parallel AST", acc("parallel")), ("Parallel Multiple AST", acc("parallel_multiple")),
            ("Irrelevance Detection", acc("irrelevance")),
        ],
        "data_live.csv": [
            ("Rank", "1"), ("Model", model), ("Live Overall Acc", percent(s["live"])),
            ("AST Summary", percent(s["live"])), ("Python Simple AST", acc("live_simple")),
            ("Python Multiple AST", acc("live_multiple")), ("Python Parallel AST", acc("live_parallel")),
            ("Python Parallel Multiple AST", acc("live_parallel_multiple")),
            ("Irrelevance Detection", acc("live_irrelevance")), ("Relevance Detection", acc("live_relevance")),
        ],
        "data_multi_turn.csv": [
            ("Rank", "1"), ("Model", model), ("Multi Turn Overall Acc", percent(s["multi_turn"])),
            *columns(_MULTI_TURN, data.MULTI_TURN),
        ],
        "data_agentic.csv": [
            ("Rank", "1"), ("Model", model), ("Agentic Overall Acc", group(data.AGENTIC, "agentic")),
            ("Web Search Summary", group(data.WEB_SEARCH, "web_search")), *columns(_WEB_SEARCH, data.WEB_SEARCH),
            ("Memory Summary", group(data.MEMORY, "memory")), *columns(_MEMORY, data.MEMORY),
        ],
        "data_overall.csv": [
            ("Rank", "1"), ("Overall Acc", percent(s["overall_v4"])),
            ("Overall Acc (v3 formula)", percent(s["overall_v3"])), ("Model", model),
            ("Non-Live AST Acc", percent(s["non_live_ast"])), ("Non-Live Simple AST", percent(s["non_live_simple"])),
            ("Non-Live Multiple AST", acc("multiple")), ("Non-Live Parallel AST", acc("parallel")),
            ("Non-Live Parallel Multiple AST", acc("parallel_multiple")), ("Live Acc", percent(s["live"])),
            ("Live Simple AST", acc("live_simple")), ("Live Multiple AST", acc("live_multiple")),
            ("Live Parallel AST", acc("live_parallel")), ("Live Parallel Multiple AST", acc("live_parallel_multiple")),
            ("Multi Turn Acc", percent(s["multi_turn"])), *columns(_MULTI_TURN, data.MULTI_TURN, "Multi Turn "),
            ("Web Search Acc", group(data.WEB_SEARCH, "web_search")), ("Memory Acc", group(data.MEMORY, "memory")),
            *columns(_MEMORY, data.MEMORY), ("Relevance Detection", acc("live_relevance")),
            ("Irrelevance Detection", percent(s["irrelevance"])),
        ],
    }  # fmt: skip


def write_score_tables(score_dir: Path, model: str, scores: dict[str, CategoryScore]) -> None:
    """Every table of :func:`score_tables` as a CSV in ``score_dir``: the header, then the run's row."""
    score_dir.mkdir(parents=True, exist_ok=True)
    for name, table in score_tables(model, scores).items():
        with (score_dir / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([column for column, _ in table])
            writer.writerow([value for _, value in table])


def write_interval_table(score_dir: Path, intervals: dict[str, Any]) -> None:
    """data_intervals.csv: every category and group score with its 95% interval, and how it was made."""
    score_dir.mkdir(parents=True, exist_ok=True)
    with (score_dir / "data_intervals.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["figure", "kind", "value", "low", "high", "level"])
        for kind in ("overall", "categories"):
            for name, interval in (intervals.get(kind) or {}).items():
                writer.writerow([name, "category" if kind == "categories" else "group", *(
                    interval[k] for k in ("value", "low", "high", "level")
                )])  # fmt: skip
        writer.writerow(["method", intervals.get("method", ""), "", "", "", ""])
