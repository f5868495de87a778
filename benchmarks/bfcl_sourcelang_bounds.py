"""Worst-case time of the Java/JavaScript decoder on hostile model output, bounded vs BFCL's route.

Each hostile text (a wide array, junk, deep member/operator/bracket chains) is decoded by our bounded
decoder (``evaluation.bfcl.handlers.sourcelang``) and, where it survives, by BFCL's route: tree-sitter
parse, ``"ERROR" in root.sexp()``, then the recursive walk. The deepest texts kill BFCL's route with
SIGSEGV (sexp recurses in C), so they are timed on ours only; a text over the size bound is refused
before parsing (well under 1 ms, shown as ">N x"). Same process, same run; each time is
the fastest of --repeats. Ends with the RESULT line: the slowest bounded decode.

    .venv/bin/python benchmarks/bfcl_sourcelang_bounds.py [--repeats 3] [--large]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import time
from collections.abc import Callable

from evaluation.bfcl.handlers import DecodeError
from evaluation.bfcl.handlers.sourcelang import _first_java_call, _parser, decode_java, decode_javascript

TARGET_MS = 2000.0  # what BFCL's route took on 340 KB; ours must stay under it at any size


def _hostile(large: bool) -> dict[str, tuple[str, bool]]:
    """name -> (text, whether BFCL's route survives it)."""
    random.seed(0)
    wide = {
        f"wide array {n // 1000} KB": ("f(x=new int[]{" + ",".join(["1"] * (n // 2)) + "})", True)
        for n in ([40_000, 340_000] + ([1_750_000] if large else []))
    }
    junk = "".join(random.choice("ab(){}[];,.=\"' +") for _ in range(340_000))
    return {
        **wide,
        "junk 340 KB": (junk, True),
        "member chain 100 KB": ("a." * 50_000 + "b(x=1)", False),
        "nested brackets 40 KB": ("f(x=" + "[" * 20_000 + "]" * 20_000 + ")", False),
        "member chain 40 KB (under the size bound)": ("a." * 20_000 + "b(x=1)", True),
    }


def _bfcl_route(source: str, language: str) -> None:
    root = _parser(language).parse(source.encode("utf-8")).root_node
    if "ERROR" in root.sexp():
        return
    if language == "java":
        _first_java_call(root)


def _fastest(run: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        with contextlib.suppress(DecodeError, RecursionError):
            run()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large", action="store_true", help="also the 1.75 MB text (BFCL's route: ~30 s)")
    args = parser.parse_args()
    print(f"{'text':<44} {'language':<11} {'bounded ms':>11} {'BFCL route ms':>14} {'ratio':>7}")
    worst = 0.0
    for name, (text, survives) in _hostile(args.large).items():
        for language, decode in (("java", decode_java), ("javascript", decode_javascript)):
            ours = _fastest(lambda: decode(text), args.repeats)  # noqa: B023
            worst = max(worst, ours)
            if survives:
                theirs = _fastest(lambda: _bfcl_route(text, language), 1)  # noqa: B023
                ratio = f"{theirs / ours:>6.0f}x" if ours >= 1 else f"{'>' + str(int(theirs)):>6}x"
                row = f"{theirs:>14.1f} {ratio}"
            else:
                row = f"{'SIGSEGV':>14} {'':>7}"
            print(f"{name:<44} {language:<11} {ours:>11.1f} {row}")
    verdict = "PASS" if worst < TARGET_MS else "FAIL"
    print(f"RESULT bfcl_sourcelang_worst_decode_ms: {worst:.1f} (target < {TARGET_MS:.0f}) {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
