"""Phase 1's stages, in the order a task draft meets them; everything that names a stage reads it here.

The paper validates format -> execution -> policy -> review committee. Two checks sit inside that
order as stages of their own: ``outputs`` (every expected output can be read from the data the task
is built on; the paper's execution stage implies it, and it is the part a generator with fixed
actions can still revise) and ``duplicate`` (the same customer already has a task with exactly these
actions), which runs before the committee so no judge reads a task that cannot be kept. Before any
check, ``proposal``: the proposer could not build a draft at all (grounding found no executable
actions for the walked tools).

The check chain (``datagen.blueprint.chain``), the funnel and its statistics, the stages a revision
can address, and the report's funnel all derive from this list.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    PROPOSAL = "proposal"
    FORMAT = "format"
    EXECUTION = "execution"
    OUTPUTS = "outputs"
    POLICY = "policy"
    DUPLICATE = "duplicate"
    COMMITTEE = "committee"


# What a draft passes, in order (every stage but the proposal); a draft that fails one stops there.
CHECKS: tuple[Stage, ...] = tuple(stage for stage in Stage if stage is not Stage.PROPOSAL)

# Stages that judge the actions alone: a proposer that fixes the actions (grounded) cannot revise
# a draft that fails them; every other failure is the model's to fix in a revision round.
ACTION_STAGES = frozenset({Stage.EXECUTION, Stage.POLICY, Stage.DUPLICATE})


def revisable(stage: str | None, fixed_actions: bool) -> bool:
    """Whether a revision round can address a failure at ``stage``."""
    if stage not in CHECKS:
        return False
    return not (fixed_actions and stage in ACTION_STAGES)


def stage_name(stage: Stage | None) -> str | None:
    """A stage as run records (JSON, YAML) hold it: its plain name."""
    return stage.value if stage is not None else None
