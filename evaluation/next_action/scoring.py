"""Scoring one predicted turn against the gold turn, and the summary over many (pure, no I/O).

Per turn (the gold assistant message either calls tools, "should call", or answers in text):

- **decision**: the model attempted a call (its output decoded into calls, or broke while writing
  one) exactly when the gold turn calls;
- **decoded**: the output was read in full as calls in the model's format (calls that do not fit
  the tools, ``unknown_tool``/``bad_arguments``, are still decoded: they were well formed);
- **name match**: the predicted tool names are the gold ones (as a multiset: parallel calls in any order);
- **exact match**: the calls pair up one to one, each pair with the same name and the same
  arguments under the one value rule (``apigen_rules.values.same_value``: numbers by value, text by
  normal form, lists in order, objects key by key);
- **arguments**: the calls are paired by name to agree on the most arguments; a predicted argument is
  right when its paired gold call has that key with the same value (precision over predicted
  arguments, recall over gold arguments, summed over turns);
- **environment**: a predicted call whose execution, after replaying the gold calls before the
  turn on a fresh environment of the dialogue's seed, returns an error observation.

Every rate is a ratio of sums over turns (:func:`turn_parts`) and carries a 95% interval from a
cluster bootstrap over dialogues: a dialogue's turns share its context and its model, so they are
resampled together, never as independent items.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from itertools import permutations
from typing import Any

from apigen_rules.values import same_value
from datagen.llm.formats import is_broken
from datagen.llm.types import Choice
from evaluation.intervals import ratio_intervals

Call = dict[str, Any]

# Brute force finds the best pairing of parallel calls up to this many; beyond it, greedily.
_EXHAUSTIVE = 7


def _argument_hits(predicted: Call, gold: Call) -> int:
    if predicted.get("name") != gold.get("name"):
        return 0
    gold_args, args = gold.get("arguments") or {}, predicted.get("arguments") or {}
    return sum(1 for k, v in args.items() if k in gold_args and same_value(v, gold_args[k]))


def pair_calls(predicted: Sequence[Call], gold: Sequence[Call]) -> list[tuple[int, int]]:
    """(predicted index, gold index) pairs of same-named calls, chosen to agree on the most arguments."""

    def score(pairs: Iterable[tuple[int, int]]) -> tuple[int, int]:
        pairs = list(pairs)
        named = sum(predicted[p]["name"] == gold[g]["name"] for p, g in pairs)
        return named, sum(_argument_hits(predicted[p], gold[g]) for p, g in pairs)

    small, large = (predicted, gold) if len(predicted) <= len(gold) else (gold, predicted)
    if len(large) <= _EXHAUSTIVE:
        best: list[tuple[int, int]] = []
        best_score = (-1, -1)
        for order in permutations(range(len(large)), len(small)):
            pairs = [(i, j) if small is predicted else (j, i) for i, j in enumerate(order)]
            if (found := score(pairs)) > best_score:
                best, best_score = pairs, found
    else:
        best, used = [], set()
        for p, call in enumerate(predicted):
            options = [(_argument_hits(call, gold[g]), g) for g in range(len(gold)) if g not in used]
            options = [(h, g) for h, g in options if gold[g]["name"] == call["name"]]
            if options:
                _, g = max(options)
                used.add(g)
                best.append((p, g))
    return [(p, g) for p, g in best if predicted[p]["name"] == gold[g]["name"]]


def outcome(scores: dict[str, Any]) -> str:
    """One word for what happened on a turn, the first that applies (for filtering and counting)."""
    if not scores["should_call"]:
        return "called instead of answering" if scores["attempted_call"] else "right"
    if not scores["attempted_call"]:
        return "answered instead of calling"
    if not scores["decoded"]:
        return "call did not decode"
    if not scores["name_match"]:
        return "wrong tool"
    return "right" if scores["exact_match"] else "wrong arguments"


def score_turn(gold: Sequence[Call], choice: Choice) -> dict[str, Any]:
    """The figures of one turn (module docstring); ``gold`` is empty for a turn that answers in text."""
    should_call = bool(gold)
    decoded = bool(choice.tool_calls) and not is_broken(choice.parse_error)
    attempted = decoded or choice.parse_error is not None
    predicted = list(choice.tool_calls) if decoded else []
    names_match = should_call and sorted(c["name"] for c in predicted) == sorted(c["name"] for c in gold)
    pairs = pair_calls(predicted, gold) if predicted and gold else []
    exact = (
        should_call
        and len(predicted) == len(gold) == len(pairs)
        and all(
            (gold[g].get("arguments") or {}).keys() == (predicted[p].get("arguments") or {}).keys()
            and same_value(predicted[p].get("arguments") or {}, gold[g].get("arguments") or {})
            for p, g in pairs
        )
    )
    scores = {
        "should_call": should_call,
        "attempted_call": attempted,
        "decision_correct": attempted == should_call,
        "decoded": decoded,
        "name_match": bool(names_match),
        "exact_match": bool(exact),
        "arguments_predicted": sum(len(c.get("arguments") or {}) for c in predicted),
        "arguments_gold": sum(len(c.get("arguments") or {}) for c in gold),
        "arguments_right": sum(_argument_hits(predicted[p], gold[g]) for p, g in pairs),
    }
    return {**scores, "outcome": outcome(scores)}


# The rate figures, each a ratio of sums over turns: what one turn adds to its numerator and its
# denominator (turns a figure does not cover add nothing to either).
RATES = (
    "decision_accuracy",
    "decode_rate",
    "name_match",
    "exact_match",
    "argument_precision",
    "argument_recall",
    "answer_accuracy",
    "env_failure_rate",
)


def turn_parts(row: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """(numerator, denominator) of every rate figure for one scored turn; {} for an error row."""
    if row.get("error"):
        return {}
    call, answer = bool(row["should_call"]), not row["should_call"]
    executed = row.get("env_failed") is not None
    return {
        "decision_accuracy": (float(row["decision_correct"]), 1.0),
        "decode_rate": (float(call and row["decoded"]), float(call)),
        "name_match": (float(call and row["name_match"]), float(call)),
        "exact_match": (float(call and row["exact_match"]), float(call)),
        "argument_precision": (row["arguments_right"] * call, row["arguments_predicted"] * call),
        "argument_recall": (row["arguments_right"] * call, row["arguments_gold"] * call),
        "answer_accuracy": (float(answer and not row["attempted_call"]), float(answer)),
        "env_failure_rate": (float(executed and bool(row["env_failed"])), float(executed)),
    }


def dialogue_key(row: dict[str, Any]) -> str:
    """The dialogue a turn belongs to: the unit intervals resample (its turns are not independent)."""
    if row.get("dialogue_id") is None:
        return str(row.get("key"))
    return f"{row.get('source', '')}::{row['dialogue_id']}"


def dialogue_parts(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per dialogue, the summed (numerator, denominator) of every rate figure over its turns."""
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: {name: [0.0, 0.0] for name in RATES})
    for row in rows:
        parts = turn_parts(row)
        if not parts:
            continue
        totals = sums[dialogue_key(row)]
        for name, (numerator, denominator) in parts.items():
            totals[name][0] += numerator
            totals[name][1] += denominator
    return {key: {name: (n, d) for name, (n, d) in figures.items()} for key, figures in sums.items()}


