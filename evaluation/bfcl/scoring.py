"""Score result files category by category, and combine categories the way the leaderboard does.

Per item: relevance/irrelevance by whether any call decodes; AST categories by decode + shape +
:func:`ast_checker.check`; multi-turn by :func:`multi_turn.check_entry`; memory by
:func:`memory.check_result`. Result entries are matched to test items by id and to answers by the
item's position, as the official runner does.

Summaries (categories not evaluated count as 0, with their full size as weight):

* v4 (current leaderboard): non-live = mean(simple[mean of python/java/js], multiple, parallel,
  parallel_multiple); live = count-weighted mean of the four live AST categories; irrelevance =
  mean(irrelevance, live_irrelevance); multi-turn = mean of four; agentic = mean(web search
  [mean of 2], memory [mean of 3]); overall = 0.1 non-live + 0.1 live + 0.1 irrelevance +
  0.3 multi-turn + 0.4 agentic.
* v3: non-live = mean(simple, multiple, parallel, parallel_multiple, irrelevance); live =
  count-weighted mean of all six live categories; overall = mean(non-live, live, multi-turn).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evaluation.bfcl import data, memory
from evaluation.bfcl.ast_checker import Verdict, check
from evaluation.bfcl.decode import DecodeError, contains_call, decode_ast, is_checker_shape
from evaluation.bfcl.handlers import short
from evaluation.bfcl.multi_turn import check_entry, step_has_call
from evaluation.intervals import SEED, Interval, PairedDifference, stratified_bootstrap, wilson_interval

log = logging.getLogger(__name__)

# Categories whose right answer is often "no call": most items not decoding is normal there.
NO_CALL_CATEGORIES = ("irrelevance", "live_irrelevance", *data.MEMORY)


@dataclass
class ItemVerdict:
    id: str
    valid: bool
    error_type: str = ""
    error: str = ""
    decoded: bool = True  # the result held a call in the format (single-turn) or in some step


@dataclass
class CategoryScore:
    category: str
    correct: int
    total: int
    items: list[ItemVerdict] = field(default_factory=list)
    evaluated: bool = True
    partial: bool = False

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def undecoded_ids(self) -> list[str]:
        """Items whose result held no call in the format (file problems not included)."""
        return [i.id for i in self.items if not i.decoded and not i.error_type.startswith("result_file:")]

    @property
    def scored_from_rows(self) -> int:
        return sum(1 for i in self.items if not i.error_type.startswith("result_file:"))


def score_relevance_item(
    category: str, raw: Any, fmt: str, tools: list[dict], lenient: bool = False
) -> Verdict:
    called = contains_call(raw, fmt, tools, lenient)
    if "irrelevance" in category:
        return (
            Verdict(True)
            if not called
            else Verdict(False, "irrelevance_error:decoder_success", "a call decoded")
        )
    return Verdict(True) if called else Verdict(False, "relevance_error:decoder_failed", "no call decoded")


def score_ast_item(
    entry: data.Entry, raw: Any, answer: list, fmt: str, underscore_names: bool, lenient: bool = False
) -> Verdict:
    language = data.language_of(entry.category)
    try:
        decoded = decode_ast(raw, fmt, language, entry.functions, lenient)
    except DecodeError as exc:
        return Verdict(False, "ast_decoder:decoder_failed", str(exc))
    if not is_checker_shape(decoded):
        return Verdict(
            False, "ast_decoder:decoder_wrong_output_format", "decoded output is not [{name: {...}}]"
        )
    return check(entry.functions, decoded, answer, entry.category, language, underscore_names)


def score_item(
    entry: data.Entry, raw: Any, answer: Any, fmt: str, underscore_names: bool = False, lenient: bool = False
) -> Verdict:
    if entry.category in data.MULTI_TURN:
        return check_entry(entry, raw, answer, fmt, lenient)
    if entry.category in data.MEMORY:
        return memory.check_result(raw, answer, lambda step: step_has_call(step, fmt, lenient))
    if "relevance" in entry.category:
        return score_relevance_item(entry.category, raw, fmt, entry.functions, lenient)
    return score_ast_item(entry, raw, answer, fmt, underscore_names, lenient)


def steps_hold_a_call(raw: Any, fmt: str, lenient: bool = False) -> bool:
    """Whether any step of a multi-step result (turns of steps) decodes to a call."""
    turns = raw if isinstance(raw, list) else []
    return any(step_has_call(step, fmt, lenient) for turn in turns if isinstance(turn, list) for step in turn)


def holds_a_call(category: str, raw: Any, verdict: Verdict, fmt: str, lenient: bool = False) -> bool:
    """Whether the result held a call in the format (for the "wrong format?" warning); a passing
    multi-step item counts as read (the format did not fail it)."""
    if category in data.MULTI_TURN or category in data.MEMORY:
        return verdict.valid or steps_hold_a_call(raw, fmt, lenient)
    if "irrelevance" in category:
        return not verdict.valid
    if "relevance" in category:
        return verdict.valid
    return not verdict.error_type.startswith("ast_decoder:")


def _score_guarded(
    entry: data.Entry, raw: Any, answer: Any, fmt: str, underscore_names: bool, lenient: bool
) -> tuple[Verdict, bool]:
    """(verdict, held a call); an error scoring one item fails that item, never the run."""
    try:
        verdict = score_item(entry, raw, answer, fmt, underscore_names, lenient)
        return verdict, holds_a_call(entry.category, raw, verdict, fmt, lenient)
    except Exception as exc:  # noqa: BLE001 - one item's failure is one failed item
        log.warning(
            "%s: scoring failed (%s: %s); counted as failed", entry.id, type(exc).__name__, short(exc)
        )
        return Verdict(False, "checker:internal_error", f"{type(exc).__name__}: {short(exc)}"), False


def score_category(
    category: str,
    results: list[dict[str, Any]],
    fmt: str,
    underscore_names: bool = False,
    lenient: bool = False,
    unreadable: Sequence[str] = (),
    void: Mapping[str, str] | None = None,
) -> CategoryScore:
    """Score one category's result entries (``{"id", "result"}``) against the installed answer key.

    ``unreadable``: one message per result-file line that could not be read, each counted as a
    failed item (so breaking a file never raises accuracy); ``void``: ids whose result cannot be
    trusted (given twice), each counted once as failed with the reason.
    """
    entries = data.load_entries(category)
    answers = data.load_answers(category)
    by_id = {r["id"]: r for r in results}
    void = dict(void or {})
    unknown = set(by_id) - {e.id for e in entries}
    if unknown:
        raise ValueError(
            f"{len(unknown)} result ids are not items of {category!r} (e.g. {sorted(unknown)[:3]}); "
            "expected ids from the installed bfcl-eval data — was the file produced for another version?"
        )
    score = CategoryScore(category, 0, 0)
    for entry, answer in zip(entries, answers, strict=False):
        if entry.id not in by_id:
            continue
        score.total += 1
        if entry.id in void:
            score.items.append(ItemVerdict(entry.id, False, "result_file:duplicate_id", void[entry.id]))
            continue
        verdict, held = _score_guarded(
            entry, by_id[entry.id].get("result"), answer, fmt, underscore_names, lenient
        )
        score.correct += int(verdict.valid)
        score.items.append(ItemVerdict(entry.id, verdict.valid, verdict.error_type, verdict.error, held))
    for message in unreadable:
        score.total += 1
        score.items.append(
            ItemVerdict(message.split(": ", 1)[0], False, "result_file:unreadable_line", message)
        )
    score.partial = score.total < len(entries)
    if score.partial:
        log.warning(
            "%s: %d of %d items present; accuracy is over the present ones",
            category,
            score.total,
            len(entries),
        )
    return score


def _dataset_size(category: str) -> int:
    if category in data.SKIPPED or not data.is_available():
        return 0
    return len(data.load_entries(category))


def _accuracies(scores: dict[str, CategoryScore]) -> tuple[dict[str, float], dict[str, int]]:
    """Every category's accuracy and weight: its score, or 0 at its full size when not evaluated."""
    acc: dict[str, float] = {}
    totals: dict[str, int] = {}
    for category in data.ALL_CATEGORIES:
        if category in scores and scores[category].evaluated:
            acc[category], totals[category] = scores[category].accuracy, scores[category].total
        else:
            acc[category], totals[category] = 0.0, _dataset_size(category)
    return acc, totals


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def _weighted(acc: Mapping[str, float], totals: Mapping[str, int], categories: Sequence[str]) -> float:
    total = sum(totals[c] for c in categories)
    return sum(acc[c] * totals[c] for c in categories) / total if total else 0.0


