"""τ² tasks the τ tests script agents on: test-split tasks whose gold makes a write, and their gold calls."""

from __future__ import annotations

from typing import Any

WRITES = ("cancel", "modify", "return", "exchange")


def write_tasks(domain: Any, count: int = 1) -> list[Any]:
    """The first ``count`` test tasks of a τ² domain whose gold writes (our Task records), leaving out
    tasks whose reward needs an LLM judge (NL assertions)."""
    from datagen.envs.tau2.evaluate import gold_actions

    found = []
    for task in domain.tasks(split="test"):
        basis = {str(b.value) for b in domain.tau2_task(task.id).evaluation_criteria.reward_basis}
        if "NL_ASSERTION" not in basis and any(
            a.name.startswith(WRITES) for a in gold_actions(domain, task.id)
        ):
            found.append(task)
            if len(found) == count:
                break
    return found


def agent_gold_calls(domain: Any, task_id: str) -> list[dict[str, Any]]:
    """τ²'s gold calls of the agent's side, as tool calls."""
    from datagen.envs.tau2.evaluate import gold_actions

    return [
        {"name": a.name, "arguments": a.arguments}
        for a in gold_actions(domain, task_id)
        if a.requestor == "assistant"
    ]
