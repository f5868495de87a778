"""`apigen-mt report`: a leaderboard from real result files of each kind; the HTML renders in
headless Chromium with the table and every image loaded."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from scripted import ScriptedModel
from toydomain import make_toy_domain
from viewrun import write_bfcl_run

from datagen.envs.base import Task
from datagen.llm import ModelSpec
from datagen.rundir import TauRun
from datagen.simulate.config import AgentRole
from evaluation.report import write_report
from evaluation.tau.config import TauConfig
from evaluation.tau.harness import TauHarness


class _Pool:
    def __init__(self, agent_name: str):
        said = {}

        def user(messages, kwargs):
            key = messages[0]["content"]
            said[key] = said.get(key, 0) + 1
            return ["withdraw 40 from a10" if said[key] % 2 else "thanks ###STOP###"]

        def agent(messages, kwargs):
            if messages[-1]["role"] == "user" and agent_name == "good-agent":
                return [{"name": "withdraw", "arguments": {"account_id": "a10", "amount": 40}}]
            return ["Done, 60 left."]

        self.models = {"agent": ScriptedModel(agent, agent_name), "user": ScriptedModel(user, "user-sim")}

    def get(self, alias: str):
        return self.models[alias]


def _tau_results(tmp_path: Path, agent_name: str) -> Path:
    domain = make_toy_domain(tmp_path)
    tasks = [
        Task(
            id="w",
            persona="Ann",
            instruction="Withdraw 40 from a10.",
            outputs=["60"],
            actions=[{"name": "withdraw", "arguments": {"account_id": "a10", "amount": 40}}],
        )
    ]
    config = TauConfig(
        env="toy",
        models={"agent": ModelSpec(model="agent"), "user": ModelSpec(model="user")},
        agent=AgentRole(model="agent"),
        user={"model": "user", "best_of_n": 1},
        trials=3,
    )
    out = tmp_path / f"tau-{agent_name}"
    asyncio.run(TauHarness(config, domain, tasks, TauRun(out), _Pool(agent_name)).run())
    return out


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "stats.json").write_text(
        json.dumps(
            {
                "proposed": 10,
                "passed": {"format": 9, "execution": 7, "policy": 6, "committee": 5},
                "accepted": 5,
            }
        )
    )
    (run / "simulate_stats.json").write_text(json.dumps({"attempts": 15, "successful_trajectories": 6}))
    return run


@pytest.fixture()
def report_dir(tmp_path: Path) -> Path:
    dirs = [
        _tau_results(tmp_path, "good-agent"),
        _tau_results(tmp_path, "idle-agent"),
        write_bfcl_run(tmp_path / "bfcl-good-agent"),
        _run_dir(tmp_path),
    ]
    write_report(dirs, tmp_path / "report")
    return tmp_path / "report"


def test_leaderboard_files(report_dir: Path):
    md = (report_dir / "leaderboard.md").read_text()
    assert "| good-agent |" in md and "| idle-agent |" in md
    csv_rows = (report_dir / "leaderboard.csv").read_text().splitlines()
    header = csv_rows[0].split(",")
    good = dict(zip(header, next(r for r in csv_rows if r.startswith("good-agent")).split(","), strict=True))
    idle = dict(zip(header, next(r for r in csv_rows if r.startswith("idle-agent")).split(","), strict=True))
    assert good["τ toy pass^1"] == "100.0" and idle["τ toy pass^1"] == "0.0"
    assert float(good["BFCL overall (v3)"]) > 0 and idle["BFCL overall (v3)"] == "–"
    for name in ("funnel.png", "bfcl_categories.png", "tau_pass_k.png"):
        assert (report_dir / name).read_bytes().startswith(b"\x89PNG")


def test_no_results_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ValueError, match="no results found"):
        write_report([tmp_path], tmp_path / "out")


def test_html_renders_in_headless_chromium(report_dir: Path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (scripts/test-setup.sh installs it)")
    # The page sets each image's rendered size into its alt-free dataset after load, via a tiny
    # inline check appended here, so --dump-dom shows whether images decoded and the table exists.
    page = report_dir / "leaderboard.html"
    probe = report_dir / "probe.html"
    probe.write_text(
        page.read_text().replace(
            "</body>",
            "<script>window.addEventListener('load', () => { document.body.setAttribute('data-check', "
            "JSON.stringify({rows: document.querySelectorAll('#leaderboard tbody tr').length, "
            "images: [...document.images].map(i => i.complete && i.naturalWidth > 0 ? i.naturalWidth : 0)})); });"
            "</script></body>",
        )
    )
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={report_dir / 'chrome'}",
         "--virtual-time-budget=3000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    marker = done.stdout.split('data-check="', 1)[1].split('"', 1)[0].replace("&quot;", '"')
    check = json.loads(marker)
    assert check["rows"] == 2
    assert len(check["images"]) == 3 and all(width > 100 for width in check["images"])