INTERVAL_METHOD = "95% cluster bootstrap over dialogues (turns of one dialogue are resampled together)"


def figures(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The summary figures of scored rows (rows with an ``error`` are counted, not scored), each
    rate with its interval under ``intervals``."""
    scored = [r for r in rows if not r.get("error")]
    per_dialogue = dialogue_parts(scored)
    totals = {name: [0.0, 0.0] for name in RATES}
    for parts in per_dialogue.values():
        for name, (numerator, denominator) in parts.items():
            totals[name][0] += numerator
            totals[name][1] += denominator
    rates = {name: (n / d if d else None) for name, (n, d) in totals.items()}
    return {
        "turns": len(scored),
        "errors": len(rows) - len(scored),
        "should_call_turns": sum(1 for r in scored if r["should_call"]),
        "should_answer_turns": sum(1 for r in scored if not r["should_call"]),
        **rates,
        "env_checked_turns": sum(1 for r in scored if r.get("env_failed") is not None),
        "outcomes": dict(Counter(r.get("outcome", "?") for r in scored).most_common()),
        "dialogues": len(per_dialogue),
        "intervals": {name: i.as_dict() for name, i in ratio_intervals(list(per_dialogue.values())).items()},
    }


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Overall, per domain and per gold tool (a turn counts under each tool its gold turn calls)."""
    by_env: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_tool: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_env[row.get("env") or "(unknown)"].append(row)
        for name in sorted({c["name"] for c in row.get("gold_calls") or []}):
            by_tool[name].append(row)
    return {
        "overall": figures(rows),
        "per_domain": {env: figures(part) for env, part in sorted(by_env.items())},
        "per_tool": {tool: figures(part) for tool, part in sorted(by_tool.items())},
        "interval_method": INTERVAL_METHOD,
    }
