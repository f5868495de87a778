"""`eval tau --repeats N`: the whole evaluation N times, and how much pass^k moves from run to run.

Repeat r (1-based) is an ordinary τ run in ``DIR/repeat-r`` with the run seed ``seed + r - 1``, so
every dialogue of every repeat is sampled afresh (a repeat with the same seed would replay the same
samples). The spread (mean, standard deviation, range over the repeats) is what a τ-style number varies
by when the whole evaluation is run again; the interval of one run is how sure that one run is about
the tasks it sampled. Both are reported side by side.
"""

from __future__ import annotations

from statistics import mean, stdev
from typing import Any

from evaluation.intervals import Interval
from evaluation.tau.config import TauConfig


def repeat_config(config: TauConfig, index: int) -> TauConfig:
    """The recipe of repeat ``index`` (1-based): the same but for the run seed."""
    return config.model_copy(update={"seed": config.seed + index - 1})


def repeat_spread(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """pass^k of each repeat and its spread over the repeats, per k every repeat has."""
    ks = [k for k in summaries[0]["pass_k"] if all(k in s["pass_k"] for s in summaries)]
    spread = {}
    for k in ks:
        values = [float(s["pass_k"][k]) for s in summaries]
        spread[k] = {
            "values": values,
            "mean": mean(values),
            "sd": stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
            "intervals": [s.get("pass_k_interval", {}).get(k) for s in summaries],
        }
    first = summaries[0]
    return {
        "env": first.get("env"),
        "agent": first.get("agent"),
        "user": first.get("user"),
        "repeats": len(summaries),
        "pass_k": spread,
    }


def format_spread(spread: dict[str, Any], seeds: list[int]) -> str:
    lines = [
        f"{spread['env']}: agent {spread['agent']} vs user {spread['user']} — {spread['repeats']} repeats "
        f"(run seeds {seeds[0]}..{seeds[-1]})",
        "k  run-to-run: mean ± sd [min, max]       one run's interval over tasks (each repeat)",
    ]
    for k, figures in spread["pass_k"].items():
        runs = ", ".join(Interval(**i).text() for i in figures["intervals"] if i)
        lines.append(
            f"{k:<2} {figures['mean']:.3f} ± {figures['sd']:.3f} [{figures['min']:.3f}, {figures['max']:.3f}]"
            f"{'':<8}{runs}"
        )
    return "\n".join(lines)
