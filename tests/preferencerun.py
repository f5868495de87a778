"""A run directory with planted verified and failed dialogues of a few blueprints, for the preference
export and DPO tests. Written through the ``Trajectory`` record and the run directory's own file names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exportrun import TOOLS

from datagen.records import Trajectory
from datagen.rundir import DatagenRun

SYSTEM = {"role": "system", "content": "You are a bank agent."}
GREETING = {"role": "assistant", "content": "Hi! How can I help you today?"}


def call_message(amount: float, position: int) -> dict[str, Any]:
    call = {
        "id": f"call_{position}_0",
        "type": "function",
        "function": {"name": "withdraw", "arguments": {"account_id": "a10", "amount": amount}},
    }
    return {"role": "assistant", "content": "", "tool_calls": [call]}


def dialogue(ask: str, amount: float, answer: str) -> list[dict[str, Any]]:
    return [
        SYSTEM,
        GREETING,
        {"role": "user", "content": ask},
        call_message(amount, 3),
        {"role": "tool", "tool_call_id": "call_3_0", "name": "withdraw", "content": '{"balance": 60}'},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "Thanks ###STOP###"},
    ]


def record(bp: str, attempt: int, messages: list[dict[str, Any]], failure: str | None) -> Trajectory:
    return Trajectory(
        id=f"{bp}-a{attempt}",
        blueprint_id=bp,
        env="bank",
        seed=1,
        attempt=attempt,
        messages=messages,
        tools=TOOLS,
        success=failure is None,
        reward=float(failure is None),
        failure=failure,  # type: ignore[arg-type]
        models={"agent": "embedded", "user": "embedded"},
    )


ASK = "Withdraw 40 from a10."
RIGHT = dialogue(ASK, 40, "Done, a10 now holds 60.")
# Planted cases: where each failure parts from the verified dialogues of its blueprint.
PLANTED = {
    # bp-call: the agent withdrew the wrong amount (an assistant turn, message 3).
    "bp-call": ([RIGHT], [("state_mismatch", dialogue(ASK, 400, "Done."))]),
    # bp-answer: same calls, the final answer leaves out the balance (message 5); a failed job
    # (class error) and a dialogue the user took elsewhere (message 2) give no pair.
    "bp-answer": (
        [RIGHT],
        [
            ("missing_output", dialogue(ASK, 40, "Done.")),
            ("error", [SYSTEM, GREETING]),
            ("state_mismatch", dialogue("Withdraw 50 from a10.", 50, "Done.")),
        ],
    ),
    # bp-two: two verified dialogues; the failure shares more with the second one.
    "bp-two": (
        [dialogue("Take 40 out of a10 please.", 40, "Done, 60 left."), RIGHT],
        [("policy_violation", dialogue(ASK, 40, "Done. I also closed your other account."))],
    ),
    # Only failures: nothing is invented. Only successes: nothing to prefer against.
    "bp-failures-only": ([], [("state_mismatch", dialogue(ASK, 400, "Done."))]),
    "bp-successes-only": ([RIGHT], []),
}


def write_planted_run(root: Path) -> Path:
    run = DatagenRun(root)
    run.root.mkdir(parents=True)
    ok, failed = [], []
    for bp, (wins, losses) in PLANTED.items():
        ok += [record(bp, i, m, None) for i, m in enumerate(wins)]
        failed += [record(bp, 10 + i, m, cls) for i, (cls, m) in enumerate(losses)]
    run.trajectories.write_text("".join(t.model_dump_json() + "\n" for t in ok))
    run.failures.write_text("".join(t.model_dump_json() + "\n" for t in failed))
    run.recipe.write_text("name: planted\nenv: bank\nlicense: cc-by-4.0\n")
    return run.root
