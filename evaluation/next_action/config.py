"""Next-action evaluation recipes (``recipes/eval/next_action/*.yaml``; flags override every key).

The model under test is declared once under ``models:`` and named by ``agent:`` with its own sampling
settings, as in every recipe. ``data`` names exported datasets or datagen run directories; a run
directory is split by the export's own rule (``run_split``), so ``split: test`` is the same held-out
side an export of that run would have.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from datagen.recipe import Recipe, Role, Strict


class ModelUnderTest(Role):
    """The model under test: its alias and how it samples (greedy unless asked)."""

    temperature: float = Field(
        0.0, ge=0.0, description="sampling temperature (teacher-forced accuracy: greedy)"
    )
    max_tokens: int = Field(256, gt=0, description="tokens the model may write per turn")


class RunSplit(Strict):
    """How a run directory given as data is split: the export's flags of the same names."""

    seed: int = Field(0, description="split seed (`apigen-mt export --seed`)")
    validation: float = Field(
        0.0, ge=0.0, lt=1.0, description="validation fraction (`apigen-mt export --validation`)"
    )
    test: float = Field(0.1, ge=0.0, lt=1.0, description="test fraction (`apigen-mt export --test`)")
    group_by: Literal["blueprint", "user"] = Field(
        "blueprint",
        description="what stays on one side of the split: a blueprint's family, or also every task of one user",
    )
    include_ungrounded: bool = Field(
        False, description="also dialogues that failed only Phase 2's provenance check"
    )


class NextActionConfig(Recipe):
    """A next-action run: held-out dialogues, the model under test and how run directories are split."""

    data: list[str] = Field(
        description="exported datasets (hf or jsonl export, a save_to_disk folder, a .jsonl file) or run directories"
    )
    split: str = Field("test", description="the split to evaluate (a .jsonl file has none: all its rows)")
    limit: int | None = Field(None, ge=1, description="only the first N dialogues of each data source")
    agent: ModelUnderTest = Field(default_factory=ModelUnderTest, description="the model under test")
    run_split: RunSplit = Field(
        default_factory=RunSplit, description="how a run directory given in `data` is split (as the export)"
    )
    concurrency: int = Field(
        256, ge=1, description="turns in flight at once; the model spec's max_concurrency caps its requests"
    )
    seed: int = Field(0, description="run seed every turn's sampling seed derives from")

    @field_validator("data", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("data")
    @classmethod
    def _some(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("expected at least one dataset or run directory, found none")
        return value
