"""The report's figures as PNG bytes: datagen funnel, BFCL per-category accuracy, pass^k curves,
next-action accuracy."""

from __future__ import annotations

import io
import re
from typing import Any

from datagen.quality.funnel import KINDS, run_funnel
from datagen.rundir import DatagenRun as RunDir
from evaluation.report.collect import BfclResult, DatagenFunnel, NextActionResult, TauResult

LABEL_CHARS = 60  # a name longer than this is cut in a figure (the tables hold it whole)
MAX_INCHES = 60  # no figure wider or higher than this, however many names it shows
_SURROGATE = re.compile("[\ud800-\udfff]")


def label(text: Any) -> str:
    """A name from a result file as matplotlib draws it literally: cut to ``LABEL_CHARS``, control
    characters and lone surrogates as U+FFFD, and every ``$`` escaped, since text between two dollar
    signs is mathtext to matplotlib (and a ``$`` in a model name stopped the whole report)."""
    text = str(text)
    if len(text) > LABEL_CHARS:
        text = text[: LABEL_CHARS - 1] + "…"
    text = "".join(
        "\ufffd" if ord(c) < 32 or 0x7F <= ord(c) < 0xA0 else c for c in _SURROGATE.sub("\ufffd", text)
    )
    return text.replace("$", r"\$")


def _figure(width: float = 6.4, height: float = 3.6):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(min(width, MAX_INCHES), min(height, MAX_INCHES)), dpi=110)
    return plt, fig, ax


def _png(plt: Any, fig: Any) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def funnel_stages(run: DatagenFunnel) -> list[tuple[str, dict[str, int]]]:
    """(stage, tasks per series) from proposal to blueprints with a verified dialogue, counted per task
    with base and recombined tasks apart (``datagen.quality.funnel``), so no bar exceeds the one above."""
    return [(bar.label, bar.counts) for bar in run_funnel(RunDir(run.path)).bars]


def funnel_png(runs: list[DatagenFunnel]) -> bytes:
    rows = [(run, name, counts) for run in runs for name, counts in funnel_stages(run)]
    plt, fig, ax = _figure(6.4, 0.9 + 0.45 * max(1, len(rows)))
    labels = [label(f"{run.name}: {name}" if len(runs) > 1 else name) for run, name, _ in rows]
    height = 0.8 / len(KINDS)
    for offset, (kind, color) in enumerate(zip(KINDS, ("#4c72b0", "#dd8452"), strict=True)):
        ys = [i - 0.4 + height * (offset + 0.5) for i in range(len(rows))]
        values = [counts.get(kind, 0) for _, _, counts in rows]
        ax.barh(ys, values, height, color=color, label=f"{kind} tasks")
        for y, v in zip(ys, values, strict=True):
            ax.text(v, y, f" {v:g}", va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("tasks")
    ax.set_title("datagen funnel (tasks at each stage)")
    ax.legend(fontsize=7)
    return _png(plt, fig)


def bfcl_png(results: list[BfclResult]) -> bytes:
    categories = sorted({c for r in results for c in r.categories})
    plt, fig, ax = _figure(max(6.4, 0.45 * len(categories) * max(1, len(results))), 4.0)
    width = 0.8 / max(1, len(results))
    for i, result in enumerate(results):
        xs = [j + i * width for j in range(len(categories))]
        ax.bar(
            xs, [100 * result.categories.get(c, 0.0) for c in categories], width, label=label(result.model)
        )
    ax.set_xticks(
        [j + 0.4 - width / 2 for j in range(len(categories))],
        [label(c) for c in categories],
        rotation=60,
        ha="right",
        fontsize=7,
    )
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("BFCL-style accuracy per category")
    ax.legend(fontsize=7)
    return _png(plt, fig)


def pass_k_png(results: list[TauResult]) -> bytes:
    plt, fig, ax = _figure(6.4, 3.6)
    for result in results:
        curve = result.pass_k()
        ks = list(curve)
        name = f"{label(result.model)} · {label(result.env)}"
        ax.plot(ks, [curve[k] for k in ks], "-o", label=name)
        changing = result.pass_k("pass_k_state_changing_only")
        if changing and changing != curve:
            ax.plot(ks, [changing.get(k, 0.0) for k in ks], "--", alpha=0.7, label=f"{name} (state-changing)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("k")
    ax.set_ylabel("pass^k")
    ax.set_ylim(0, 1.02)
    ax.set_title("τ-bench-style pass^k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(plt, fig)


NEXT_ACTION_BARS = (("decision", "decision_accuracy"), ("decode", "decode_rate"), ("name match", "name_match"),
                    ("exact match", "exact_match"), ("arg recall", "argument_recall"))  # fmt: skip


def next_action_png(results: list[NextActionResult]) -> bytes:
    plt, fig, ax = _figure(max(6.4, 1.6 * len(NEXT_ACTION_BARS)), 3.8)
    width = 0.8 / max(1, len(results))
    for i, result in enumerate(results):
        overall = result.overall
        xs = [j + i * width for j in range(len(NEXT_ACTION_BARS))]
        values = [100 * overall.get(key, 0.0) for _, key in NEXT_ACTION_BARS]
        ax.bar(xs, values, width, label=f"{label(result.model)} · {label(result.label)}")
    ax.set_xticks(
        [j + 0.4 - width / 2 for j in range(len(NEXT_ACTION_BARS))], [n for n, _ in NEXT_ACTION_BARS]
    )
    ax.set_ylabel("% of turns")
    ax.set_ylim(0, 100)
    ax.set_title("next-action accuracy (held-out dialogues)")
    ax.legend(fontsize=7)
    return _png(plt, fig)
