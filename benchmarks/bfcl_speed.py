"""Wall time to score the full BFCL suite with our checker and with the official one.

Same result rows for both (built from the answer keys: correct outputs and wrong-type outputs,
every non-live, live, multi-turn and memory category, prompt-mode `python` layout), same process, same
run; data files are loaded (and cached) by both sides before timing. Prints per-category times
side by side, checks that the accuracies agree, and ends with the RESULT line.

    .venv/bin/python benchmarks/bfcl_speed.py [--variants gold wrong_type] [--format python]
"""

from __future__ import annotations

import argparse
import sys
import time

from evaluation.bfcl import data, scoring, synthetic
from evaluation.bfcl.official import OfficialScorer


def _variant_for(category: str, variant: str) -> str:
    """Multi-turn and memory have their own wrong variants: wrong_type there means a dropped
    argument, or a wrong answer."""
    if category in data.MULTI_TURN and variant not in synthetic.MULTI_TURN_VARIANTS:
        return "missing_param"
    if category in data.MEMORY and variant not in synthetic.MEMORY_VARIANTS:
        return "wrong"
    return variant


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["gold", "wrong_type"])
    parser.add_argument("--format", default="python", choices=["python", "json"])
    parser.add_argument(
        "--repeats", type=int, default=3, help="time each side this many times, keep the fastest"
    )
    args = parser.parse_args()
    fmt, underscore = args.format, args.format == "json"

    suites = {
        (c, v): synthetic.results_for(c, _variant_for(c, v), fmt, underscore_names=underscore)
        for c in data.SCORED
        for v in args.variants
    }
    warm = OfficialScorer(fmt, "bench-warm-up")
    for category in data.SCORED:  # warm both sides' data loading
        data.load_entries(category), data.load_answers(category)
        warm.entries(category)

    ours_total = theirs_total = 0.0
    disagreements = 0
    print(
        f"{'category':<26}{'variant':<12}{'items':>7}{'ours (s)':>10}{'official (s)':>14}{'acc ours':>10}{'acc off.':>10}"
    )
    for (category, variant), rows in suites.items():
        ours_s = theirs_s = float("inf")
        prompts, answers = warm.entries(category)
        for repeat in range(args.repeats):
            # A fresh model name per repeat: the official checker keeps backend instances in
            # module globals keyed by it, and would otherwise reuse the mutated ones.
            scorer = OfficialScorer(fmt, f"bench-{variant}-{repeat}")
            started = time.perf_counter()
            ours = scoring.score_category(category, rows, fmt, underscore_names=underscore)
            ours_s = min(ours_s, time.perf_counter() - started)
            started = time.perf_counter()
            passed = sum(
                scorer.verdict(category, prompts[k], row["result"], answers[k] if answers else None)
                for k, row in enumerate(rows)
            )
            theirs_s = min(theirs_s, time.perf_counter() - started)

        ours_total += ours_s
        theirs_total += theirs_s
        disagreements += int(passed != ours.correct)
        print(
            f"{category:<26}{variant:<12}{len(rows):>7}{ours_s:>10.3f}{theirs_s:>14.3f}"
            f"{ours.accuracy:>10.4f}{passed / len(rows):>10.4f}"
        )

    speedup = theirs_total / ours_total if ours_total else float("inf")
    print(f"{'total':<45}{ours_total:>10.3f}{theirs_total:>14.3f}")
    print(f"categories x variants with different accuracy: {disagreements}")
    if disagreements:
        print("accuracies disagree: the speed comparison is not like for like", file=sys.stderr)
    verdict = "PASS" if speedup >= 1.0 and not disagreements else "FAIL"
    print(f"RESULT bfcl_score_speedup: {speedup:.2f} (target >= 1.0) {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
