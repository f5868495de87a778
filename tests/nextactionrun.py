"""A datagen run of verified retail dialogues made from the domain's gold tasks, for the next-action
tests: the user says the instruction, the agent makes the gold calls one per turn with the real
environment's observations, then answers in text. One dialogue makes two of its calls in parallel.
Written through the ``Trajectory`` and ``Blueprint`` records (the contract with Phase 2), with real
seeds, so the environment check can replay them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datagen.envs.registry import get_domain
from datagen.records import Blueprint, Trajectory
from datagen.rundir import DatagenRun
from datagen.simulate.agent import agent_system_prompt
from datagen.simulate.episode import GREETING


def _call_message(index: int, calls: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": f"call_{index}_{i}",
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for i, c in enumerate(calls)
        ],
    }


def gold_dialogue(domain: Any, task: Any, parallel: bool = False) -> list[dict[str, Any]]:
    env = domain.env_for_task(task)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": agent_system_prompt(domain.policy)},
        {"role": "assistant", "content": GREETING},
        {"role": "user", "content": task.instruction},
    ]
    actions = [a.model_dump() for a in task.actions]
    groups = [actions[:2], *[[a] for a in actions[2:]]] if parallel else [[a] for a in actions]
    for group in groups:
        message = _call_message(len(messages), group)
        messages.append(message)
        for call, spec in zip(group, message["tool_calls"], strict=True):
            observation = env.call(call)
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": spec["id"],
                    "name": call["name"],
                    "content": observation.content,
                }
            )
    messages.append({"role": "assistant", "content": "All done; is there anything else?"})
    messages.append({"role": "user", "content": "No, thanks. ###STOP###"})
    return messages


def write_gold_run(root: Path, count: int = 10) -> Path:
    """``root`` as a run directory of ``count`` verified retail dialogues (the 3rd has a parallel turn)."""
    domain = get_domain("retail")
    run = DatagenRun(root)
    root.mkdir(parents=True, exist_ok=True)
    trajectories, blueprints = [], []
    for i, task in enumerate(domain.gold_tasks[:count]):
        seed = domain.eval_seed if task.seed is None else task.seed
        blueprints.append(Blueprint(id=task.id, env="retail", seed=seed, user_id=task.user_id, persona=task.persona,
                                    instruction=task.instruction, actions=task.actions, outputs=task.outputs))  # fmt: skip
        trajectories.append(
            Trajectory(
                id=f"{task.id}-a0", blueprint_id=task.id, env="retail", seed=seed, persona=task.persona,
                instruction=task.instruction, messages=gold_dialogue(domain, task, parallel=i == 2),
                tools=domain.tool_schemas(), success=True, reward=1.0, checks={"ungrounded_arguments": []},
                models={"agent": "gold", "user": "gold"},
            )
        )  # fmt: skip
    run.blueprints.write_text("".join(b.model_dump_json() + "\n" for b in blueprints), encoding="utf-8")
    run.trajectories.write_text("".join(t.model_dump_json() + "\n" for t in trajectories), encoding="utf-8")
    return root


def canonical(messages: list[dict[str, Any]]) -> str:
    return json.dumps(messages, sort_keys=True, ensure_ascii=False)
