"""`apigen-mt eval bfcl-score` through the real command line, and generation end to end (slow)."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("bfcl_eval") is None, reason="needs bfcl-eval (BFCL data)"
)

from datagen.rundir import BfclRun  # noqa: E402
from evaluation.bfcl import data, results, scoring, synthetic  # noqa: E402

APIGEN = [sys.executable, "-c", "from datagen.cli import main; raise SystemExit(main())"]


def _write_run(root: Path, variant: str, fmt: str, categories: list[str]) -> None:
    for category in categories:
        rows = synthetic.results_for(category, variant, fmt, underscore_names=fmt == "json", stride=1)
        results.write_results(BfclRun.result_file(root / "some-model", category), rows)
    BfclRun(root).write_metadata({"model": "some-model", "format": fmt, "underscore_names": fmt == "json"})


def test_eval_help_lists_bfcl_subcommands():
    out = subprocess.run([*APIGEN, "eval", "--help"], capture_output=True, text=True, check=True).stdout
    assert "bfcl-score" in out and "bfcl " in out


def test_bfcl_score_json_matches_in_process_scores_and_writes_reports(tmp_path):
    categories = ["simple_javascript", "live_parallel", "live_relevance", "multi_turn_miss_param"]
    _write_run(tmp_path, "swapped", "json", categories)
    proc = subprocess.run(
        [*APIGEN, "eval", "bfcl-score", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    for category in categories:
        rows = results.read_results(BfclRun.result_file(tmp_path / "some-model", category))
        expected = scoring.score_category(category, rows, "json", underscore_names=True).accuracy
        assert printed["categories"][category] == pytest.approx(expected)
    assert 0.0 <= printed["overall"]["v4"] <= 1.0 and 0.0 <= printed["overall"]["v3"] <= 1.0
    score_dir = tmp_path / "score"
    with (score_dir / "data_overall.csv").open() as handle:
        row = list(csv.DictReader(handle))[0]
    assert row["Model"] == "some-model" and row["Overall Acc"].endswith("%")
    verdicts = [json.loads(line) for line in (score_dir / "verdicts.jsonl").read_text().splitlines()]
    assert {v["category"] for v in verdicts} == set(categories)
    assert all(v["error_type"] for v in verdicts if not v["valid"])
    assert "| live_relevance |" in (score_dir / "summary.md").read_text()


def test_format_flag_overrides_metadata(tmp_path):
    _write_run(tmp_path, "gold", "json", ["live_parallel"])
    as_json = subprocess.run(
        [*APIGEN, "eval", "bfcl-score", str(tmp_path), "--json"], capture_output=True, text=True, check=True
    )
    as_python = subprocess.run(
        [*APIGEN, "eval", "bfcl-score", str(tmp_path), "--json", "--result-format", "python"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(as_json.stdout)["categories"]["live_parallel"] == 1.0
    # FC-layout lists are not Python call text: read as python, nothing decodes.
    assert json.loads(as_python.stdout)["categories"]["live_parallel"] == 0.0


def test_bfcl_score_rejects_a_missing_directory(tmp_path):
    proc = subprocess.run(
        [*APIGEN, "eval", "bfcl-score", str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "not a directory" in proc.stderr


@pytest.mark.slow
def test_generation_end_to_end_on_the_embedded_model(tmp_path):
    """The embedded SmolLM2 through the real runtime on a tiny subset: files, metadata and scores.

    Single-turn only: multi-turn prompts carry every backend's function docs (thousands of tokens)
    and take ~10 minutes on CPU with transformers; multi-turn execution is covered by the replay
    and agreement tests."""
    pytest.importorskip("datagen.llm.transformers_backend")
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            *APIGEN,
            "eval",
            "bfcl",
            "--model",
            "embedded",
            "--backend",
            "transformers",
            "--prompt-mode",
            "prompt",
            "--categories",
            "simple_python",
            "live_irrelevance",
            "--limit",
            "2",
            "--max-tokens",
            "32",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = results.find_result_files(out)
    assert set(files) == {"simple_python", "live_irrelevance"}
    for path in files.values():
        rows = results.read_results(path)
        assert len(rows) == 2 and all("id" in r and "result" in r for r in rows)
    assert all(isinstance(r["result"], str) for r in results.read_results(files["simple_python"]))
    metadata = results.read_metadata(out)
    assert metadata["format"] == "python" and metadata["bfcl_eval_version"]
    assert (out / "score" / "data_overall.csv").exists()


def test_result_folder_is_the_result_name_or_the_model_path_last_part(tmp_path):
    from datagen.recipe import validate_recipe
    from evaluation.bfcl.cli import _generate_parser, recipe_data, result_label
    from evaluation.bfcl.config import BfclConfig
    from evaluation.bfcl.generate import model_result_dir

    def folder(*extra: str) -> Path:
        args = _generate_parser().parse_args(["--model", "/ckpt/run-7/", "--out", str(tmp_path), *extra])
        data, source = recipe_data(args)
        config = validate_recipe(data, BfclConfig, source)
        return model_result_dir(args.out, result_label(config))

    assert folder() == tmp_path / "run-7"
    # A name BFCL's registry knows, so that `bfcl evaluate` re-scores the folder.
    assert folder("--result-name", "Salesforce/xLAM-2-8b-fc-r") == tmp_path / "Salesforce_xLAM-2-8b-fc-r"


# ---------------------------------------------------------------- format resolution


def _score(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*APIGEN, "eval", "bfcl-score", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def _bfcl_folder(root: Path, folder: str, fmt: str, variant: str = "gold", stride: int = 40) -> Path:
    """A result folder laid out as BFCL's runner lays it out (no run metadata)."""
    for category, group in (
        ("simple_python", "non_live"),
        ("live_irrelevance", "live"),
        ("multi_turn_base", "multi_turn"),
    ):
        rows = synthetic.results_for(category, variant, fmt, underscore_names=fmt == "json", stride=stride)
        results.write_results(BfclRun.result_file(root / folder / group, category), rows)
    return root / folder


