"""The success check: final state equals the replay of the ground truth, every expected output was
said by the agent (``apigen_rules.values``, the rule Phase 1 and the τ harness use too), and no policy
check fails on the agent's trace. Phase 2 adds the provenance check (``provenance=True``,
:mod:`datagen.simulate.provenance`): every value of every agent write call was said before it or is
a literal the policy allows; the τ harness leaves it off, so its reward stays τ-bench's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from apigen_rules.values import missing_outputs
from datagen.envs.base import Domain, Environment, ToolCallModel
from datagen.simulate.episode import EpisodeResult
from datagen.simulate.provenance import ungrounded_arguments


def agent_texts(messages: Sequence[dict[str, Any]]) -> list[str]:
    return [m.get("content") or "" for m in messages if m.get("role") == "assistant"]


def gold_hash(
    domain: Domain, seed: int, actions: Sequence[ToolCallModel | dict[str, Any]]
) -> tuple[str, str, bool]:
    """(hash after replaying the ground truth on a fresh env, start hash, every gold call ok)."""
    env = domain.new_env(seed)
    start = env.state_hash()
    observations = env.replay(list(actions))
    return env.state_hash(), start, all(o.ok for o in observations)


@dataclass
class Verdict:
    success: bool
    reward: float
    failure: str | None
    checks: dict[str, Any] = field(default_factory=dict)


def judge_episode(
    env: Environment,
    episode: EpisodeResult,
    *,
    expected_hash: str,
    expected_outputs: Sequence[str],
    provenance: bool = False,
) -> Verdict:
    """Scores an episode that ran on ``env``. Reward parts are kept apart in ``checks``; with
    ``provenance`` a dialogue that passes everything else but used an unsaid value in a write call
    fails as ``ungrounded_arguments`` (the values are listed in ``checks``)."""
    state_match = env.state_hash() == expected_hash
    missing = missing_outputs(expected_outputs, agent_texts(episode.messages))
    violations = [str(v) for v in env.policy_violations(episode.before)]
    checks: dict[str, Any] = {
        "state_match": state_match,
        "outputs_found": len(expected_outputs) - len(missing),
        "outputs_expected": len(expected_outputs),
        "missing_outputs": missing,
        "policy_violations": violations,
        "termination": episode.termination,
        "format_errors": episode.format_errors,
        "tool_calls": len(env.trace),
        "failed_tool_calls": sum(1 for a in env.trace if not a.ok),
        "verification": env.domain.verification,
    }
    ungrounded: list[dict[str, Any]] = []
    if provenance:
        ungrounded = ungrounded_arguments(episode.messages, env.domain)
        checks["ungrounded_arguments"] = ungrounded
    if episode.error:
        checks["error"] = episode.error
    # As in τ²-bench, a dialogue cut off by the step limit (or a backend error) is not a success,
    # even when the state happens to match: the human never confirmed the goal was met. A replay
    # agent's finished script is a proper end; the trajectory records agent_mode and termination.
    ended_properly = episode.termination in ("user_stop", "transfer", "script_done")
    success = ended_properly and state_match and not missing and not violations and not ungrounded
    if success:
        return Verdict(True, 1.0, None, checks)
    if episode.termination == "error":
        failure = "error"
    elif episode.termination == "step_limit":
        failure = "step_limit"
    elif episode.format_errors and not state_match:
        failure = "format_error"
    elif not state_match:
        failure = "state_mismatch"
    elif missing:
        failure = "missing_output"
    elif violations or not ended_properly:
        failure = "policy_violation"
    else:
        failure = "ungrounded_arguments"
    return Verdict(False, 0.0, failure, checks)
