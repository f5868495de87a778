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

from evaluation.bfcl import results, scoring, synthetic  # noqa: E402

APIGEN = [sys.executable, "-c", "from datagen.cli import main; raise SystemExit(main())"]


def _write_run(root: Path, variant: str, fmt: str, categories: list[str]) -> None:
    for category in categories:
        rows = synthetic.results_for(category, variant, fmt, underscore_names=fmt == "json", stride=1)
        results.write_results(root / "some-model" / results.result_file_name(category), rows)
    results.write_metadata(root, {"model": "some-model", "format": fmt, "underscore_names": fmt == "json"})


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
        rows = results.read_results(tmp_path / "some-model" / results.result_file_name(category))
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
        [*APIGEN, "eval", "bfcl-score", str(tmp_path), "--json", "--format", "python"],
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
            "--format",
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
    from evaluation.bfcl.cli import _generate_parser, _model_label
    from evaluation.bfcl.generate import model_result_dir

    def folder(*extra: str) -> Path:
        args = _generate_parser().parse_args(["--model", "/ckpt/run-7/", "--out", str(tmp_path), *extra])
        return model_result_dir(args.out, _model_label(args))

    assert folder() == tmp_path / "run-7"
    # A name BFCL's registry knows, so that `bfcl evaluate` re-scores the folder.
    assert folder("--result-name", "Salesforce/xLAM-2-8b-fc-r") == tmp_path / "Salesforce_xLAM-2-8b-fc-r"
