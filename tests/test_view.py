"""`apigen-mt view`: the site for a generated run, an exported dataset and a τ run, opened in
headless Chromium; the funnel counted per task; the command run as users run it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_runs import APIGEN_MT, ROOT
from viewrun import write_tau_run, write_view_run

from datagen.quality.coverage import load_domain
from datagen.quality.funnel import KINDS, run_funnel
from datagen.rundir import DatagenRun
from evaluation.report.collect import DatagenFunnel as ReportRun
from evaluation.report.plots import funnel_stages
from viewer.browser import Browser, find_chromium
from viewer.cli import build_site
from viewer.kinds import Options


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("view")
    run, shop = write_view_run(root)
    return root, run, shop


def _shop_domains(shop):
    return lambda name: shop if name == "shop" else load_domain(name)


def test_funnel_counts_tasks_so_no_bar_exceeds_the_one_above(made):
    _, run, _ = made
    stats = DatagenRun(run).read_phase1_stats()
    # The draft counts of stats.json are what the old chart showed: every task needed a revision,
    # so more drafts passed the format check than tasks were proposed.
    assert stats["passed"]["format"] > stats["proposed"] == 8
    funnel = run_funnel(DatagenRun(run))
    labels = [b.label for b in funnel.bars]
    assert labels[0] == "proposed" and labels[-1] == "verified dialogue" and "passed committee" in labels
    assert funnel.bars[0].counts == {"base": 8, "recombined": 1}
    for kind in KINDS:
        counts = [b.counts[kind] for b in funnel.bars]
        assert counts == sorted(counts, reverse=True), (kind, list(zip(labels, counts, strict=True)))
    accepted = next(b for b in funnel.bars if b.label == "accepted")
    assert accepted.total == len(DatagenRun(run).blueprints.read_text().splitlines())
    assert funnel.dialogues["attempts"] == 12 and funnel.dialogues["failures"] == {"state_mismatch": 6}
    # The leaderboard's funnel plot reads the same per-task counts.
    stages = funnel_stages(ReportRun(run.name, run, stats, DatagenRun(run).read_phase2_stats()))
    for kind in KINDS:
        counts = [c[kind] for _, c in stages]
        assert counts == sorted(counts, reverse=True), stages


def _url(path: Path, fragment: str = "") -> str:
    return path.resolve().as_uri() + (f"#{fragment}" if fragment else "")


def test_site_renders_runs_datasets_and_tau_in_chromium(made, tmp_path: Path):
    if find_chromium() is None:
        pytest.skip("Debian's chromium is not installed (scripts/test-setup.sh installs it)")
    from datagen.export import export_run

    root, run, shop = made
    dataset = tmp_path / "dataset"
    export_run(run, dataset, fmt="hf", test=0.4)
    sharegpt = tmp_path / "sharegpt"
    export_run(run, sharegpt, fmt="sharegpt")
    tau = write_tau_run(tmp_path)
    site = tmp_path / "site"
    home, built, problems = build_site(
        [run, dataset, sharegpt, tau], site, Options(domains=_shop_domains(shop))
    )
    assert not problems and len(built) == 4, (built, problems)
    assert "hunter2" not in "".join(p.read_text() for p in site.rglob("*.html"))  # the recipe is redacted
    blueprints = [json.loads(line) for line in DatagenRun(run).blueprints.read_text().splitlines()]
    revised = next(b for b in blueprints if b["provenance"]["kind"] == "base")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with Browser() as browser:
        browser.open(_url(site / run.name / "index.html"), rendered=False)
        bars = browser.evaluate(
            "[...document.querySelectorAll('#funnel-chart rect[data-stage]')].map(r => "
            "[r.dataset.stage, r.dataset.series, Number(r.dataset.value)])"
        )
        assert ["proposed", "base", 8] in bars and ["proposed", "recombined", 1] in bars
        assert ["passed format", "base", 8] in bars  # tasks, not the 16 drafts
        assert "<redacted>" in browser.evaluate("document.querySelector('#recipe pre').textContent")
        assert browser.evaluate("document.querySelector('#quality-figures #contamination') !== null")
        browser.screenshot(shots / "overview.png")

        browser.open(_url(site / run.name / "item.html", f"c=blueprints&id={revised['id']}"))
        page = browser.evaluate("document.getElementById('app').innerText")
        assert revised["instruction"] in page and revised["actions"][0]["name"] in page
        assert browser.evaluate("document.querySelectorAll('.rounds .round').length") == 2  # the revision
        assert "✗ outputs" in page and "reflection: checked" in page and "✓ committee" in page
        assert any(line in page for line in revised["provenance"]["diff"])
        browser.screenshot(shots / "blueprint.png")

        failed = f"{revised['id']}-a1"
        browser.open(_url(site / run.name / "item.html", f"c=dialogues&id={failed}"))
        page = browser.evaluate("document.getElementById('app').innerText")
        assert "state_mismatch" in page and "Best-of-2 critique scores: 7, 7" in page
        diff = browser.evaluate("document.querySelector('pre.diff').innerText")
        assert "status" in diff, diff
        assert browser.evaluate("document.querySelectorAll('.msg.user').length") >= 2
        browser.screenshot(shots / "dialogue.png")

        browser.open(_url(site / run.name / "dialogues.html", "f.failure=state_mismatch"))
        rows = browser.evaluate("[...document.querySelectorAll('#list tbody tr')].map(r => r.innerText)")
        assert len(rows) == 6 and all("state_mismatch" in r for r in rows)
        browser.screenshot(shots / "dialogues.png")

        for export in (dataset, sharegpt):
            slug = f"dataset-{export.name}"
            browser.open(_url(site / slug / "dialogues.html"))
            assert browser.evaluate("document.querySelectorAll('#list tbody tr').length") == 6
            first = browser.evaluate("document.querySelector('#list tbody tr a').textContent")
            browser.open(_url(site / slug / "item.html", f"c=dialogues&id={first}"))
            assert browser.evaluate("document.querySelectorAll('.call .fn').length") >= 1
        browser.screenshot(shots / "dataset-dialogue.png")

        tau_slug = next(p.name for p in site.iterdir() if (p / "tasks.html").is_file())
        browser.open(_url(site / tau_slug / "item.html", "c=tasks&id=w40"))
        assert "pass^k" in browser.evaluate("document.getElementById('app').innerText")
        trials = [json.loads(line) for line in (tau / "results.jsonl").read_text().splitlines()]
        browser.open(_url(site / tau_slug / "item.html", "c=trials&id=w40#0"))
        page = browser.evaluate("document.getElementById('app').innerText")
        verdict = "verified" if trials[0]["success"] else trials[0]["failure"]
        assert page.startswith("‹ Trials") and verdict in page and '"amount": 40' in page
        browser.screenshot(shots / "tau-trial.png")
    assert all(p.stat().st_size > 5000 for p in shots.iterdir())


def test_view_and_stats_run_from_a_plain_shell(made, tmp_path: Path, plain_env: dict[str, str]):
    _, run, _ = made
    out = tmp_path / "site"
    done = subprocess.run([APIGEN_MT, "view", str(run), "--out", str(out)], capture_output=True, text=True,
                          env=plain_env, cwd=ROOT, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"wrote {out / 'index.html'}" in done.stdout
    assert (out / run.name / "blueprints.html").is_file() and (out / "assets" / "app.js").is_file()
    missing = subprocess.run([APIGEN_MT, "view", str(tmp_path / "nope"), "--out", str(out)], capture_output=True,
                             text=True, env=plain_env, cwd=ROOT, timeout=300)  # fmt: skip
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "does not exist" in missing.stderr
    stats = subprocess.run([APIGEN_MT, "stats", str(run), "--json"], capture_output=True, text=True,
                           env=plain_env, cwd=ROOT, timeout=300)  # fmt: skip
    assert stats.returncode == 0, stats.stderr[-3000:]
    report = json.loads(stats.stdout)
    entry = report["collections"][run.name]
    assert entry["size"] == {"instructions": 6, "dialogues": 6}
    assert "0.8" in entry["near_duplicates"]["rule"] and "0.5" in entry["contamination"]["rule"]
