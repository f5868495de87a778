"""`apigen-mt eval next-action`: scripted models of known skill get their known scores (a perfect model
1.0, a do-nothing model 0 on the turns that should call), the scoring rules one by one, the
environment check, the data sources agreeing on the held-out split, resume, and the CLI as users run it."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from cli_runs import APIGEN_MT, ROOT
from nextactionrun import canonical, write_gold_run
from scripted import ScriptedModel

from datagen.envs.registry import get_domain
from datagen.llm.base import ModelUnavailableError
from datagen.llm.pool import ModelPool
from datagen.llm.types import Choice, ParseError
from datagen.rundir import NextActionRun
from evaluation.next_action.config import NextActionConfig
from evaluation.next_action.data import load_dialogues, turns_of
from evaluation.next_action.harness import NextActionHarness
from evaluation.next_action.scoring import score_turn, summarize


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gold_run(tmp_path_factory.mktemp("gold") / "run", count=10)


def _config(data: list[str], **extra) -> NextActionConfig:
    return NextActionConfig.model_validate(
        {
            "data": data,
            "split": "train",
            "models": {"m": {"model": "scripted"}},
            "agent": {"model": "m"},
            **extra,
        }
    )


def _evaluate(config: NextActionConfig, respond, out: Path, name: str = "scripted-under-test") -> dict:
    dialogues = load_dialogues(config)
    model = ScriptedModel(respond, name)
    harness = NextActionHarness(
        config, dialogues, NextActionRun(out), ModelPool(prebuilt={"m": model}), get_domain
    )
    return asyncio.run(harness.run())


def perfect(dialogues):
    """Answers every prefix with the gold next message of the dialogue it came from (found by structure)."""
    gold = {}
    for dialogue in dialogues:
        for turn in turns_of(dialogue):
            gold[canonical(turn.prefix)] = turn.gold

    def respond(messages, kwargs):
        message = gold[canonical(messages)]
        calls = [
            {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
            for c in message.get("tool_calls") or []
        ]
        return [calls] if calls else [message["content"]]

    return respond


def test_a_perfect_model_scores_one_and_a_do_nothing_model_zero(run_dir: Path, tmp_path: Path):
    config = _config([str(run_dir)], run_split={"test": 0.0})  # every dialogue is on the train side
    dialogues = load_dialogues(config)
    summary = _evaluate(config, perfect(dialogues), tmp_path / "perfect")
    overall = summary["overall"]
    assert overall["turns"] == sum(len(turns_of(d)) for d in dialogues) == summary["turns_planned"]
    assert overall["should_call_turns"] > 20 and overall["should_answer_turns"] == 10
    for key in ("decision_accuracy", "decode_rate", "name_match", "exact_match", "argument_precision",
                "argument_recall", "answer_accuracy"):  # fmt: skip
        assert overall[key] == 1.0, key
    assert overall["env_checked_turns"] == overall["should_call_turns"] and overall["env_failure_rate"] == 0.0
    assert set(summary["per_domain"]) == {"retail"} and "cancel_pending_order" in summary["per_tool"]
    assert all(f["exact_match"] == 1.0 for f in summary["per_tool"].values())

    idle = _evaluate(config, lambda messages, kwargs: ["How can I help you?"], tmp_path / "idle")["overall"]
    assert idle["decode_rate"] == idle["name_match"] == idle["exact_match"] == 0.0
    assert idle["argument_recall"] == 0.0 and idle["argument_precision"] is None  # it predicted no argument
    assert idle["answer_accuracy"] == 1.0
    assert idle["decision_accuracy"] == pytest.approx(10 / overall["turns"])
    assert idle["env_checked_turns"] == 0 and idle["env_failure_rate"] is None


def _choice(calls=None, error=None, content="") -> Choice:
    return Choice(content=content, tool_calls=calls or [], raw="...", finish_reason="stop", parse_error=error)


def test_scoring_rules():
    cancel = {"name": "cancel", "arguments": {"order_id": "#W1", "amount": 12.5}}
    look = {"name": "look", "arguments": {"order_id": "#W2"}}
    # Parallel calls in another order, values by the value rule ("$12.50" is 12.5, case folded).
    swapped = [look, {"name": "cancel", "arguments": {"order_id": "#w1", "amount": "$12.50"}}]
    assert score_turn([cancel, look], _choice(swapped))["exact_match"]
    # One argument wrong: names match, the call does not; precision 2/3, recall 2/3.
    wrong = score_turn(
        [cancel, look], _choice([look, {"name": "cancel", "arguments": {"order_id": "#W9", "amount": 12.5}}])
    )
    assert wrong["name_match"] and not wrong["exact_match"]
    assert (wrong["arguments_right"], wrong["arguments_predicted"], wrong["arguments_gold"]) == (2, 3, 3)
    # An extra argument is not an exact match either.
    extra = {"name": "look", "arguments": {"order_id": "#W2", "verbose": True}}
    assert not score_turn([look], _choice([extra]))["exact_match"]
    # A broken output attempted a call (the decision is right) but decoded nothing.
    broken = score_turn([look], _choice([look], ParseError("invalid_json", "bad", "...")))
    assert broken["decision_correct"] and not broken["decoded"] and not broken["name_match"]
    # A well-formed call to a tool that does not exist is decoded, and wrong.
    unknown = score_turn(
        [look], _choice([{"name": "peek", "arguments": {}}], ParseError("unknown_tool", "no", ""))
    )
    assert unknown["decoded"] and not unknown["name_match"]
    # On a turn that should answer, any call attempt is a wrong decision.
    assert not score_turn([], _choice([look]))["decision_correct"]
    assert score_turn([], _choice(content="Sure."))["decision_correct"]
    summary = summarize([{"env": "x", "gold_calls": [look], **score_turn([look], _choice([look])), "env_failed": None},
                         {"env": "x", "gold_calls": [], "error": "boom"}])  # fmt: skip
    assert summary["overall"]["turns"] == 1 and summary["overall"]["errors"] == 1


def _dialogue_rows(dialogues: int, turns: int, right) -> list[dict]:
    """Scored turns of `dialogues` dialogues; `right(d, t)` says whether turn t of dialogue d is right."""
    look = {"name": "look", "arguments": {"order_id": "#W2"}}
    wrong = {"name": "look", "arguments": {"order_id": "#W9"}}
    return [
        {"key": f"d{d}:{t}", "source": "s", "dialogue_id": f"d{d}", "env": "x", "gold_calls": [look],
         **score_turn([look], _choice([look if right(d, t) else wrong])), "env_failed": None}
        for d in range(dialogues) for t in range(turns)
    ]  # fmt: skip


def test_every_rate_carries_a_dialogue_level_interval():
    from evaluation.intervals import wilson_interval
    from evaluation.next_action.cli import format_summary

    # Whole dialogues right or wrong: 200 turns but 20 independent units.
    clustered = summarize(_dialogue_rows(20, 10, lambda d, t: d % 2 == 0))
    overall = clustered["overall"]
    exact = overall["intervals"]["exact_match"]
    assert overall["dialogues"] == 20 and exact["value"] == overall["exact_match"] == 0.5
    per_turn = wilson_interval(100, 200)
    assert exact["high"] - exact["low"] > 2 * (per_turn.high - per_turn.low)
    assert set(overall["intervals"]) >= {"decision_accuracy", "decode_rate", "name_match", "exact_match"}
    assert "answer_accuracy" not in overall["intervals"]  # no turn should answer: no figure, no interval
    # The same rate spread over turns within each dialogue is far surer.
    spread = summarize(_dialogue_rows(20, 10, lambda d, t: t % 2 == 0))["overall"]["intervals"]["exact_match"]
    assert spread["high"] - spread["low"] < exact["high"] - exact["low"]
    printed = format_summary({"model": "m", "data": ["d"], "split": "test", "dialogues": 20, "turns_done": 200,
                              "turns_planned": 200, **clustered})  # fmt: skip
    assert "95% interval" in printed and f"[{100 * exact['low']:.0f},{100 * exact['high']:.0f}]" in printed


def test_a_call_that_fails_after_the_gold_prefix_is_counted(run_dir: Path, tmp_path: Path):
    """The prefix's own calls are replayed first: cancelling an order the dialogue already cancelled
    fails, although it would succeed on a fresh environment."""
    config = _config([str(run_dir)], run_split={"test": 0.0}, limit=2)
    dialogues = load_dialogues(config)

    def again(messages, kwargs):
        done = [
            c["function"]
            for m in messages
            for c in m.get("tool_calls") or []
            if c["function"]["name"] == "cancel_pending_order"
        ]
        if done and messages[-1]["role"] == "tool":
            return [{"name": "cancel_pending_order", "arguments": done[0]["arguments"]}]
        return ["Let me check."]

    rows_summary = _evaluate(config, again, tmp_path / "again")
    rows = [json.loads(line) for line in NextActionRun(tmp_path / "again").turns.read_text().splitlines()]
    repeated = [r for r in rows if r["predicted_calls"]]
    assert repeated and all(r["env_failed"] for r in repeated)
    assert rows_summary["overall"]["env_failure_rate"] == 1.0
    fresh = get_domain("retail").new_env(dialogues[0].seed)
    assert fresh.call(repeated[0]["predicted_calls"][0]).ok  # only the replayed state makes it fail


def test_run_directory_and_exports_give_the_same_held_out_dialogues(run_dir: Path, tmp_path: Path):
    from datagen.export import export_run

    export_run(run_dir, tmp_path / "hf", fmt="hf", seed=2, test=0.4)
    export_run(run_dir, tmp_path / "jl", fmt="jsonl", seed=2, test=0.4)
    split = {"seed": 2, "test": 0.4}
    found = {}
    for name, data in (("run", run_dir), ("hf", tmp_path / "hf"), ("jsonl", tmp_path / "jl")):
        config = _config([str(data)], split="test", run_split=split)
        found[name] = sorted((d.id, canonical(d.messages), d.seed) for d in load_dialogues(config))
    assert found["run"] and found["run"] == found["hf"] == found["jsonl"]
    sharegpt = tmp_path / "sg"
    export_run(run_dir, sharegpt, fmt="sharegpt")
    with pytest.raises(ValueError, match="found a sharegpt export"):
        load_dialogues(_config([str(sharegpt)]))


def test_a_stopped_run_resumes_without_repeats(run_dir: Path, tmp_path: Path):
    config = _config([str(run_dir)], run_split={"test": 0.0}, limit=4, concurrency=2)
    dialogues = load_dialogues(config)
    answer = perfect(dialogues)
    calls = {"n": 0}

    def flaky(messages, kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise ModelUnavailableError("the server went away")
        return answer(messages, kwargs)

    out = tmp_path / "out"
    with pytest.raises(ModelUnavailableError):
        _evaluate(config, flaky, out)
    first = [json.loads(line)["key"] for line in NextActionRun(out).turns.read_text().splitlines()]
    assert 0 < len(first) <= 5
    summary = _evaluate(config, answer, out)
    keys = [json.loads(line)["key"] for line in NextActionRun(out).turns.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == summary["turns_planned"] and keys[: len(first)] == first
    assert summary["overall"]["exact_match"] == 1.0


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([APIGEN_MT, "eval", "next-action", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)  # fmt: skip


def test_the_cli_refuses_bad_input_in_one_line(run_dir: Path, tmp_path: Path, plain_env: dict[str, str]):
    cases = [
        (["--out", str(tmp_path / "o")], "expected --config RECIPE or --data, --model"),
        (["--data", str(tmp_path / "nowhere"), "--model", "embedded", "--out", str(tmp_path / "o")], "no such file or folder"),
        (["--data", str(run_dir), "--model", "embedded", "--split", "dev", "--out", str(tmp_path / "o")], "no dialogue on the 'dev' split"),
        (["--config", str(ROOT / "recipes/eval/next_action/demo.yaml"), "--max-tokens", "0", "--out", str(tmp_path / "o")], "`agent.max_tokens`"),
    ]  # fmt: skip
    for args, expected in cases:
        done = _cli(args, plain_env)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1 and expected in lines[0], (args, done.stderr)
        assert not (tmp_path / "o" / "turns.jsonl").exists()


@pytest.mark.slow
@pytest.mark.vllm
def test_the_embedded_model_through_the_cli(run_dir: Path, tmp_path: Path, plain_env: dict[str, str]):
    """The real engine, as users run it: the summary on stdout, every turn a row, `report` shows it."""
    out = tmp_path / "na"
    args = ["--data", str(run_dir), "--model", "embedded", "--split", "train", "--limit", "2",
            "--max-tokens", "48", "--out", str(out), "--json"]  # fmt: skip
    done = _cli(args, plain_env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["turns_done"] == summary["turns_planned"] > 0 and summary["overall"]["errors"] == 0
    report = subprocess.run([APIGEN_MT, "report", str(out), "--out", str(tmp_path / "report")],
                            capture_output=True, text=True, env=plain_env, cwd=ROOT, timeout=300)  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert "next-action" in (tmp_path / "report" / "leaderboard.md").read_text()


def test_report_shows_next_action_results(run_dir: Path, tmp_path: Path):
    from evaluation.report import write_report

    config = _config([str(run_dir)], run_split={"test": 0.0}, limit=3)
    _evaluate(config, perfect(load_dialogues(config)), tmp_path / "results" / "perfect", "perfect")
    _evaluate(config, lambda messages, kwargs: ["Hello."], tmp_path / "results" / "idle", "idle")
    _, table = write_report([tmp_path / "results"], tmp_path / "report")
    header, *rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert "next-action run (train) name match" in header
    column = header.split(" | ").index("next-action run (train) name match")
    assert sorted(row.split(" | ")[column].split(" \\[")[0] for row in rows) == ["0.0", "100.0"]
    # Both ran the same dialogues: the gap is measured on them, and is no noise.
    compared = (tmp_path / "report" / "differences.csv").read_text()
    assert "next-action run (train) name match,idle,perfect," in compared and "perfect better" in compared
    assert (tmp_path / "report" / "next_action.png").stat().st_size > 5000


def test_the_viewer_shows_a_next_action_run(run_dir: Path, tmp_path: Path):
    from viewer.cli import build_site
    from viewer.kinds import Options, kind_of

    config = _config([str(run_dir)], run_split={"test": 0.0}, limit=2)
    _evaluate(config, lambda messages, kwargs: ["Hello."], tmp_path / "na", "idle")
    assert kind_of(tmp_path / "na").name == "next-action evaluation"
    _, built, problems = build_site([tmp_path / "na"], tmp_path / "site", Options(stats=False))
    assert not problems and len(built) == 1
    page = next((tmp_path / "site").glob("*/index.html")).read_text()
    assert "answered instead of calling" in page and "name match" in page
    assert any((tmp_path / "site").glob("*/turns.html"))
