"""`make demo`'s plan: the commands it runs parse with the real CLIs and chain into each other."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("demo_script", REPO / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_script"] = module
    spec.loader.exec_module(module)
    return module


def cli_args(command: list[str], *words: str) -> list[str]:
    """The arguments after the `apigen-mt <words>` prefix of a planned command."""
    for start in range(len(command)):
        if command[start : start + len(words)] == list(words):
            return command[start + len(words) :]
    raise AssertionError(f"{words} not in {command}")


def test_plan_order_and_chaining(demo, tmp_path: Path):
    settings = demo.DemoSettings(out=tmp_path / "demo", blueprints=3)
    steps = demo.plan(settings)
    assert [s.key for s in steps] == [
        "generate",
        "export",
        "sft",
        "bfcl-base",
        "tau-base",
        "bfcl-sft",
        "tau-sft",
        "report",
        "view",
    ]
    by_key = {s.key: s for s in steps}
    run_dir, dataset = str(settings.out / "run"), str(settings.out / "dataset")
    assert cli_args(by_key["generate"].command, "generate")[-2:] == ["--limit", "3"]
    assert cli_args(by_key["export"].command, "export")[0] == run_dir
    sft = by_key["sft"].command
    assert sft[sft.index("--dataset_path") + 1] == dataset
    merged = str(demo.fine_tuned_dir(settings))
    assert Path(merged).parent == Path(sft[sft.index("--output_dir") + 1])
    for key in ("bfcl-sft", "tau-sft"):
        command = by_key[key].command
        assert command[command.index("--model") + 1] == merged
    report = cli_args(by_key["report"].command, "report")
    assert run_dir in report and str(settings.out / "eval") in report
    view = cli_args(by_key["view"].command, "view")
    assert view[:3] == [run_dir, dataset, str(settings.out / "eval")]
    assert Path(view[view.index("--out") + 1]) == by_key["view"].produces.parent


def test_commands_parse_with_the_real_clis(demo, tmp_path: Path):
    from evaluation.bfcl import data
    from evaluation.bfcl.cli import _generate_parser
    from evaluation.tau.cli import build_parser as tau_parser

    steps = {s.key: s for s in demo.plan(demo.DemoSettings(out=tmp_path))}
    for key in ("bfcl-base", "bfcl-sft"):
        args = _generate_parser().parse_args(cli_args(steps[key].command, "eval", "bfcl"))
        categories = data.expand_categories(args.categories)
        assert categories and set(categories) <= set(data.GROUPS["single_turn"]), categories
        assert args.limit is not None
    users = set()
    for key in ("tau-base", "tau-sft"):
        args = tau_parser().parse_args(cli_args(steps[key].command, "eval", "tau"))
        assert (args.env, args.tasks, args.user_mode) == ("retail", "gold", "scripted")
        users.add((args.user_mode, args.user_model, args.seed))
        # A dialogue needs at least user, lookups, confirmation, user yes, the change, the answer and the user's stop.
        assert args.max_steps >= 8
    assert len(users) == 1, f"both runs must face the same fixed user: {users}"
    from training.sft import parse_args as sft_parse_args

    sft = steps["sft"].command
    _, training_args, model_args = sft_parse_args(sft[sft.index("training/sft.py") + 1 :])
    assert model_args.use_peft and training_args.max_steps == demo.DemoSettings().sft_max_steps
    assert training_args.bf16 == demo.cpu_has_native_bf16()  # emulated bf16 is slower than float32
    for path in (demo.DATAGEN_RECIPE, demo.SFT_RECIPE, demo.ACCELERATE_CONFIG):
        assert (REPO / path).is_file(), path


def test_live_probes_read_the_run_files(demo, tmp_path: Path):
    (tmp_path / "stats.json").write_text(json.dumps({"proposed": 5}))
    (tmp_path / "blueprints.jsonl").write_text("{}\n{}\n")
    (tmp_path / "trajectories.jsonl").write_text("{}\n")
    line = demo.funnel_probe(tmp_path)
    assert "5 proposed, 2 accepted, 0 rejected" in line and "1 successful dialogues, 0 failed" in line
    settings = demo.DemoSettings(tau_tasks=3, tau_trials=2)
    (tmp_path / "results.jsonl").write_text("{}\n" * 4)
    assert demo.tau_probe(tmp_path, settings) == "4/6 trials done"


def test_step_results_drop_vllm_log_records(demo):
    stdout = (
        "(MainProcess pid=12) INFO 11-25 06:30:10 [model.py:733] Resolved architecture\n"
        "(VllmWorker-0 pid=13) WARNING 11-25 06:31:51 [vllm.py:725] no Triton\n"
        "results written under out/bfcl\nsimple_python   25.00%  (1/4)\n"
    )
    assert demo.result_lines(stdout) == ["results written under out/bfcl", "simple_python   25.00%  (1/4)"]


def test_the_demo_exports_only_grounded_dialogues_and_prints_the_ungrounded_count(demo, tmp_path: Path):
    from rich.console import Console

    export = next(s for s in demo.plan(demo.DemoSettings(out=tmp_path)) if s.key == "export")
    assert "--include-ungrounded" not in cli_args(export.command, "export")
    stats = {"attempts": 16, "successful_trajectories": 13, "duplicate_successes": 1,
             "failures": {"ungrounded_arguments": 1}}  # fmt: skip
    (tmp_path / "simulate_stats.json").write_text(json.dumps(stats))
    console = Console(record=True, width=200)
    demo.summarise_generation(tmp_path, console)
    text = console.export_text()
    assert "phase 2: failed (ungrounded_arguments)" in text
    assert (
        "Provenance: ungrounded dialogues 1 of the 15 that passed the state, output and policy checks" in text
    )


def test_the_demo_recipes_use_the_declared_stand_ins_and_real_recipes_do_not():
    """The CPU demo recipes play the user with the scripted stand-in; one keeps the 135M user; no
    other datagen recipe uses either stand-in (they are never a real recipe's choice)."""
    from datagen.recipe.datagen import load_datagen_recipe

    for path in sorted((REPO / "recipes" / "datagen").rglob("*.yaml")):
        config = load_datagen_recipe(path)
        demo_recipe = path.parent.name == "datagen" and path.name.startswith("demo")
        if not demo_recipe:
            assert (config.simulate.user.mode, config.simulate.agent.mode) == ("model", "model"), path
        elif path.name == "demo-llm-user.yaml":
            assert config.simulate.user.mode == "model", path
        else:
            assert config.simulate.user.mode == "scripted", path
