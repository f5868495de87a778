"""`apigen-mt generate` end to end: the demo recipe pointed at the shared vLLM server, run as a real
subprocess, SIGKILLed once Phase 2 has written its first record, then resumed. The funnels add up
across both phases, nothing is lost or done twice, and every successful trajectory re-verifies by
replaying its tool calls on a fresh environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

DEMO = Path(__file__).resolve().parents[1] / "recipes" / "datagen" / "demo.yaml"
LIMIT = 4
PHASE2_FILES = ("trajectories.jsonl", "failures.jsonl", "duplicates.jsonl")
KILL_DEADLINE_S = 1200.0


def _server_recipe(base_url: str, path: Path) -> Path:
    """The demo recipe with every role on the shared server (one model spec, so one client)."""
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    alias = data["generator"]["model"]  # every role names it
    data["models"] = {
        alias: {"model": "embedded", "backend": "openai", "base_urls": [base_url], "tool_format": "hermes"}
    }
    data["generator"]["max_tokens"] = 256
    data["committee"]["size"] = (
        1  # the committee itself is covered by test_blueprint_e2e; one judge keeps this cheap
    )
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _rows(path: Path) -> list[dict[str, Any]]:
    """Complete lines only: a line still being written when we look is not a record yet."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


def _phase2_keys(run: Path) -> list[tuple[str, int]]:
    return [(r["blueprint_id"], r["attempt"]) for name in PHASE2_FILES for r in _rows(run / name)]


def _command(recipe: Path, run: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "datagen.cli", "generate", "--config", str(recipe),
            "--limit", str(LIMIT), "--out", str(run), *extra]  # fmt: skip


def _kill_after_first_phase2_record(command: list[str], run: Path, log: Path) -> list[tuple[str, int]]:
    with log.open("w") as fh:
        proc = subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + KILL_DEADLINE_S
    try:
        while not _phase2_keys(run):
            assert proc.poll() is None, (
                f"generate exited ({proc.returncode}) before Phase 2 wrote anything; log tail:\n"
                + log.read_text(errors="replace")[-3000:]
            )
            assert time.monotonic() < deadline, "no Phase 2 record within the deadline"
            time.sleep(0.2)
        assert proc.poll() is None, "the run finished before it could be killed part-way"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return _phase2_keys(run)


def _replays_to_gold(domain: Any, row: dict[str, Any], blueprint: dict[str, Any]) -> bool:
    env = domain.new_env(row["seed"])
    calls = [c["function"] for m in row["messages"] for c in m.get("tool_calls") or []]
    env.replay([{"name": c["name"], "arguments": c["arguments"]} for c in calls])
    gold = domain.new_env(blueprint["seed"])
    gold.replay(blueprint["actions"])
    return env.state_hash() == gold.state_hash()


def test_generate_kill_resume_funnels_add_up(vllm_server: str, tmp_path: Path):
    from datagen.envs.registry import get_domain

    recipe = _server_recipe(vllm_server, tmp_path / "recipe.yaml")
    run = tmp_path / "run"
    before = _kill_after_first_phase2_record(_command(recipe, run), run, tmp_path / "first.log")

    done = subprocess.run(_command(recipe, run, "--resume"), capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    attempts = yaml.safe_load(recipe.read_text())["simulate"]["attempts"]

    # Phase 1: every base task finished exactly once, and the funnel counts what the files hold.
    blueprints = {r["id"]: r for r in _rows(run / "blueprints.jsonl")}
    rejected = [r["task_id"] for r in _rows(run / "rejections.jsonl")]
    assert len(blueprints) == len(_rows(run / "blueprints.jsonl")), "a blueprint was written twice"
    assert len(rejected) == len(set(rejected)) and not set(rejected) & set(blueprints)
    stats = json.loads((run / "stats.json").read_text())
    assert stats["proposed"] == LIMIT and stats["total_accepted"] == len(blueprints) >= 1
    assert summary["phase1"]["total_accepted"] == len(blueprints)

    # Phase 2: every accepted blueprint, every attempt, once; nothing from before the kill lost.
    after = _phase2_keys(run)
    assert len(after) == len(set(after)), "an attempt was recorded twice"
    assert set(before) <= set(after)
    assert set(after) == {(b, a) for b in blueprints for a in range(attempts)}
    assert {b for b, _ in after} == set(blueprints)  # accepted in Phase 1 == distinct ids reaching Phase 2
    sim = json.loads((run / "simulate_stats.json").read_text())
    assert sim["attempts"] == len(blueprints) * attempts == summary["phase2"]["attempts"]
    assert sim["blueprints_attempted"] == len(blueprints)
    assert (
        sim["successful_trajectories"] + sim["failed_trajectories"] + sim["duplicate_successes"]
        == sim["attempts"]
    )
    assert sim["completion_tokens"] > 0

    domain = get_domain(yaml.safe_load(recipe.read_text())["env"])
    for name in ("trajectories.jsonl", "failures.jsonl"):
        for row in _rows(run / name):
            assert row["agent_mode"] == "replay" and row["messages"][0]["role"] == "system"
            assert row["success"] == (name == "trajectories.jsonl") == (row["failure"] is None)
            if row["success"]:
                assert _replays_to_gold(domain, row, blueprints[row["blueprint_id"]])

    # Resuming a finished run adds nothing.
    again = subprocess.run(_command(recipe, run, "--resume"), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(_phase2_keys(run)) == sorted(after)
    assert len(_rows(run / "blueprints.jsonl")) == len(blueprints)
