"""Grounded proposal (Phase 1): the walked write tools get arguments drawn from the sampled user
data and tried on a scratch environment, so a_gt executes by construction.

Four parts, each its own module:

- ``pools``: value pools (where an argument's candidate values come from) and the tiers of one call;
- ``draw``: drawing one call's arguments from its tool's JSON schema and the pools;
- ``planner``: the record a write tool acts on (its anchor) and the states it can act on;
- ``ground``: the loop that tries candidates on a scratch environment, each kept only if it keeps the
  policy (with the read the policy requires in front).

How tables link is read from the domain's declared references (``datagen.envs.references``),
never guessed from spelling; a domain whose references leave an id parameter unresolved gets an
error naming it when the planner is built.
"""

from datagen.blueprint.grounding.draw import draw_arguments
from datagen.blueprint.grounding.ground import ground_actions
from datagen.blueprint.grounding.planner import StatePlanner, anchor_parameter
from datagen.blueprint.grounding.pools import Pools, ValuePool, anchored_pools, build_value_pool, user_pool

__all__ = [
    "Pools",
    "StatePlanner",
    "ValuePool",
    "anchor_parameter",
    "anchored_pools",
    "build_value_pool",
    "draw_arguments",
    "ground_actions",
    "user_pool",
]
