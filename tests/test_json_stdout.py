"""Every command that promises JSON on stdout prints only that JSON, run as a user runs it: the
installed `apigen-mt` in a subprocess, from a plain environment (no VLLM_* variables).

`eval tau --json` used to print 11.6 KB of vLLM's own log lines before its JSON, because vLLM logs to
stdout unless told otherwise; the CLI root now sends the engine's and libraries' logs to stderr."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from cli_runs import run_json, small_tau_args

ENGINE_TIMEOUT_S = 1200


def test_envs_list_json(plain_env: dict[str, str]):
    domains = run_json(["envs", "list", "--json"], plain_env)
    assert {"retail", "airline", "bank"} <= {domain["name"] for domain in domains}


def test_envs_show_json(plain_env: dict[str, str]):
    tools = run_json(["envs", "show", "retail", "--json"], plain_env)
    assert tools and all(tool["type"] == "function" for tool in tools)


@pytest.mark.skipif(importlib.util.find_spec("bfcl_eval") is None, reason="needs bfcl-eval (BFCL data)")
def test_eval_bfcl_score_json(plain_env: dict[str, str], tmp_path: Path):
    from datagen.rundir import BfclRun
    from evaluation.bfcl import results, synthetic

    rows = synthetic.results_for("simple_python", "gold", "python", underscore_names=False, stride=1)
    results.write_results(BfclRun.result_file(tmp_path / "m", "simple_python"), rows)
    BfclRun(tmp_path).write_metadata({"model": "m", "format": "python", "underscore_names": False})
    scores = run_json(["eval", "bfcl-score", str(tmp_path), "--json"], plain_env)
    assert 0.9 <= scores["categories"]["simple_python"] <= 1.0  # gold rows: (nearly) all correct


@pytest.mark.slow
@pytest.mark.vllm
def test_generate_prints_only_its_json_summary(plain_env: dict[str, str], tmp_path: Path):
    """The README's `apigen-mt generate --config recipes/datagen/demo.yaml` from a plain shell: the
    embedded engine starts without VLLM_CPU_KVCACHE_SPACE, and stdout is the summary alone."""
    out = tmp_path / "run"
    summary = run_json(
        ["generate", "--config", "recipes/datagen/demo.yaml", "--limit", "1", "--out", str(out)],
        plain_env,
        timeout=ENGINE_TIMEOUT_S,
    )
    assert summary["run_dir"] == str(out)
    assert summary["phase1"]["proposed"] == 1 and summary["generated_tokens"] > 0


@pytest.mark.slow
@pytest.mark.vllm
def test_eval_tau_prints_only_its_json_summary(plain_env: dict[str, str], tmp_path: Path):
    """The README's `apigen-mt eval tau --model embedded ... --json` from a plain shell."""
    summary = run_json(small_tau_args(tmp_path / "tau"), plain_env, timeout=ENGINE_TIMEOUT_S)
    assert summary["env"] == "retail" and summary["trials"] == 1 and "1" in summary["pass_k"]
