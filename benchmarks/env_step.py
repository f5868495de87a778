"""Environment step cost per native domain: tool calls per second, reset, state hash, and a 10-call
replay (reset + 10 calls + final hash) on the largest native domain.

    .venv/bin/python benchmarks/env_step.py [--repeats 200] [--domains retail airline bank]

The 10-call sequence is the gold tasks' own actions, concatenated in order until there are ten
(different gold tasks touch different customers, so the calls stay valid). Times are medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from datagen.envs.base import Domain
from datagen.envs.registry import DomainLoadError, get_domain, installed_domains
from datagen.envs.store import canonical_json, state_hash_of

TARGET_MS = 20.0
NATIVE = ("retail", "airline", "bank")


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def ten_calls(domain: Domain) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for task in domain.gold_tasks:
        if task.seed not in (None, domain.eval_seed):
            continue
        calls.extend(a.model_dump() for a in task.actions)
        if len(calls) >= 10:
            return calls[:10]
    return calls


def measure(domain: Domain, repeats: int) -> dict[str, Any]:
    start = time.perf_counter()
    env = domain.new_env()
    build_ms = (time.perf_counter() - start) * 1000
    env.state_hash()  # the base's record digests are computed once per process, like the database
    snapshot = env.snapshot()
    records = sum(len(rows) for rows in snapshot.values())
    size_mb = len(canonical_json(snapshot).encode()) / 1e6
    calls = ten_calls(domain)
    row: dict[str, Any] = {
        "domain": domain.name,
        "records": records,
        "size_mb": size_mb,
        "build_ms": build_ms,
        "calls": len(calls),
    }
    row["reset_ms"] = median_ms(env.reset, repeats)
    row["hash_ms"] = median_ms(env.state_hash, repeats)
    row["full_hash_ms"] = median_ms(lambda: state_hash_of(env.snapshot()), 3)
    if not calls:
        return row

    def replay() -> None:
        env.reset()
        env.replay(calls)
        env.state_hash()

    row["replay10_ms"] = median_ms(replay, repeats)
    env.reset()
    row["ok_calls"] = sum(o.ok for o in env.replay(calls))
    row["hash_after_ms"] = median_ms(env.state_hash, repeats)
    total_calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < 1.0:
        env.reset()
        env.replay(calls)
        total_calls += len(calls)
    row["calls_per_s"] = total_calls / (time.perf_counter() - start)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--domains", nargs="*", default=[n for n in NATIVE if n in installed_domains()])
    args = parser.parse_args(argv)
    console = Console(width=160)
    rows, failed = [], {}
    for name in args.domains:
        try:
            domain = get_domain(name)
        except DomainLoadError as exc:
            failed[name] = str(exc)
            continue
        rows.append(measure(domain, args.repeats))
    table = Table(title="environment step cost (medians)")
    columns = [
        ("domain", "domain", "{}"),
        ("records", "records", "{}"),
        ("JSON MB", "size_mb", "{:.1f}"),
        ("db build ms", "build_ms", "{:.0f}"),
        ("reset ms", "reset_ms", "{:.3f}"),
        ("hash ms (fresh)", "hash_ms", "{:.3f}"),
        ("hash ms (after calls)", "hash_after_ms", "{:.3f}"),
        ("full rehash ms", "full_hash_ms", "{:.1f}"),
        ("calls ok", "ok_calls", "{}"),
        ("calls/s", "calls_per_s", "{:.0f}"),
        ("10-call replay ms", "replay10_ms", "{:.2f}"),
    ]
    for title, _, _ in columns:
        table.add_column(title, justify="right")
    for row in rows:
        ok = f"{row.get('ok_calls', 0)}/{row['calls']}"
        cells = [
            ok if key == "ok_calls" else (fmt.format(row[key]) if key in row else "n/a")
            for _, key, fmt in columns
        ]
        table.add_row(*cells)
    console.print(table)
    for name, reason in failed.items():
        console.print(f"[red]{name} not measured:[/] {reason}", highlight=False)
    measured = [r for r in rows if "replay10_ms" in r and r["calls"] == 10]
    if not measured:
        print("RESULT env_replay10_ms: n/a (target < 20) FAIL")
        return 1
    # "Largest" is by canonical JSON size: that is what a from-scratch hash or a copy would pay for.
    largest = max(measured, key=lambda r: r["size_mb"])
    value = largest["replay10_ms"]
    console.print(
        f"largest native domain: {largest['domain']} ({largest['size_mb']:.1f} MB, {largest['records']} records); "
        f"slowest 10-call replay: {max(r['replay10_ms'] for r in measured):.2f} ms",
        highlight=False,
    )
    print(
        f"RESULT env_replay10_ms: {value:.2f} (target < {TARGET_MS:g}) {'PASS' if value < TARGET_MS else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
