"""`apigen-mt report`: a leaderboard from real result files of each kind; the HTML renders in
headless Chromium with the table and every image loaded."""

from __future__ import annotations

import asyncio
import csv
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
from datagen.recipe.episode import AgentRole
from datagen.rundir import BfclRun, TauRun
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


# ---------------------------------------------------------------- intervals and noise


def _bfcl_run(tmp_path: Path, model: str, wrong_every: int, flip: int = 0) -> Path:
    """A scored BFCL run of `model`: gold results, every `wrong_every`-th item wrong (0: none), and
    the first `flip` items of simple_python wrong as well."""
    from evaluation.bfcl.cli import score_main
    from evaluation.bfcl.results import write_results
    from evaluation.bfcl.synthetic import results_for

    out = tmp_path / f"bfcl-{model}"
    for category in ("simple_python", "multiple", "parallel"):
        gold = results_for(category, "gold", "python", stride=2)
        wrong = results_for(category, "wrong_type", "python", stride=2)
        rows = [
            w if (wrong_every and i % wrong_every == 0) or (category == "simple_python" and i < flip) else g
            for i, (g, w) in enumerate(zip(gold, wrong, strict=True))
        ]
        write_results(BfclRun.result_file(out, category), rows)
    BfclRun(out).write_metadata({"model": model, "format": "python"})
    assert score_main([str(out), "--result-format", "python", "--json"]) == 0
    return out


def _cell(table: str, model: str, column: str) -> str:
    """One cell of the markdown leaderboard, its escapes (``\\[`` for ``[``) read back."""
    header, *rows = [
        line for line in table.splitlines() if line.startswith("| ") and not line.startswith("|---")
    ]
    index = header.split(" | ").index(column)
    return next(r for r in rows if r.startswith(f"| {model} |")).split(" | ")[index].replace("\\", "")


def test_report_marks_differences_within_noise(tmp_path: Path, capsys):
    dirs = [
        _bfcl_run(tmp_path, "best", 0),
        _bfcl_run(tmp_path, "twin", 0, flip=1),  # one item of hundreds: noise
        _bfcl_run(tmp_path, "worse", 2),  # half the items wrong: a real gap
    ]
    capsys.readouterr()
    _, table = write_report(dirs, tmp_path / "report")
    best, twin, worse = (_cell(table, m, "BFCL overall (v3)") for m in ("best", "twin", "worse"))
    assert "[" in best and not best.endswith("≈")
    assert twin.endswith("≈") and not worse.endswith("≈")
    low, high = (float(x) for x in best.split("[")[1].rstrip("]").split(","))
    assert low <= float(best.split()[0]) <= high
    compared = list(csv.reader((tmp_path / "report" / "differences.csv").open()))
    assert compared[0][3:6] == ["A − B (points)", "95% low", "95% high"]
    verdicts = {(r[0], r[1], r[2]): r[-1] for r in compared[1:]}
    gaps = {(r[0], r[1], r[2]): [float(x) for x in r[3:6]] for r in compared[1:]}
    gap, low, high = gaps[("BFCL overall (v3)", "twin", "worse")]
    assert 0 < low <= gap <= high
    assert verdicts[("BFCL overall (v3)", "best", "twin")] == "within noise"
    assert verdicts[("BFCL overall (v3)", "best", "worse")] == "best better"
    assert verdicts[("BFCL overall (v3)", "twin", "worse")] == "twin better"
    md = (tmp_path / "report" / "leaderboard.md").read_text()
    assert "## Differences between models" in md and "within noise of the best" in md
    spreadsheet = list(csv.DictReader((tmp_path / "report" / "leaderboard.csv").open()))
    row = next(r for r in spreadsheet if r["model"] == "worse")
    assert (
        float(row["BFCL overall (v3) 95% low"])
        <= float(row["BFCL overall (v3)"])
        <= float(row["BFCL overall (v3) 95% high"])
    )


def _tau_summary(successes: dict[str, int], trials: int, **extra) -> dict:
    from evaluation.tau.passk import pass_k_curve

    outcomes = {t: [True] * s + [False] * (trials - s) for t, s in successes.items()}
    curve = {str(k): v for k, v in pass_k_curve(outcomes).items()}
    return {"env": "toy", "trials": trials, "per_task_successes": successes, "pass_k": curve,
            "pass_k_state_changing_only": curve, "noop_gold_tasks": [], **extra}  # fmt: skip


def test_tau_columns_pair_tasks_and_read_saved_intervals(tmp_path: Path):
    from evaluation.report.board import _tau_columns, compare_columns
    from evaluation.report.collect import TauResult

    strong = {f"t{i}": 3 for i in range(30)}
    weak = {f"t{i}": (3 if i % 3 == 0 else 0) for i in range(30)}
    near = {**strong, "t0": 2}
    saved = {"1": {"value": 1.0, "low": 0.9, "high": 1.0, "level": 0.95}}
    results = [
        TauResult("strong", "toy", tmp_path / "a", _tau_summary(strong, 3, pass_k_interval=saved)),
        TauResult("weak", "toy", tmp_path / "b", _tau_summary(weak, 3)),
        TauResult("near", "toy", tmp_path / "c", _tau_summary(near, 3)),
    ]
    column = _tau_columns(results)[0]
    assert column.cells["strong"].interval.low == 0.9  # the run's own interval, as h31a's summary writes it
    fallback = column.cells["weak"].interval  # computed here from per-task successes
    assert fallback.low < 1 / 3 < fallback.high
    differences = {(d.first, d.second): d for d in compare_columns([column])}
    assert column.near_best == {"near"}
    assert not differences[("strong", "weak")].result.within_noise
    assert differences[("near", "strong")].result.items == 30
