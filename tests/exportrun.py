"""A run directory holding successful trajectories in the simulator's record shape, for export tests.

Written through the ``Trajectory`` record, the contract between Phase 2 and the export, so the export
tests do not depend on how the runner is configured. Every dialogue has two parallel calls with
different argument keys (the case Arrow structs get wrong), text next to a call, and a call without
arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datagen.records import Trajectory

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "withdraw",
            "description": "Withdraw an amount from an account.",
            "parameters": {
                "type": "object",
                "properties": {"account_id": {"type": "string"}, "amount": {"type": "number"}},
                "required": ["account_id", "amount"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_account",
            "description": "Look up an account.",
            "parameters": {
                "type": "object",
                "properties": {"account_id": {"type": "string"}, "fields": {"type": "array"}},
                "required": ["account_id"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "list_branches",
            "description": "All branches.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]


def messages(i: int) -> list[dict[str, Any]]:
    def call(cid: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {"id": cid, "type": "function", "function": {"name": name, "arguments": arguments}}

    return [
        {"role": "system", "content": "You are a bank agent. Confirm before any withdrawal."},
        {"role": "assistant", "content": "Hi! How can I help you today?"},
        {"role": "user", "content": f"Please withdraw {40 + i} from a10, and check a11."},
        {
            "role": "assistant",
            "content": "Let me do both.",
            "tool_calls": [
                call("call_3_0", "withdraw", {"account_id": "a10", "amount": 40 + i}),
                call("call_3_1", "get_account", {"account_id": "a11", "fields": ["balance", {"é": None}]}),
            ],
        },
        {"role": "tool", "tool_call_id": "call_3_0", "name": "withdraw", "content": '{"balance": 60}'},
        {"role": "tool", "tool_call_id": "call_3_1", "name": "get_account", "content": '{"balance": 200}'},
        {"role": "assistant", "content": "", "tool_calls": [call("call_6_0", "list_branches", {})]},
        {"role": "tool", "tool_call_id": "call_6_0", "name": "list_branches", "content": "[]"},
        {"role": "assistant", "content": "Done: a10 now holds $60.00 and a11 holds $200.00."},
        {"role": "user", "content": "Great, thanks! ###STOP###"},
    ]


def write_run(run_dir: Path, count: int = 12, models: dict[str, str] | None = None) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(count):
        trajectory = Trajectory(
            id=f"bp{i}-0",
            blueprint_id=f"bp{i}",
            env="bank",
            seed=1,
            persona=f"Person {i}",
            instruction="Withdraw and ask for a11's balance.",
            messages=messages(i),
            tools=TOOLS,
            success=True,
            reward=1.0,
            models=models or {"agent": "embedded", "user": "embedded"},
            usage={"prompt_tokens": 100, "completion_tokens": 20},
        )
        lines.append(trajectory.model_dump_json() + "\n")
    (run_dir / "trajectories.jsonl").write_text("".join(lines), encoding="utf-8")
    return run_dir
