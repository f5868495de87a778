"""τ-bench-style harness end to end: two retail gold tasks, the embedded model as both agent and
user, through a real vLLM server on loopback and the real `apigen-mt eval tau` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.vllm]


def test_eval_tau_two_gold_tasks(vllm_server: str, tmp_path: Path):
    from datagen.envs.registry import get_domain

    task_ids = [t.id for t in get_domain("retail").gold_tasks[:2]]
    out = tmp_path / "tau"
    command = [
        sys.executable, "-m", "datagen.cli", "eval", "tau", "--env", "retail",
        "--model", "embedded", "--backend", "openai", "--base-url", vllm_server, "--tool-format", "hermes",
        "--user-model", "embedded", "--trials", "2", "--tasks", ",".join(task_ids),
        "--max-steps", "8", "--max-tokens", "96", "--user-max-tokens", "48", "--out", str(out), "--json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["tasks"] == 2 and summary["trials"] == 2
    assert set(summary["pass_k"]) == {"1", "2"} and 0.0 <= summary["pass_k"]["1"] <= 1.0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted((r["task_id"], r["trial"]) for r in rows) == sorted(
        (t, i) for t in task_ids for i in range(2)
    )
    for row in rows:
        assert row["messages"][0]["role"] == "system" and "Policy" in row["messages"][0]["content"]
        assert row["success"] == (row["failure"] is None)
        assert set(row["reward_parts"]) == {"state_match", "outputs", "policy_ok"}
    assert (out / "pass_k.png").stat().st_size > 1000
    # Resuming a finished run does nothing more.
    again = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len((out / "results.jsonl").read_text().splitlines()) == 4
