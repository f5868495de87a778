"""Phase 2 resumes after SIGKILL: nothing lost, nothing done twice, a torn last line tolerated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from scripted import ScriptedModel
    from toydomain import make_toy_domain
    from datagen.llm import ModelSpec
    from datagen.records import Blueprint
    from datagen.recipe.episode import AgentRole, SimulateConfig, UserRole
    from datagen.rundir import DatagenRun
    from datagen.simulate.runner import SimulationRunner

    def user(messages, kwargs):
        time.sleep(0.05)  # slow enough to be killed mid-run
        said = [m for m in messages if m["role"] == "assistant"]
        return ["withdraw 10 from a10 please" if not said else "thanks ###STOP###"]

    def agent(messages, kwargs):
        if messages[-1]["role"] == "user":
            return [{{"name": "withdraw", "arguments": {{"account_id": "a10", "amount": 10}}}}]
        return ["done, 90 left"]

    class Pool:
        def get(self, alias):
            return {{"agent": ScriptedModel(agent), "user": ScriptedModel(user)}}[alias]

    root = Path({root!r})
    domain = make_toy_domain(root)
    config = SimulateConfig(agent=AgentRole(model="agent"),
                            user=UserRole(model="user", best_of_n=1, temperature=1.0),
                            attempts=2, concurrency=2)
    blueprints = [Blueprint(id=f"bp{{i}}", env="toy", seed=1, persona=f"persona number {{i}}", instruction="withdraw 10",
                            actions=[{{"name": "withdraw", "arguments": {{"account_id": "a10", "amount": 10}}}}], outputs=["90"])
                  for i in range(30)]
    asyncio.run(SimulationRunner(config, DatagenRun(root / "run"), lambda n: domain, Pool()).run(blueprints))
    """
)


def _records(run: Path) -> list[tuple[str, int]]:
    keys = []
    for name in ("trajectories.jsonl", "failures.jsonl", "duplicates.jsonl"):
        path = run / name
        if path.exists():
            for line in path.read_text().splitlines():
                row = json.loads(line)
                keys.append((row["blueprint_id"], row["attempt"]))
    return keys


def test_resume_after_sigkill(tmp_path: Path):
    script = tmp_path / "sim.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), root=str(tmp_path)))
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_records(run) if run.exists() else []) < 10:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _records(run)
    assert 10 <= len(done_before) < 60, "the run should have been killed part-way"
    with (run / "trajectories.jsonl").open("a") as fh:
        fh.write('{"id": "torn", "blueprint_id": "bp')  # a write cut off by the kill
    subprocess.run([sys.executable, str(script)], check=True, timeout=120)
    done_after = _records(run)
    assert len(done_after) == len(set(done_after)) == 60  # 30 blueprints x 2 attempts, each once
    assert set(done_before) <= set(done_after)
    stats = json.loads((run / "simulate_stats.json").read_text())
    assert (
        stats["attempts"] == 60 and stats["successful_trajectories"] == 30
    )  # the 2nd attempt repeats the 1st
