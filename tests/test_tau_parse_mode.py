"""`apigen-mt eval tau --parse server|toolkit`: who reads the agent's tool calls, the server's tool
parser (as for a deployed model) or ours. Refused in one line where it cannot work; run for real
against a vLLM server on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _tau(argv: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datagen.cli", "eval", "tau", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--backend", "vllm"], "--parse server needs the agent behind an OpenAI-compatible server"),
        (
            ["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--tool-format", "hermes"],
            "--parse server reads the agent's calls from the server's tool_calls, but --tool-format",
        ),
    ],
)
def test_parse_server_is_refused_in_one_line_where_it_cannot_work(
    plain_env: dict[str, str], tmp_path: Path, flags: list[str], expected: str
) -> None:
    argv = ["--env", "retail", "--model", "m", "--user-model", "u", "--parse", "server", *flags]
    done = _tau([*argv, "--out", str(tmp_path / "out")], plain_env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_parse_toolkit_refuses_an_agent_whose_server_parses(
    plain_env: dict[str, str], tmp_path: Path
) -> None:
    argv = ["--env", "retail", "--model", "m", "--user-model", "u", "--backend", "openai"]
    argv += ["--base-url", "http://127.0.0.1:9/v1", "--tool-format", "openai", "--parse", "toolkit"]
    done = _tau([*argv, "--out", str(tmp_path / "out")], plain_env)
    assert done.returncode == 2 and "--parse toolkit" in done.stderr, done.stderr


@pytest.mark.vllm
def test_eval_tau_scores_through_the_servers_tool_parser(
    vllm_server: str, plain_env: dict[str, str], tmp_path: Path
) -> None:
    from datagen.envs.registry import get_domain
    from datagen.rundir import TauRun

    task = get_domain("retail").gold_tasks[0].id
    out = tmp_path / "tau"
    argv = ["--env", "retail", "--tasks", task, "--trials", "1", "--model", "embedded", "--backend", "openai"]
    argv += ["--base-url", vllm_server, "--parse", "server", "--user-model", "embedded", "--max-steps", "4"]
    argv += ["--max-tokens", "48", "--user-max-tokens", "32", "--out", str(out), "--json"]
    done = _tau(argv, plain_env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["tool_calls_read_by"] == "server" and summary["tasks"] == 1
    run = TauRun(out)
    recipe = json.loads(run.recipe.read_text())
    assert recipe["models"][recipe["agent"]["model"]]["tool_format"] == "openai"
    (row,) = [json.loads(line) for line in run.results.read_text().splitlines()]
    assert row["task_id"] == task and row["messages"][0]["role"] == "system"
