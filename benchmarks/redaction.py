"""Time to redact one large value (apigen_rules/redact.py), the work every saved recipe, CLI error line
and card does: before issue 30, 40,000 letters in a row took 28 s (a pattern tried at every
position of a word); a 10 MB recipe value hung `blueprints`, `simulate` and the evaluations.

Prints, per shape of input, the time for 1 MB and for 10 MB side by side and their ratio (10 for
linear work, 100 for quadratic), and ends with the RESULT line: the slowest 10 MB value.

    .venv/bin/python benchmarks/redaction.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import base64
import random
import string
import time

from apigen_rules.redact import redact_config, redact_text

MB = 1_000_000


def shapes(size: int) -> dict[str, str]:
    rng = random.Random(0)
    return {
        "one word": "A" * size,
        "printable noise": "".join(rng.choices(string.printable, k=size)),
        "base64 blob": base64.b64encode(rng.randbytes(size * 3 // 4)).decode()[:size],
        "secret value": 'api_key: "' + "k" * size + '"',
        "recipe with a long prompt": "name: r\nenv: retail\nprompt: |\n"
        + "  the user says hi\n" * (size // 19),
        "a URL with userinfo": "http://user:" + "p@" * (size // 2) + "@host/v1",
    }


def best_of(repeats: int, work, value) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work(value)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=3, help="time each input this many times, keep the fastest"
    )
    args = parser.parse_args()
    small, large = shapes(MB), shapes(10 * MB)
    print(f"{'input':28s} {'1 MB':>8s} {'10 MB':>8s} {'ratio':>6s}")
    slowest = 0.0
    for name in small:
        one = best_of(args.repeats, redact_text, small[name])
        ten = best_of(args.repeats, redact_text, large[name])
        slowest = max(slowest, ten)
        print(f"{name:28s} {one:7.3f}s {ten:7.3f}s {ten / max(one, 1e-9):6.1f}")
    config = {"models": {"m": {"engine_args": {"prompt": "x" * 10 * MB}}}}
    nested = best_of(args.repeats, redact_config, config)
    print(f"{'a config with a 10 MB value':28s} {'':>8s} {nested:7.3f}s")
    slowest = max(slowest, nested)
    print(f"RESULT redact_10mb_value_s: {slowest:.3f} (target < 1.0) {'PASS' if slowest < 1.0 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
