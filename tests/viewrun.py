"""A small but complete datagen run for the viewer and stats tests, made by the real runners.

Phase 1 runs on the shop domain (tests/blueprint_toy.py) with scripted models whose first drafts name
an output the data does not hold, so every accepted task needs a revision round (more drafts than
tasks: the case the old funnel counted wrongly), and with recombination, so base and recombined tasks
both exist. Phase 2 runs twice over the accepted blueprints: attempt 0 with a replay agent (verified
dialogues), attempt 1 with a model agent that only talks (state-mismatch failures). The simulated
user is Best-of-2 with a judge, so dialogues carry critique scores.
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
