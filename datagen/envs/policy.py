"""Policy checks: the "unit tests" of a domain policy, run over (state before, action trace, state after).

A check is a function ``(before, trace, after) -> list[str]`` (one message per violation) decorated
with ``@policy_check("R3", "the rule text")``; ``R3`` names the policy rule it enforces, so a
violation can always be traced back to the sentence of the policy the agent broke.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from datagen.envs.store import Tables


@dataclass(frozen=True)
class ActionRecord:
    """One executed tool call in an episode's trace."""

    name: str
    arguments: dict[str, Any]
    kind: str  # "read" | "write" | "unknown"
    ok: bool
    observation: str
    result: Any = None  # the tool's return value when ok (JSON-able), else None


@dataclass(frozen=True)
class Violation:
    """One broken rule: the check that found it, the policy rule it cites, and what happened."""

    check: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.check}: {self.message}"


CheckFn = Callable[[Tables, Sequence[ActionRecord], Tables], list[str]]


@dataclass(frozen=True)
class PolicyCheck:
    """A policy check function with the rule it enforces (built by :func:`checks_in`)."""

    name: str
    rule: str  # rule id in the policy, e.g. "R3"
    description: str
    fn: CheckFn

    def run(self, before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[Violation]:
        """The check's violations; a check that raises reports one violation saying so."""
        try:
            messages = self.fn(before, trace, after)
        except Exception as exc:  # a check that crashes must be loud, but not kill a run
            messages = [f"policy check crashed: {type(exc).__name__}: {exc}"]
        return [Violation(check=self.name, rule=self.rule, message=m) for m in messages]


def policy_check(rule: str, description: str) -> Callable[[CheckFn], CheckFn]:
    """Marks ``fn(before, trace, after) -> list[str]`` as the check of policy rule ``rule`` (``"R3"``);
    each returned string is one violation."""

    def mark(fn: CheckFn) -> CheckFn:
        fn.__apigen_check__ = (rule, description)  # type: ignore[attr-defined]
        return fn

    return mark


def checks_in(module: Any) -> list[PolicyCheck]:
    """The :func:`policy_check` functions of ``module``, in source order."""
    functions = [obj for obj in vars(module).values() if callable(obj) and hasattr(obj, "__apigen_check__")]
    functions.sort(key=lambda fn: fn.__code__.co_firstlineno)
    return [
        PolicyCheck(name=fn.__name__, rule=fn.__apigen_check__[0], description=fn.__apigen_check__[1], fn=fn)
        for fn in functions
    ]


def run_checks(
    checks: Sequence[PolicyCheck], before: Tables, trace: Sequence[ActionRecord], after: Tables
) -> list[Violation]:
    """Every violation of every check on one trace, from the state ``before`` to ``after``."""
    return [v for check in checks for v in check.run(before, trace, after)]
