"""BFCL evaluation recipes (``recipes/eval/bfcl/*.yaml``; every key can also come from a flag)."""

from __future__ import annotations

from pydantic import Field, field_validator

from datagen.recipe import Recipe, Role


class BfclRole(Role):
    """The model under test: its alias and how it samples (BFCL runs at temperature ~0)."""

    temperature: float = Field(0.0, ge=0.0, description="sampling temperature of the model under test")
    max_tokens: int = Field(512, gt=0, description="tokens the model may write per step")


class BfclConfig(Recipe):
    """A BFCL run: the model under test, the generation mode and the categories."""

    agent: BfclRole = Field(
        default_factory=BfclRole, description="the model under test: its alias and sampling"
    )
    format: str = Field("fc", description="generation mode: how the model is asked and its results stored")
    lenient: bool = Field(
        False, description="score with the runtime's forgiving parsers (not leaderboard-comparable)"
    )
    categories: list[str] = Field(
        default_factory=lambda: ["all"],
        description="categories or groups (all, non_live, live, multi_turn, ...) to run",
    )
    limit: int | None = Field(None, ge=1, description="first N items of each category (a quick run)")
    concurrency: int = Field(256, ge=1, description="items in flight at once")
    result_name: str | None = Field(None, description="folder of the result files (BFCL's model name)")

    @field_validator("format")
    @classmethod
    def _known_mode(cls, mode: str) -> str:
        from evaluation.bfcl.generate import MODES

        if mode not in MODES:
            raise ValueError(f"expected one of {', '.join(MODES)}, found {mode!r}")
        return mode
