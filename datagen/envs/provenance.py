"""What a domain lets an agent write into a state-changing call without anyone having said it.

Phase 2's provenance check (:mod:`datagen.simulate.provenance`) requires every argument value of
every agent write call to have been written earlier in the dialogue, by the user or in a tool's
observation (compared with :func:`apigen_rules.values.value_written`), unless it is a literal the policy
allows. The literals every domain allows:

- booleans and null, and the empty string (``address2: ""``);
- a value the tool's own schema lists (``enum``/``const``: a cancellation ``reason``, a ``cabin``),
  which the agent reads from the tool list;
- a whole number from 0 to ``small_integers`` (a count of bags or passengers, said as "two");
- a value written in the agent's system prompt, which holds the domain policy (a fee, a limit).

A domain adds to these with a :class:`ProvenanceRule`: ``computed`` names the arguments the policy
tells the agent to work out rather than repeat (airline: a certificate worth $100 per passenger, the
payment amounts that add up to a fare), which the check then leaves alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProvenanceRule:
    """A domain's additions to the literals every domain allows (module docstring)."""

    # tool name -> argument paths the agent computes: "amount", or "payment_methods.amount" for a
    # key inside every item of a list argument.
    computed: Mapping[str, frozenset[str]] = field(default_factory=dict)
    small_integers: int = 10

    def is_computed(self, tool: str, path: str) -> bool:
        """Whether the argument at ``path`` (list indices left out: ``payment_methods.amount``) of a
        ``tool`` call is one the agent computes."""
        declared = self.computed.get(tool, frozenset())
        return any(path == p or path.startswith(p + ".") for p in declared)


DEFAULT_RULE = ProvenanceRule()

# The rule in one line, for dataset cards and reports.
RULE_TEXT = (
    "every argument value of every agent write call was written earlier by the user or a tool, or is "
    "a literal the policy allows (booleans, null, empty text, values the tool schema lists, whole "
    f"numbers 0-{DEFAULT_RULE.small_integers}, values written in the policy, arguments the domain "
    "declares computed)"
)