@pytest.mark.parametrize(
    ("folder", "fmt", "handler"),
    [
        ("Salesforce_xLAM-2-1b-fc-r", "xlam", "SalesforceQwenHandler"),
        ("gpt-4o-2024-11-20-FC", "json", "OpenAIResponsesHandler"),
        ("meta-llama_Llama-3.1-8B-Instruct", "python", "OSSHandler"),
        ("Qwen_Qwen3-8B-FC", "hermes", "QwenFCHandler"),
    ],
)
def test_bfcl_model_folders_pick_their_decoder_and_say_so(tmp_path, folder, fmt, handler):
    """Published leaderboard folders carry no metadata: BFCL's registry names the decoder."""
    run = _bfcl_folder(tmp_path, folder, fmt)
    proc = _score([str(run), "--json"])
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stderr.splitlines() if "decoder" in line)
    assert f"decoder {fmt}, strict" in line and folder in line and handler in line
    printed = json.loads(proc.stdout)
    assert printed["decoder"]["format"] == fmt and printed["decoder"]["source"] == "folder name"
    assert printed["categories"]["simple_python"] >= 0.9 and printed["categories"]["multi_turn_base"] == 1.0
    assert "bfcl-score: WARNING" not in proc.stderr


def test_an_unknown_folder_is_sniffed_and_a_wrong_format_warns(tmp_path):
    run = _bfcl_folder(tmp_path, "my-finetune", "xlam")
    sniffed = _score([str(run), "--json"])
    assert sniffed.returncode == 0, sniffed.stderr
    assert "decoder xlam" in sniffed.stderr and "read from the rows" in sniffed.stderr
    assert json.loads(sniffed.stdout)["decoder"]["source"] == "rows"
    wrong = _score([str(run), "--json", "--result-format", "python"])
    assert wrong.returncode == 0
    warnings = [line for line in wrong.stderr.splitlines() if "WARNING" in line]
    assert any("simple_python" in w and "--result-format xlam" in w for w in warnings), wrong.stderr
    assert any("multi_turn_base" in w and "--result-format xlam" in w for w in warnings), wrong.stderr
    assert json.loads(wrong.stdout)["warnings"]


