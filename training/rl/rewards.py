"""Rewards of a GRPO episode: the verifier's verdict, and optional shaping terms, each its own TRL
reward function (so TRL logs each as ``rewards/<name>/mean`` and weighs them with ``reward_weights``).

``verifier`` is 1 when ``datagen.simulate.verdict.judge_episode`` accepts the episode (the dialogue
ended properly, the final state hash equals the replay of the blueprint's actions, every expected
output was said under the one value rule, no policy check failed, every value of every write call
was said before it: the provenance check) and 0 otherwise: the same verdict that decides which
Phase 2 dialogues are kept. The shaping terms are partial credit read from the same
episode, each in [0, 1]; a recipe names the ones it wants with their weights (``shaping:``), and
without any the reward is the verdict alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from apigen_rules.values import same_value
from datagen.envs.policy import ActionRecord

Episode = dict[str, Any]  # the summary the rollout hands to TRL as the extra field `episode`


def _share(part: float, whole: float, empty: float) -> float:
    return part / whole if whole else empty


SHAPING_TERMS: dict[str, tuple[Callable[[Episode], float], str]] = {
    "outputs": (
        lambda e: _share(e["outputs_found"], e["outputs_expected"], 1.0),
        "share of the expected outputs of the blueprint the agent said (1 when it expects none)",
    ),
    "gold_calls": (
        lambda e: _share(e["gold_calls_matched"], e["gold_calls"], 1.0),
        "share of the blueprint actions the agent made with the same arguments and that ran (any order)",
    ),
    "tool_success": (
        lambda e: _share(e["tool_calls"] - e["failed_tool_calls"], e["tool_calls"], 0.0),
        "share of agent tool calls the environment ran without an error (0 without calls)",
    ),
    "format": (
        lambda e: 1.0 - _share(e["format_errors"], e["agent_turns"], 1.0),
        "share of agent turns whose tool-call markup could be read (0 without a turn)",
    ),
    "brevity": (
        lambda e: 1.0 - _share(e["agent_tokens"], e["agent_turns"] * e["turn_max_tokens"], 1.0),
        "1 - (mean tokens per agent turn) / (the per-turn limit): shorter turns score higher (0 without a turn)",
    ),
}


def verifier(episode: Sequence[Episode], **_: Any) -> list[float]:
    """The verdict: 1.0 for an episode the verifier accepts, else 0.0."""
    return [1.0 if e["success"] else 0.0 for e in episode]


def shaping_function(name: str) -> Callable[..., list[float]]:
    if name not in SHAPING_TERMS:
        raise ValueError(f"unknown shaping term {name!r}; expected one of {sorted(SHAPING_TERMS)}")
    term, description = SHAPING_TERMS[name]

    def reward(episode: Sequence[Episode], **_: Any) -> list[float]:
        return [float(term(e)) for e in episode]

    reward.__name__ = name  # TRL logs rewards/<__name__>/mean
    reward.__doc__ = description
    return reward


def reward_functions(shaping: dict[str, float]) -> tuple[list[Callable[..., list[float]]], list[float]]:
    """The reward functions and their weights: the verdict with weight 1, then each shaping term."""
    functions = [verifier] + [shaping_function(name) for name in shaping]
    return functions, [1.0, *shaping.values()]


def gold_calls_matched(gold: Sequence[dict[str, Any]], trace: Sequence[ActionRecord]) -> int:
    """How many gold actions an executed call matches (same name, same arguments under the value rule),
    each executed call counted for one gold action at most."""
    unused = [a for a in trace if a.ok]
    matched = 0
    for action in gold:
        for index, done in enumerate(unused):
            if done.name == action["name"] and same_value(done.arguments, action.get("arguments", {})):
                matched += 1
                del unused[index]
                break
    return matched