def summarise_accuracies(acc: Mapping[str, float], totals: Mapping[str, int]) -> dict[str, float]:
    """The leaderboard's group and overall scores from every category's accuracy and size."""
    simple = _mean(acc[c] for c in ("simple_python", "simple_java", "simple_javascript"))
    ast_non_live = [simple, acc["multiple"], acc["parallel"], acc["parallel_multiple"]]
    live_ast = ["live_simple", "live_multiple", "live_parallel", "live_parallel_multiple"]
    multi_turn = _mean(acc[c] for c in data.MULTI_TURN)
    web_search = _mean(acc[c] for c in data.WEB_SEARCH)
    memory = _mean(acc[c] for c in data.MEMORY)
    summary = {
        "non_live_simple": simple,
        "non_live_ast": _mean(ast_non_live),
        "non_live": _mean(ast_non_live),
        "live": _weighted(acc, totals, live_ast),
        "irrelevance": _mean([acc["irrelevance"], acc["live_irrelevance"]]),
        "relevance": acc["live_relevance"],
        "multi_turn": multi_turn,
        "web_search": web_search,
        "memory": memory,
        "agentic": _mean([web_search, memory]),
        "non_live_v3": _mean(ast_non_live + [acc["irrelevance"]]),
        "live_v3": _weighted(acc, totals, live_ast + ["live_irrelevance", "live_relevance"]),
    }
    summary["overall_v4"] = (
        0.1 * summary["non_live"]
        + 0.1 * summary["live"]
        + 0.1 * summary["irrelevance"]
        + 0.3 * multi_turn
        + 0.4 * summary["agentic"]
    )
    summary["overall_v3"] = _mean([summary["non_live_v3"], summary["live_v3"], multi_turn])
    return summary