def test_lenient_is_opt_in_and_recorded(tmp_path):
    run = tmp_path / "model"
    rows = synthetic.results_for("live_simple", "gold", "python", stride=10)
    answers = dict(
        zip([e.id for e in data.load_entries("live_simple")], data.load_answers("live_simple"), strict=True)
    )
    for row in rows:  # the same calls as <tool_call> blocks without their newlines
        calls = synthetic._gold_calls(answers[row["id"]])
        row["result"] = synthetic.shapes.render("tool_call_no_newlines", calls)
    results.write_results(BfclRun.result_file(run, "live_simple"), rows)
    strict = _score([str(run), "--json", "--result-format", "hermes"])
    lenient = _score([str(run), "--json", "--result-format", "hermes", "--lenient"])
    assert json.loads(strict.stdout)["categories"]["live_simple"] == 0.0
    assert json.loads(lenient.stdout)["categories"]["live_simple"] > 0.9
    assert json.loads(lenient.stdout)["decoder"]["strict"] is False
    assert "lenient" in (run / "score" / "summary.md").read_text()


def test_help_lists_every_format_with_its_bfcl_handlers():
    from evaluation.bfcl.handlers import STRICT

    out = subprocess.run([*APIGEN, "eval", "bfcl-score", "--help"], capture_output=True, text=True).stdout
    for decoder in STRICT.values():
        assert decoder.name in out and all(h in out for h in decoder.handler_names), decoder.name
    bad = _score(["/tmp", "--result-format", "nope"])
    assert bad.returncode == 2 and all(name in bad.stderr for name in STRICT)


# ---------------------------------------------------------------- broken result files


def test_broken_lines_are_named_skipped_and_counted_as_failed(tmp_path):
    run = tmp_path / "model"
    path = BfclRun.result_file(run, "simple_python")
    rows = synthetic.results_for("simple_python", "gold", "python", stride=40)
    lines = [json.dumps(r) for r in rows]
    lines[1] = lines[1][:40] + "\x01" + lines[1][40:]  # a raw control character: invalid JSON
    lines[2] = "[1, 2]"
    lines[3] = json.dumps({"result": rows[3]["result"]})
    lines.append(lines[5])  # the same id again
    path.parent.mkdir(parents=True)
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"id": "\xff", "result": 1}\n')
    BfclRun(run).write_metadata({"format": "python"})
    proc = _score([str(run), "--json"])
    assert proc.returncode == 0, proc.stderr
    for line_number, expected in (
        (2, "not valid JSON"),
        (3, "found an array"),
        (4, 'expected an "id"'),
        (12, "not valid UTF-8"),
    ):
        assert f"{path}:{line_number}: expected" in proc.stderr and expected in proc.stderr, (
            line_number,
            proc.stderr,
        )
    assert f"{path}:11: expected each id once, found '{rows[5]['id']}' on lines 6 and 11" in proc.stderr
    counts = json.loads(proc.stdout)["counts"]["simple_python"]
    # 10 rows: 3 broken lines and one duplicated id fail; one more unreadable line is an item too.
    assert counts["total"] == len(rows) + 1 and counts["correct"] <= len(rows) - 4
    verdicts = [json.loads(v) for v in (run / "score" / "verdicts.jsonl").read_text().splitlines()]
    assert {v["error_type"] for v in verdicts} >= {"result_file:unreadable_line", "result_file:duplicate_id"}


@pytest.mark.parametrize("shape", ["folder", "symlink loop"])
def test_a_result_file_that_is_not_a_file_is_one_counted_line(tmp_path, shape):
    run = tmp_path / "model"
    good = BfclRun.result_file(run, "simple_python")
    rows = synthetic.results_for("simple_python", "gold", "python", stride=40)
    good.parent.mkdir(parents=True)
    good.write_text("".join(json.dumps(r) + "\n" for r in rows))
    broken = BfclRun.result_file(run, "simple_javascript")
    if shape == "folder":
        broken.mkdir()
    else:
        broken.symlink_to(run / "loop.json")
        (run / "loop.json").symlink_to(broken)
    proc = _score([str(run), "--result-format", "python", "--json"])
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{broken}: expected a file of JSON lines, found " in proc.stderr
    counts = json.loads(proc.stdout)["counts"]
    assert counts["simple_javascript"]["total"] == 1 and counts["simple_javascript"]["correct"] == 0
    assert counts["simple_python"]["total"] == len(rows)


def test_nothing_scoreable_exits_2(tmp_path):
    path = BfclRun.result_file(tmp_path / "model", "simple_python")
    path.parent.mkdir(parents=True)
    path.write_text("not json\n[]\n")
    proc = _score([str(tmp_path)])
    assert proc.returncode == 2
    assert "nothing could be scored" in proc.stderr and f"{path}:1: expected" in proc.stderr
