"""Whether a grounded candidate counts: it executes, changes the state, and keeps the domain's policy.

Phase 1's policy stage rejects a draft that breaks a rule, so the walk (``ground``) and the state
planner's probes (``planner``) judge every candidate by the same checks first; the read the policy
requires before any write (identity verification) is found once and put in front.
"""

from __future__ import annotations

import random
from typing import Any

from datagen.blueprint.grounding.draw import draw_arguments
from datagen.blueprint.grounding.pools import Pools
from datagen.envs.base import Domain, Environment


def attempt_call(env: Environment, call: dict[str, Any]) -> tuple[Any, str]:
    """(the call's observation, why it does not count; "" when it succeeded and changed the state)."""
    before = env.state_hash()
    observation = env.call(call)
    if not observation.ok:
        return observation, observation.content
    if env.state_hash() == before:
        return observation, "the call succeeded but changed nothing"
    return observation, ""


class PolicyGate:
    """Whether a walk's calls keep the domain's policy, given the one read the policy requires before
    any write (identity verification, as τ-bench's gold actions have it).

    The read is found once, with the first candidate that executes: the read (drawn from the sampled
    data, tried on a scratch environment) that leaves the fewest violations, kept when it leaves fewer
    than none does. Every later candidate is judged with it in front."""

    def __init__(self, domain: Domain, seed: int, pools: Pools, rng: random.Random, tries: int = 4):
        self.domain, self.seed, self.pools, self.rng, self.tries = domain, seed, pools, rng, tries
        self.read: dict[str, Any] | None = None
        self.searched = False

    def violations(self, calls: list[dict[str, Any]]) -> list[str] | None:
        """Policy violations of the read (if any) and ``calls`` on a fresh environment; None when a
        call fails there."""
        env = self.domain.new_env(self.seed)
        before = env.snapshot()
        prefix = [self.read] if self.read is not None else []
        if not all(o.ok for o in env.replay(prefix + calls)):
            return None
        return [str(v) for v in env.policy_violations(before)]

    def blockers(self, calls: list[dict[str, Any]]) -> list[str]:
        """The violations that rule ``calls`` out (empty: they keep the policy)."""
        found = self.violations(calls) or []
        if found and not self.searched:
            self.searched = True
            best: tuple[int, dict[str, Any]] | None = None
            for read in self._read_candidates():
                self.read = read
                left = self.violations(calls)
                if left is not None and (best is None or len(left) < best[0]):
                    best = (len(left), read)
            self.read = best[1] if best is not None and best[0] < len(found) else None
            found = self.violations(calls) or []
        return found

    def _read_candidates(self) -> list[dict[str, Any]]:
        reads = sorted(self.domain.read_tools(), key=lambda spec: spec.name)
        self.rng.shuffle(reads)
        candidates = []
        for spec in reads:
            for _ in range(self.tries):
                call = {"name": spec.name, "arguments": draw_arguments(spec, self.pools, self.rng)}
                if self.domain.new_env(self.seed).call(call).ok:
                    candidates.append(call)
                    break
        return candidates
