"""BFCL's Java/JavaScript decoder on hostile input: deep or huge text is a DecodeError (a failed item),
never a segfault or a minute of parsing; and the error-node rule agrees with BFCL's own
(``"ERROR" in root.sexp()``) wherever BFCL's survives. Deep input runs in a subprocess: before the
bound, it killed the process with SIGSEGV."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("tree_sitter_java", "tree_sitter_javascript")),
    reason="needs tree-sitter-java and tree-sitter-javascript",
)

from evaluation.bfcl.handlers import DecodeError  # noqa: E402
from evaluation.bfcl.handlers.sourcelang import (  # noqa: E402
    MAX_DEPTH,
    MAX_SOURCE_CHARS,
    _check_tree,
    _parser,
    decode_java,
    decode_javascript,
)

HOSTILE = {
    "member chain": "a." * 50_000 + "b(x=1)",
    "nested brackets": "f(x=" + "[" * 20_000 + "]" * 20_000 + ")",
    "operator chain": "f(x=" + "1+" * 20_000 + "1)",
    "member chain under the size bound": "a." * 20_000 + "b(x=1)",
    "1.75 MB": "f(x=new int[]{" + ",".join(["1"] * 870_000) + "})",
}

PROBE = """
import json, sys, time
from evaluation.bfcl.handlers import DecodeError
from evaluation.bfcl.handlers.sourcelang import decode_java, decode_javascript
source = sys.stdin.read()
out = {}
for name, decode in (("java", decode_java), ("javascript", decode_javascript)):
    started = time.monotonic()
    try:
        decode(source)
        out[name] = ["decoded", time.monotonic() - started]
    except DecodeError as exc:
        out[name] = ["DecodeError: " + str(exc), time.monotonic() - started]
print(json.dumps(out))
"""


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_source_is_a_decode_error_in_a_process_that_survives(case: str):
    done = subprocess.run(
        [sys.executable, "-c", PROBE], input=HOSTILE[case], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    found = json.loads(done.stdout)
    for language, (verdict, _seconds) in found.items():  # times: benchmarks/bfcl_sourcelang_bounds.py
        assert verdict.startswith("DecodeError: "), (language, verdict)


def test_the_bounds_are_what_the_decoder_says():
    with pytest.raises(DecodeError, match=f"more than the {MAX_SOURCE_CHARS}"):
        decode_java("f(x=" + "1" * MAX_SOURCE_CHARS + ")")
    with pytest.raises(DecodeError, match=f"nested more than {MAX_DEPTH} brackets deep"):
        decode_javascript("f(x=" + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + ")")
    with pytest.raises(DecodeError, match=f"nested more than {MAX_DEPTH} levels deep"):
        decode_java("a." * (MAX_DEPTH + 5) + "b(x=1)")
    # What a model writes is well inside them (BFCL's reader writes a nested array back this way).
    nested = "f(x=new int[][]{" + ",".join("{1, 2}" for _ in range(50)) + "}, y=1+2+3)"
    assert decode_java(nested) == [{"f": {"x": "new int[]{" + ",".join(["{1,2}"] * 50) + "}", "y": "1+2+3"}}]
    assert decode_javascript("f(x=[[1, 2], [3]], y='a')") == [{"f": {"x": "[[1, 2], [3]]", "y": "a"}}]


def test_a_deep_line_in_a_result_file_fails_its_item_and_scores_the_rest(tmp_path):
    from cli_runs import APIGEN_MT

    from datagen.rundir import BfclRun
    from evaluation.bfcl import synthetic

    run = tmp_path / "model"
    path = BfclRun.result_file(run, "simple_java")
    rows = synthetic.results_for("simple_java", "gold", "python", stride=20)
    rows[0] = {**rows[0], "result": "[" + "a." * 50_000 + "b(x=1)]"}
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = subprocess.run([APIGEN_MT, "eval", "bfcl-score", str(run), "--result-format", "python", "--json"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    counts = json.loads(done.stdout)["counts"]["simple_java"]
    assert counts["total"] == len(rows) and counts["correct"] == len(rows) - 1


SOURCE = st.text(alphabet="ab.(){}[]=;,'\" 1+new", max_size=120)


@settings(max_examples=400, deadline=None)
@given(source=SOURCE, language=st.sampled_from(["java", "javascript"]))
def test_the_error_rule_agrees_with_bfcls_sexp_check(source: str, language: str):
    root = _parser(language).parse(source.encode("utf-8")).root_node
    bfcl_fails = "ERROR" in root.sexp()  # BFCL's own check: safe at this depth
    try:
        _check_tree(root, language)
        ours_fails = False
    except DecodeError:
        ours_fails = True
    assert ours_fails == bfcl_fails, root.sexp()
