"""`apigen-mt view` on a large run: build time of the site and the browser's time to first render.

Generates a synthetic datagen run of N dialogues (default 20,000; retail tool names, 2 attempts per
blueprint, a third of them failed, ~11 messages each), builds the site with the quality figures
(coverage against retail's tool graph, MinHash near-duplicates, contamination against τ² and BFCL),
then opens it in headless Chromium over the DevTools protocol and reads app.js's render mark
(ms after navigation start) for the dialogue list, a filtered list (every index chunk loaded), a
dialogue page and the blueprint list.

    .venv/bin/python benchmarks/view_scale.py [--dialogues 20000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from datagen.rundir import DatagenRun
from viewer.browser import Browser, find_chromium
from viewer.cli import build_site

TARGET_MS = 3000.0  # "a 20,000-dialogue run must open in a browser in seconds"
WORDS = ["order", "refund", "kettle", "lamp", "card", "address", "flat", "exchange", "blue", "red", "charger", "headphones", "keyboard", "monitor", "desk", "chair", "delivery", "pending", "return", "cancel", "replace", "gift", "voucher", "weekend", "urgent"]  # fmt: skip
TOOLS = ("find_user_id_by_email", "get_user_details", "get_order_details", "cancel_pending_order",
         "return_delivered_order_items", "modify_pending_order_address", "get_product_details")  # fmt: skip


def _dialogue(rng: random.Random, blueprint: dict, attempt: int, success: bool) -> dict:
    messages = [{"role": "system", "content": "You are a retail agent. " * 40},
                {"role": "assistant", "content": "Hi! How can I help you today?"}]  # fmt: skip
    for turn in range(rng.randint(2, 4)):
        said = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20)))
        messages.append({"role": "user", "content": f"Turn {turn}: {said}"})
        name = rng.choice(TOOLS)
        call = {
            "id": f"call_{turn}",
            "type": "function",
            "function": {"name": name, "arguments": {"order_id": f"#W{rng.randrange(10**7)}"}},
        }
        messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        messages.append(
            {
                "role": "tool",
                "tool_call_id": f"call_{turn}",
                "name": name,
                "content": json.dumps({"status": "pending", "items": list(range(5))}),
            }
        )
        messages.append(
            {
                "role": "assistant",
                "content": "Here is what I found: " + " ".join(rng.choice(WORDS) for _ in range(15)),
            }
        )
    messages.append({"role": "user", "content": "Thanks! ###STOP###"})
    return {
        "id": f"{blueprint['id']}-a{attempt}", "blueprint_id": blueprint["id"], "env": "retail", "seed": 0,
        "attempt": attempt, "persona": blueprint["persona"], "instruction": blueprint["instruction"],
        "messages": messages, "tools": [], "success": success, "reward": float(success),
        "failure": None if success else rng.choice(["state_mismatch", "missing_output", "step_limit"]),
        "checks": {"state_match": success, "termination": "user_stop", "user_scores": [[7, 5]] * 3},
        "models": {"agent": "synthetic", "user": "synthetic"}, "agent_mode": "model",
        "usage": {"prompt_tokens": 4000, "completion_tokens": 300},
    }  # fmt: skip


def write_run(root: Path, dialogues: int, seed: int = 0) -> DatagenRun:
    rng = random.Random(seed)
    run = DatagenRun(root)
    root.mkdir(parents=True)
    blueprints, ok, failed = [], [], []
    for i in range(dialogues // 2):
        instruction = (
            f"You want to {rng.choice(WORDS)} the "
            + " ".join(rng.choice(WORDS) for _ in range(14))
            + f" (case {i})."
        )
        attempts = [
            {
                "round": 0,
                "passed": ["format", "execution", "outputs", "policy", "duplicate", "committee"],
                "failed_stage": None,
                "reasons": [],
            }
        ]
        blueprint = {
            "id": f"bench-{i:06d}", "env": "retail", "seed": 0, "user_id": f"user_{rng.randrange(500)}",
            "persona": f"Customer {i}, patient", "instruction": instruction,
            "actions": [{"name": "cancel_pending_order", "arguments": {"order_id": f"#W{i}", "reason": "no longer needed"}}],
            "outputs": [], "provenance": {"kind": "base", "funnel": {"kind": "base", "attempts": attempts, "round": 0, "stage": None, "usage": {}}},
        }  # fmt: skip
        blueprints.append(blueprint)
        for attempt in range(2):
            success = rng.random() > 1 / 3
            (ok if success else failed).append(_dialogue(rng, blueprint, attempt, success))
    for path, rows in ((run.blueprints, blueprints), (run.trajectories, ok), (run.failures, failed)):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    run.write_phase2_stats({"attempts": len(ok) + len(failed), "successful_trajectories": len(ok)})
    return run


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dialogues", type=int, default=20_000)
    parser.add_argument("--keep", type=Path, default=None, help="write run and site here and keep them")
    args = parser.parse_args()
    if find_chromium() is None:
        print(
            "RESULT view_first_render_ms: n/a (target < 3000) FAIL  (no chromium; run scripts/test-setup.sh)"
        )
        return 1
    work = args.keep or Path(tempfile.mkdtemp(prefix="view-scale-"))
    try:
        started = time.monotonic()
        run = write_run(work / "run", args.dialogues)
        generated = time.monotonic() - started
        size_mb = sum(p.stat().st_size for p in run.root.iterdir()) / 1e6
        started = time.monotonic()
        _, built, problems = build_site([run.root], work / "site")
        build_s = time.monotonic() - started
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1
        site = work / "site" / run.root.name
        site_mb = sum(p.stat().st_size for p in site.rglob("*") if p.is_file()) / 1e6
        first_id = json.loads(run.trajectories.open().readline())["id"]
        with Browser() as browser:
            timings = {
                "dialogue list, first page": browser.open((site / "dialogues.html").as_uri()),
                "dialogue list, filtered (all chunks)": browser.open(
                    (site / "dialogues.html").as_uri() + "#f.failure=step_limit"
                ),
                "one dialogue page": browser.open(
                    (site / "item.html").as_uri() + f"#c=dialogues&id={first_id}"
                ),
                "blueprint list, first page": browser.open((site / "blueprints.html").as_uri()),
            }
            rows = browser.evaluate("document.querySelectorAll('#list tbody tr').length")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"dialogues {args.dialogues:,} · run files {size_mb:,.1f} MB (written in {generated:.1f} s) · site data {site_mb:,.1f} MB"
    )
    print(f"{'site build (incl. quality figures)':<40} {build_s:8.1f} s")
    for name, ms in timings.items():
        print(f"{name:<40} {ms:8.0f} ms to first render")
    first = timings["dialogue list, first page"]
    ok = first < TARGET_MS and rows > 0
    print(
        f"RESULT view_first_render_ms: {first:.0f} (target < {TARGET_MS:.0f}; build {build_s:.1f} s) {'PASS' if ok else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
