"""The leaderboard's figures with their intervals, and which differences between models are noise.

Every column is one figure for every model that has it: a value, its 95% interval as the run wrote it
(BFCL: Wilson per category, a stratified bootstrap for the group scores; τ: pass^k bootstrapped over
tasks; next-action: a cluster bootstrap over dialogues) and a way to compare two models on the
items both ran — a paired bootstrap on shared tasks (τ), shared items within categories (BFCL) or
shared dialogues (next-action). A cell is marked when its model's difference from the column's best
is within noise; every compared pair is listed with its difference and interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from itertools import combinations

from evaluation.intervals import Interval, PairedDifference, paired_difference, paired_ratio_differences
from evaluation.report.collect import BfclResult, Collected, NextActionResult, TauResult

NEAR_BEST = "≈"  # the cell's model is within noise of the column's best
ALL_PAIRS_UP_TO = 6  # more models than this: each is compared with the column's best only
NOISE_NOTE = (
    f"{NEAR_BEST}: within noise of the best in its column (the 95% interval of the paired difference "
    "on the tasks/items both ran contains 0). Brackets: 95% intervals."
)

BFCL_COLUMNS = (("BFCL overall (v4)", "overall_v4"), ("BFCL overall (v3)", "overall_v3"), ("non-live", "non_live"),
                ("live", "live"), ("multi-turn", "multi_turn"))  # fmt: skip
# Next-action figures in the leaderboard (turns that should call a tool, but for the decision).
NEXT_ACTION_COLUMNS = (("decode", "decode_rate"), ("name match", "name_match"), ("exact match", "exact_match"),
                       ("decision", "decision_accuracy"))  # fmt: skip


@dataclass(frozen=True)
class Cell:
    value: float | None
    interval: Interval | None = None


Compare = Callable[[str, str], PairedDifference | None]


@dataclass
class Column:
    """One figure: a cell per model that has it, and the paired comparison of two models' runs."""

    title: str
    cells: dict[str, Cell]
    compare: Compare
    near_best: set[str] = field(default_factory=set)

    def best(self) -> str | None:
        scored = [(cell.value, model) for model, cell in self.cells.items() if cell.value is not None]
        return max(scored)[1] if scored else None


@dataclass(frozen=True)
class Difference:
    figure: str
    first: str
    second: str
    result: PairedDifference


# ---------------------------------------------------------------- the columns of each kind


def _bfcl_columns(results: list[BfclResult]) -> list[Column]:
    by_model = {r.model: r for r in results}

    @cache
    def pair(first: str, second: str) -> dict[str, PairedDifference] | None:
        from evaluation.bfcl.scoring import paired_summary_differences

        a, b = by_model[first].verdicts(), by_model[second].verdicts()
        return paired_summary_differences(a, b) if a and b else None

    columns = []
    for title, key in BFCL_COLUMNS:
        cells = {r.model: Cell(r.overall.get(key), r.overall_intervals().get(key)) for r in results}
        columns.append(Column(title, cells, lambda a, b, key=key: (pair(a, b) or {}).get(key)))
    return columns


def _tau_columns(results: list[TauResult]) -> list[Column]:
    columns = []
    for env in sorted({t.env for t in results}):
        runs = {t.model: t for t in results if t.env == env}
        for title, key in (
            (f"τ {env} pass^1", "pass_k"),
            (f"τ {env} pass^1 (state-changing)", "pass_k_state_changing_only"),
        ):
            cells = {m: Cell(t.pass_k(key).get(1), t.pass_k_intervals(key).get("1")) for m, t in runs.items()}

            def compare(
                a: str, b: str, key: str = key, runs: dict[str, TauResult] = runs
            ) -> PairedDifference:
                noop = runs[a].noop_tasks() | runs[b].noop_tasks()
                skip = noop if key == "pass_k_state_changing_only" else set()
                first, second = runs[a].pass_1_per_task(), runs[b].pass_1_per_task()
                return paired_difference(
                    {t: v for t, v in first.items() if t not in skip},
                    {t: v for t, v in second.items() if t not in skip},
                )

            columns.append(Column(title, cells, compare))
    return columns


def _ratio_pairs(runs: dict[str, NextActionResult]) -> Callable[[str, str], dict[str, PairedDifference]]:
    """Every figure's paired difference between two runs over their shared dialogues (computed once)."""

    @cache
    def pair(first: str, second: str) -> dict[str, PairedDifference]:
        return paired_ratio_differences(runs[first].dialogues(), runs[second].dialogues())

    return pair


def _next_action_columns(results: list[NextActionResult]) -> list[Column]:
    columns = []
    for label in sorted({n.label for n in results}):
        runs = {n.model: n for n in results if n.label == label}
        pair = _ratio_pairs(runs)
        for name, key in NEXT_ACTION_COLUMNS:
            cells = {m: Cell(n.overall.get(key), n.intervals().get(key)) for m, n in runs.items()}
            columns.append(
                Column(
                    f"next-action {label} {name}", cells, lambda a, b, key=key, pair=pair: pair(a, b).get(key)
                )
            )
    return columns


def columns(found: Collected) -> list[Column]:
    return _bfcl_columns(found.bfcl) + _tau_columns(found.tau) + _next_action_columns(found.next_action)


# ---------------------------------------------------------------- noise


def compare_columns(columns: list[Column]) -> list[Difference]:
    """Marks each column's models within noise of its best; returns every comparison made (all pairs
    of up to :data:`ALL_PAIRS_UP_TO` models, else each model against the best)."""
    differences = []
    for column in columns:
        models = sorted(m for m, cell in column.cells.items() if cell.value is not None)
        best = column.best()
        if best is None or len(models) < 2:
            continue
        pairs = (
            list(combinations(models, 2))
            if len(models) <= ALL_PAIRS_UP_TO
            else [(best, m) for m in models if m != best]
        )
        for first, second in pairs:
            result = column.compare(first, second)
            if result is None or result.items == 0:
                continue
            differences.append(Difference(column.title, first, second, result))
            if best in (first, second) and result.within_noise:
                column.near_best.add(second if first == best else first)
    return differences


def verdict(difference: Difference) -> str:
    if difference.result.within_noise:
        return "within noise"
    return f"{difference.first if difference.result.difference.value > 0 else difference.second} better"


def difference_rows(differences: list[Difference]) -> list[list[str]]:
    """[figure, A, B, A − B with its interval (points), shared tasks/items, verdict] per comparison."""
    return [
        [
            d.figure,
            d.first,
            d.second,
            f"{100 * d.result.difference.value:+.1f} [{100 * d.result.difference.low:+.1f}, "
            f"{100 * d.result.difference.high:+.1f}]",
            str(d.result.items),
            verdict(d),
        ]
        for d in differences
    ]


DIFFERENCE_HEADER = ["figure", "A", "B", "A − B (points) [95%]", "shared tasks/items", "verdict"]
DIFFERENCE_CSV_HEADER = ["figure", "A", "B", "A − B (points)", "95% low", "95% high", "shared tasks/items",
                         "verdict"]  # fmt: skip


def difference_csv_rows(differences: list[Difference]) -> list[list[str]]:
    """The comparisons for spreadsheets: the difference and its interval's bounds as plain numbers."""
    rows = []
    for d in differences:
        gap = d.result.difference
        bounds = [f"{100 * x:.1f}" for x in (gap.value, gap.low, gap.high)]
        rows.append([d.figure, d.first, d.second, *bounds, str(d.result.items), verdict(d)])
    return rows
