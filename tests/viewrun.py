"""A small but complete datagen run for the viewer and stats tests, made by the real runners.

Phase 1 runs on the shop domain (tests/blueprint_toy.py) with scripted models whose first drafts name
an output the data does not hold, so every accepted task needs a revision round (more drafts than
tasks: the case the old funnel counted wrongly), and with recombination, so base and recombined tasks
both exist. Phase 2 runs twice over the accepted blueprints: attempt 0 with a replay agent (verified
dialogues), attempt 1 with a model agent that only talks (state-mismatch failures). The simulated
user is Best-of-2 with a judge, so dialogues carry critique scores.

``write_sources`` adds every other page kind, each by its real writer: hf, ShareGPT and JSONL exports
of that run, a τ run, a scored BFCL run and a next-action run.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from blueprint_toy import make_shop_domain, shop_responder
from scripted import ScriptedModel

from datagen.blueprint.committee import Judge
from datagen.blueprint.runner import Models, read_run, run_blueprints
from datagen.recipe.datagen import DatagenRecipe, ModelConfig
from datagen.recipe.episode import AgentRole, SimulateConfig, UserRole
from datagen.rundir import DatagenRun
from datagen.simulate.runner import SimulationRunner

USER_LINE = "Hi, I need a change made to my order."


def _user(messages, kwargs):
    if kwargs.get("json_schema"):  # the Best-of-N judge
        return [json.dumps({"reason": "fits the task", "score": 7})]
    said = [m for m in messages if m["role"] == "assistant"]
    n = kwargs.get("n", 1)
    # The customer repeats the instruction the generator wrote (it names the orders), so the replay
    # agent's calls use values the user said and pass the provenance check.
    wants = next((line for line in messages[0]["content"].splitlines() if line.startswith("You want")), "")
    return [f"{USER_LINE} {wants}".strip() if len(said) <= 1 else "thanks ###STOP###"] * n


def _agent_text(messages, kwargs):
    """Reads back the last tool result (a replay agent then says the expected outputs)."""
    seen = [m["content"] for m in messages if m["role"] == "tool"]
    return [f"All done: {seen[-1]}" if seen else "How can I help with your order?"]


class _Pool:
    def __init__(self):
        self.models = {
            "agent": ScriptedModel(_agent_text, "scripted-agent"),
            "user": ScriptedModel(_user, "scripted-user"),
        }

    def get(self, alias: str):
        return self.models[alias]


def write_view_run(root: Path) -> tuple[Path, object]:
    """Writes ``root/run`` and returns (run dir, the shop domain)."""
    domain = make_shop_domain(root)
    run = root / "run"
    config = DatagenRecipe.model_validate(
        {
            "name": "shop-view",
            "env": "shop",
            "num_tasks": 8,
            "concurrency": 3,
            "proposal": {"type": "grounded"},
            "samplers": {"records_range": [2, 4], "walk_length": [1, 1]},
            "refinement": {"max_rounds": 2},
            "recombination": {"share": 1.0, "group_size": [2, 2]},
            "models": {
                "scripted": {
                    "model": "scripted",
                    "backend": "openai",
                    "base_urls": ["http://bob:hunter2-secret@127.0.0.1:9/v1"],
                }
            },
            "generator": {"model": "scripted"},
        }
    )
    model = ScriptedModel(shop_responder(bad_first_draft=True))
    models = Models(model, [Judge(f"judge{i}", model, ModelConfig()) for i in range(3)])
    asyncio.run(run_blueprints(config, run, domain=domain, models=models))
    accepted = read_run(run).accepted
    user = UserRole(model="user", best_of_n=2)
    for mode, attempts in (("replay", 1), ("model", 2)):
        agent = AgentRole(model="agent", mode=mode, stop_after_script=mode == "replay")
        sim = SimulateConfig(agent=agent, user=user, attempts=attempts, max_steps=8, concurrency=4)
        asyncio.run(SimulationRunner(sim, DatagenRun(run), lambda name: domain, _Pool()).run(accepted))
    return run, domain


def write_tau_run(root: Path) -> Path:
    """A τ evaluation on the toy domain: one task, two trials, scripted agent and user."""
    from toydomain import make_toy_domain

    from datagen.envs.base import Task
    from datagen.llm import ModelSpec
    from datagen.rundir import TauRun
    from evaluation.tau.config import TauConfig
    from evaluation.tau.harness import TauHarness

    domain = make_toy_domain(root)
    tasks = [
        Task(id="w40", persona="Ann", instruction="Withdraw 40 from a10.", outputs=["60"],
             actions=[{"name": "withdraw", "arguments": {"account_id": "a10", "amount": 40}}]),
    ]  # fmt: skip

    def user(messages, kwargs):
        said = [m for m in messages if m["role"] == "assistant"]
        return ["withdraw 40 from a10" if len(said) <= 1 else "thanks ###STOP###"]

    def agent(messages, kwargs):
        if messages[-1]["role"] == "user" and "withdraw" in messages[-1]["content"]:
            return [{"name": "withdraw", "arguments": {"account_id": "a10", "amount": 40}}]
        return ["Done, 60 left."]

    models = {"agent": ScriptedModel(agent, "agent-x"), "user": ScriptedModel(user, "user-sim")}

    class Pool:
        def get(self, alias: str):
            return models[alias]

    config = TauConfig(
        env="shop",
        models={"agent": ModelSpec(model="agent"), "user": ModelSpec(model="user")},
        agent={"model": "agent"},
        user={"model": "user", "best_of_n": 1},
        trials=2,
    )
    out = root / "tau"
    asyncio.run(TauHarness(config, domain, tasks, TauRun(out), Pool()).run())
    return out


def write_bfcl_run(out: Path, model: str = "good-agent") -> Path:
    """A scored BFCL evaluation of gold answers on three categories."""
    from datagen.rundir import BfclRun
    from evaluation.bfcl.cli import score_main
    from evaluation.bfcl.results import write_results
    from evaluation.bfcl.synthetic import results_for

    for category in ("simple_python", "multiple", "irrelevance"):
        write_results(BfclRun.result_file(out, category), results_for(category, "gold", "python", stride=40))
    BfclRun(out).write_metadata({"model": model, "format": "python"})
    assert score_main([str(out), "--result-format", "python"]) == 0
    return out


def write_next_action_run(root: Path) -> Path:
    """A next-action evaluation of a model that only talks, over two gold retail dialogues."""
    from nextactionrun import write_gold_run

    from datagen.envs.registry import get_domain
    from datagen.llm.pool import ModelPool
    from datagen.rundir import NextActionRun
    from evaluation.next_action.config import NextActionConfig
    from evaluation.next_action.data import load_dialogues
    from evaluation.next_action.harness import NextActionHarness

    gold = write_gold_run(root / "gold", count=2)
    config = NextActionConfig.model_validate(
        {"data": [str(gold)], "split": "train", "models": {"m": {"model": "scripted"}}, "agent": {"model": "m"},
         "run_split": {"test": 0.0}, "limit": 2}
    )  # fmt: skip
    model = ScriptedModel(lambda messages, kwargs: ["Hello."], "idle")
    out = root / "next-action"
    harness = NextActionHarness(
        config, load_dialogues(config), NextActionRun(out), ModelPool(prebuilt={"m": model}), get_domain
    )
    asyncio.run(harness.run())
    return out


def write_sources(root: Path) -> dict[str, Path]:
    """Every page kind, written by the real writers under ``root``."""
    from datagen.export import export_run

    root.mkdir(parents=True, exist_ok=True)
    run, _ = write_view_run(root)
    sources = {"run": run}
    for fmt in ("hf", "sharegpt", "jsonl"):
        sources[fmt] = root / f"dataset-{fmt}"
        export_run(run, sources[fmt], fmt=fmt, test=0.4)
    sources["tau"] = write_tau_run(root)
    sources["bfcl"] = write_bfcl_run(root / "bfcl")
    sources["next-action"] = write_next_action_run(root)
    return sources
