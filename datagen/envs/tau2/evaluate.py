"""Rewards for episodes on τ² domains: ours, and τ²'s own rule-based evaluators on the same trajectory.

Our reward (``our_reward``): the episode's final state hash equals the hash after replaying τ²'s
gold actions (agent and user side) from the task's initial state, every ``communicate_info`` string
appears in some assistant message (τ-bench's rule as τ² applies it: lower case, commas removed from
the message; ``apigen_rules.values.tau_output_said``), and, where τ² has env assertions (telecom), τ²'s
own assertion functions hold on the final state.

τ²'s reward (``tau2_reward``): the trajectory rebuilt as τ² messages (``tau2_messages``) and scored by
τ²'s ``EnvironmentEvaluator``, ``ActionEvaluator`` and ``CommunicateEvaluator``, combined over the
task's reward basis as ``tau2.evaluator.evaluator.evaluate_simulation`` does. NL assertions need an
LLM judge and are skipped (``tau2.evaluator.evaluator`` itself imports litellm, which we never load);
a reward basis that includes them is reported in ``skipped``.

How the dialogue ended gates both (``tau2_verdict``, ``our_verdict``): τ²'s ``evaluate_simulation``
gives reward 0 to every simulation that did not end by the user's or the agent's stop
(``REWARDED_TERMINATIONS``), whatever the state; the parts are still computed and kept, so a row
shows that the right writes were made before the cut.

Known disagreement: τ²'s telecom ``refuel_data`` creates a bill with a random id (uuid4), so two
replays of the same actions differ in τ²'s own DB hash; our hash-based check then fails where τ²'s
telecom reward (env assertions only) passes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from apigen_rules.values import tau_output_said
from datagen.envs.base import Observation
from datagen.envs.tau2.domain import Tau2Domain, Tau2Environment

# τ²'s evaluate_simulation scores a simulation only when it ended by one of these termination reasons
# (the user's ###STOP###, ###TRANSFER### or ###OUT-OF-SCOPE###, or the agent's stop); every other
# reason (max_steps, too_many_errors, agent_error, user_error, and the newer timeout,
# context_window_exceeded, ...) gets reward 0. τ²'s first release zeroed max_steps and too_many_errors,
# the only other reasons it had: the same rule.
REWARDED_TERMINATIONS = frozenset({"user_stop", "agent_stop"})


@dataclass(frozen=True)
class GoldAction:
    requestor: str  # "assistant" | "user"
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class RewardReport:
    reward: float
    parts: dict[str, float]  # component -> 0.0/1.0
    details: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def gold_actions(domain: Tau2Domain, task_id: str) -> list[GoldAction]:
    """τ²'s gold actions of a task, both requestors, in order."""
    criteria = domain.tau2_task(task_id).evaluation_criteria
    actions = (criteria.actions or []) if criteria is not None else []
    return [GoldAction(a.requestor, a.name, dict(a.arguments)) for a in actions]


def replay_actions(env: Tau2Environment, actions: Iterable[GoldAction]) -> list[Observation]:
    """Runs actions in order, agent ones through ``call`` and user ones through ``call_user``."""
    observations = []
    for action in actions:
        tool_call = {"name": action.name, "arguments": copy.deepcopy(action.arguments)}
        run = env.call_user if action.requestor == "user" else env.call
        observations.append(run(tool_call))
    return observations


def gold_environment(domain: Tau2Domain, task_id: str) -> Tau2Environment:
    """A fresh episode of the task with τ²'s gold actions replayed."""
    env = domain.env_for_task(task_id)
    replay_actions(env, gold_actions(domain, task_id))
    return env


def gold_hash(domain: Tau2Domain, task_id: str) -> str:
    """Our state hash after the gold replay (cached on the domain: the replay is deterministic)."""
    found = domain.gold_hashes.get(task_id)
    if found is None:
        found = domain.gold_hashes[task_id] = gold_environment(domain, task_id).state_hash()
    return found


def missing_outputs(outputs: Sequence[str], assistant_texts: Sequence[str]) -> list[str]:
    """The expected outputs that no assistant message says, by τ²'s own literal rule
    (``apigen_rules.values.tau_output_said``, not our number-aware one), so this reward stays τ²'s."""
    return [o for o in outputs if not tau_output_said(o, assistant_texts)]


def failed_env_assertions(domain: Tau2Domain, task_id: str, env: Tau2Environment) -> list[str]:
    """τ²'s env assertions of the task that do not hold on the episode's final state."""
    criteria = domain.tau2_task(task_id).evaluation_criteria
    assertions = (criteria.env_assertions or []) if criteria is not None else []
    if not assertions:
        return []
    probe = env.tau2_copy()  # assertion functions run through τ²'s sync; keep the episode untouched
    return [
        f"{a.func_name}({a.arguments}) expected {a.assert_value}"
        for a in assertions
        if not probe.run_env_assertion(a, raise_assertion_error=False)
    ]


def our_reward(
    domain: Tau2Domain, task_id: str, env: Tau2Environment, assistant_texts: Sequence[str]
) -> RewardReport:
    """1.0 when the final state matches the gold replay's, outputs were said and env assertions hold."""
    criteria = domain.tau2_task(task_id).evaluation_criteria
    outputs = list(criteria.communicate_info or []) if criteria is not None else []
    missing = missing_outputs(outputs, assistant_texts)
    failed = failed_env_assertions(domain, task_id, env)
    parts = {
        "db": float(env.state_hash() == gold_hash(domain, task_id)),
        "outputs": float(not missing),
        "env_assertions": float(not failed),
    }
    reward = parts["db"] * parts["outputs"] * parts["env_assertions"]
    return RewardReport(reward, parts, {"missing_outputs": missing, "failed_env_assertions": failed})