def summarise(scores: dict[str, CategoryScore]) -> dict[str, float]:
    """The leaderboard's group and overall scores (fractions), v4 and v3."""
    return summarise_accuracies(*_accuracies(scores))


INTERVAL_METHOD = (
    "categories: Wilson score interval over the category's items; group and overall scores: "
    "percentile bootstrap resampling items within each category (each category keeps its size and "
    "its weight in BFCL's formula; categories not evaluated stay at 0)"
)


def category_intervals(scores: dict[str, CategoryScore]) -> dict[str, Interval]:
    """Each category's accuracy with its Wilson interval."""
    return {c: wilson_interval(s.correct, s.total) for c, s in scores.items()}


def summary_intervals(scores: dict[str, CategoryScore], seed: int = SEED) -> dict[str, Interval]:
    """Every group and overall score with a stratified bootstrap interval (:data:`INTERVAL_METHOD`)."""
    acc, totals = _accuracies(scores)
    strata = {
        c: [[float(item.valid)] for item in scores[c].items]
        for c in data.ALL_CATEGORIES
        if c in scores and scores[c].evaluated and scores[c].total
    }

    def figures(sums: Mapping[str, Sequence[float]]) -> dict[str, float]:
        resampled = {**acc, **{c: sums[c][0] / len(strata[c]) for c in strata}}
        return summarise_accuracies(resampled, totals)

    return stratified_bootstrap(strata, figures, seed=seed)


def paired_summary_differences(
    a: Mapping[str, Mapping[str, bool]], b: Mapping[str, Mapping[str, bool]], seed: int = SEED
) -> dict[str, PairedDifference]:
    """Run A's group and overall scores minus run B's, over the items both scored ({category: {id:
    correct}} each), with a paired stratified bootstrap: each resample draws the same items of each
    category for both runs. Categories neither run shares count 0 for both."""
    shared = {c: sorted(set(a[c]) & set(b[c])) for c in a if c in b}
    shared = {c: ids for c, ids in shared.items() if ids}
    strata = {c: [[float(a[c][i]), float(b[c][i])] for i in ids] for c, ids in shared.items()}
    totals = {c: len(shared[c]) if c in shared else _dataset_size(c) for c in data.ALL_CATEGORIES}
    zeros = dict.fromkeys(data.ALL_CATEGORIES, 0.0)

    def figures(sums: Mapping[str, Sequence[float]]) -> dict[str, float]:
        first = summarise_accuracies({**zeros, **{c: sums[c][0] / totals[c] for c in strata}}, totals)
        second = summarise_accuracies({**zeros, **{c: sums[c][1] / totals[c] for c in strata}}, totals)
        return {key: first[key] - second[key] for key in first}

    items = sum(len(ids) for ids in shared.values())
    return {
        k: PairedDifference(i, items) for k, i in stratified_bootstrap(strata, figures, seed=seed).items()
    }


def score_json(scores: dict[str, CategoryScore], settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"categories": {name: accuracy}, "overall": {...}, "intervals": {...}}`` with fractions; what
    `--json` prints.

    With the run's settings, also how results were decoded and what could not be read."""
    summary = summarise(scores)
    overall_intervals = summary_intervals(scores)
    out = {
        "categories": {c: s.accuracy for c, s in scores.items()},
        "overall": {"v4": summary["overall_v4"], "v3": summary["overall_v3"], **summary},
        "counts": {
            c: {"correct": s.correct, "total": s.total, "partial": s.partial} for c, s in scores.items()
        },
        "intervals": {
            "method": INTERVAL_METHOD,
            "categories": {c: i.as_dict() for c, i in category_intervals(scores).items()},
            "overall": {
                "v4": overall_intervals["overall_v4"].as_dict(),
                "v3": overall_intervals["overall_v3"].as_dict(),
                **{k: i.as_dict() for k, i in overall_intervals.items()},
            },
        },
        "skipped": {c: reason for c, reason in data.SKIPPED.items()},
    }
    for key in ("decoder", "underscore_to_dot", "warnings", "problems"):
        if settings and key in settings:
            out[key] = settings[key]
    return out


def official_score_lines(score: CategoryScore) -> list[str]:
    """BFCL's score-file layout: a header line, then one line per failed item."""
    header = {"accuracy": score.accuracy, "correct_count": score.correct, "total_count": score.total}
    lines = [json.dumps(header)]
    for item in score.items:
        if not item.valid:
            lines.append(
                json.dumps(
                    {
                        "id": item.id,
                        "test_category": score.category,
                        "valid": False,
                        "error": [item.error],
                        "error_type": item.error_type,
                    }
                )
            )
    return lines
