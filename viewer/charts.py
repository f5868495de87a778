"""Charts as inline SVG (no script, no library): the run funnel with base and recombined tasks as
two series, each bar labelled with its count."""

from __future__ import annotations

from markupsafe import Markup, escape

from datagen.quality.funnel import KINDS, RunFunnel

ROW = 26
LABEL_W = 170
BAR_W = 420


def funnel_svg(funnel: RunFunnel) -> Markup:
    """Horizontal grouped bars: one row per stage, a bar per series (base, recombined)."""
    largest = max((max(b.counts.values(), default=0) for b in funnel.bars), default=0) or 1
    series = [k for k in KINDS if any(b.counts.get(k) for b in funnel.bars)] or ["base"]
    height = ROW * len(funnel.bars) + 30
    parts = [
        f'<svg class="chart funnel" id="funnel-chart" role="img" width="{LABEL_W + BAR_W + 90}" '
        f'height="{height}" aria-label="datagen funnel">'
    ]
    bar_h = (ROW - 6) / len(series)
    for row, bar in enumerate(funnel.bars):
        y = 20 + row * ROW
        parts.append(
            f'<text x="{LABEL_W - 8}" y="{y + ROW / 2}" text-anchor="end" dominant-baseline="middle">'
            f"{escape(bar.label)}</text>"
        )
        for i, kind in enumerate(series):
            value = bar.counts.get(kind, 0)
            width = BAR_W * value / largest
            top = y + 2 + i * bar_h
            parts.append(
                f'<rect class="{kind}" data-stage="{escape(bar.label)}" data-series="{kind}" data-value="{value}" '
                f'x="{LABEL_W}" y="{top:.1f}" width="{width:.1f}" height="{bar_h - 1:.1f}"/>'
                f'<text x="{LABEL_W + width + 4:.1f}" y="{top + bar_h / 2:.1f}" dominant-baseline="middle">{value}</text>'
            )
    legend = "".join(
        f'<rect class="{k}" x="{LABEL_W + i * 110}" y="4" width="10" height="10"/>'
        f'<text x="{LABEL_W + i * 110 + 14}" y="13">{k} tasks</text>'
        for i, k in enumerate(series)
    )
    parts.append(legend + "</svg>")
    return Markup("".join(parts))