# -- τ²'s side ----------------------------------------------------------------------------------------


def tau2_messages(env: Tau2Environment, assistant_texts: Sequence[str] = ()) -> list[Any]:
    """The episode as τ² messages: one message per tool call τ² answered (assistant or user), its
    result exactly as τ² rendered it, then the assistant's texts."""
    from tau2.data_model.message import AssistantMessage, ToolCall, ToolMessage, UserMessage

    messages: list[Any] = []
    for index, entry in enumerate(env.timeline):
        if entry.tau2_content is None:
            continue  # never reached τ²'s code and changed nothing (see TimelineEntry)
        call_id, requestor, record = f"call_{index}", entry.requestor, entry.record
        call = ToolCall(id=call_id, name=record.name, arguments=record.arguments, requestor=requestor)
        sender = UserMessage if requestor == "user" else AssistantMessage
        messages.append(sender(role=requestor, content=None, tool_calls=[call]))
        messages.append(
            ToolMessage(
                id=call_id, role="tool", content=entry.tau2_content, requestor=requestor, error=not record.ok
            )
        )
    messages.extend(AssistantMessage(role="assistant", content=text) for text in assistant_texts)
    return messages


def tau2_reward(
    domain: Tau2Domain,
    task_id: str,
    messages: list[Any],
    environment_constructor: Callable[..., Any] | None = None,
    *,
    task: Any = None,
) -> RewardReport:
    """τ²'s own rule-based evaluators on ``messages``, combined over the task's reward basis.

    ``environment_constructor`` builds the τ² environments the evaluator replays into: by default
    τ²'s own ``get_environment`` (reads the database from disk each time);
    ``domain.tau2_environment_constructor`` gives the same state from memory, faster. ``task``: τ²'s
    Task to score against (a results file's own copy); by default the installed task ``task_id``."""
    from tau2.data_model.tasks import RewardType
    from tau2.evaluator.evaluator_action import ActionEvaluator
    from tau2.evaluator.evaluator_communicate import CommunicateEvaluator
    from tau2.evaluator.evaluator_env import EnvironmentEvaluator

    task = task if task is not None else domain.tau2_task(task_id)
    if task.evaluation_criteria is None:
        return RewardReport(1.0, {}, {"note": "no evaluation criteria"})
    env_info = EnvironmentEvaluator.calculate_reward(
        environment_constructor=environment_constructor or domain.tau2_source.get_environment,
        task=task,
        full_trajectory=messages,
        solo_mode=False,
    )
    action_info = ActionEvaluator.calculate_reward(task=task, full_trajectory=messages)
    communicate_info = CommunicateEvaluator.calculate_reward(task=task, full_trajectory=messages)
    basis = set(task.evaluation_criteria.reward_basis)
    parts: dict[str, float] = {}
    if basis & {RewardType.DB, RewardType.ENV_ASSERTION}:
        parts["env"] = env_info.reward
    if RewardType.ACTION in basis:
        parts["action"] = action_info.reward
    if RewardType.COMMUNICATE in basis:
        parts["communicate"] = communicate_info.reward
    skipped = ["nl_assertions"] if RewardType.NL_ASSERTION in basis else []
    reward = 1.0
    for value in parts.values():
        reward *= value
    details = {
        "db_match": env_info.db_check.db_match if env_info.db_check is not None else None,
        "action_reward": action_info.reward,
        "communicate_reward": communicate_info.reward,
        "reward_basis": sorted(str(b.value) for b in basis),
    }
    return RewardReport(reward, parts, details, skipped)


def ended_as_tau2_scores(termination: str) -> bool:
    """Whether τ² scores a simulation that ended this way (``REWARDED_TERMINATIONS``)."""
    return termination in REWARDED_TERMINATIONS


def gated(report: RewardReport, termination: str) -> RewardReport:
    """``report`` as τ² gives it for a dialogue that ended by ``termination``: unchanged after a proper
    stop, else reward 0 with the parts kept and the reason noted."""
    if ended_as_tau2_scores(termination):
        return report
    details = {
        **report.details,
        "note": f"terminated prematurely ({termination}): reward 0 whatever the state",
    }
    if "evaluator_error" not in details:
        details["reward_had_it_ended"] = report.reward
    return RewardReport(0.0, report.parts, details, report.skipped)


def tau2_verdict(
    domain: Tau2Domain,
    task_id: str,
    messages: list[Any],
    termination: str,
    environment_constructor: Callable[..., Any] | None = None,
    *,
    task: Any = None,
) -> RewardReport:
    """τ²'s ``evaluate_simulation`` (rule-based parts) on a trajectory that ended by ``termination``.
    A premature end scores 0 even where the evaluators cannot replay the trajectory (τ² does not
    evaluate it at all); their error is then noted instead of the parts."""
    try:
        report = tau2_reward(domain, task_id, messages, environment_constructor, task=task)
    except Exception as exc:
        if ended_as_tau2_scores(termination):
            raise
        report = RewardReport(0.0, {}, {"evaluator_error": f"{type(exc).__name__}: {exc}"})
    return gated(report, termination)


def our_verdict(
    domain: Tau2Domain, task_id: str, env: Tau2Environment, assistant_texts: Sequence[str], termination: str
) -> RewardReport:
    """``our_reward`` under the same termination rule as τ²'s."""
    return gated(our_reward(domain, task_id, env, assistant_texts), termination)
