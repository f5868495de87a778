"""The prompts of a GRPO run: task blueprints from a run directory, or from the run behind an export,
on one side of the export's split.

A blueprint carries what an episode needs and a dataset row does not (the persona and instruction the
simulated user gets, the ground-truth actions and outputs the verifier replays), so the blueprints
are read from the run directory (``datagen.rundir``). The split is the export's own rule
(``datagen.export.rows.split_groups`` and ``split_of``: by group of blueprints, from a seed and two
fractions): a run directory is
split with the fractions given here (the export's defaults unless set), an export folder with the
seed and fractions it was made with (its ``export.json``), so GRPO on ``train`` never sees a
blueprint whose dialogues are in that export's ``test``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from apigen_rules.export_files import FACTS_FILE
from datagen.export.rows import split_groups, split_of
from datagen.records import Blueprint
from datagen.rundir import DatagenRun, read_records
from datagen.simulate.agent import agent_system_prompt
from datagen.simulate.episode import GREETING

TASK_KEY = "task_id"  # the key of the prompt's first message that names its blueprint


class TaskSource(BaseModel):
    """The ``tasks:`` section of a GRPO recipe."""

    model_config = ConfigDict(extra="forbid")

    run_dir: str | None = Field(
        None, description="a run directory written by `apigen-mt generate`/`blueprints`"
    )
    export_dir: str | None = Field(
        None, description="an `apigen-mt export` folder: its run directory and its split are used"
    )
    split: Literal["train", "validation", "test"] = Field(
        "train", description="the side of the export's split whose blueprints become prompts"
    )
    seed: int | None = Field(None, description="run_dir only: split seed (default 0, as the export)")
    validation: float | None = Field(
        None, ge=0, lt=1, description="run_dir only: validation fraction (default 0)"
    )
    test: float | None = Field(None, ge=0, lt=1, description="run_dir only: test fraction (default 0.1)")
    limit: int | None = Field(None, ge=1, description="use at most this many blueprints (in file order)")

    @model_validator(mode="after")
    def _one_source(self) -> TaskSource:
        if (self.run_dir is None) == (self.export_dir is None):
            raise ValueError("tasks: give exactly one of run_dir and export_dir")
        if self.export_dir is not None and any(
            v is not None for v in (self.seed, self.validation, self.test)
        ):
            raise ValueError(
                "tasks: an export_dir brings its own split (seed, validation, test in its export.json); "
                "drop seed/validation/test, or give the run_dir instead"
            )
        return self


def _split_of_export(export_dir: Path) -> tuple[Path, dict[str, Any]]:
    facts_path = export_dir / FACTS_FILE
    if not facts_path.is_file():
        raise FileNotFoundError(
            f"tasks.export_dir: expected {facts_path} (written by `apigen-mt export`), found none; "
            "give the run directory as tasks.run_dir instead"
        )
    facts = json.loads(facts_path.read_text(encoding="utf-8"))
    run_dir = Path(facts.get("run_dir", ""))
    if not run_dir.is_absolute():
        run_dir = (Path.cwd() / run_dir).resolve()
    if not DatagenRun(run_dir).blueprints.is_file():
        raise FileNotFoundError(
            f"tasks.export_dir: {export_dir} was exported from {facts.get('run_dir')!r}, which holds no "
            "blueprints here; give that run directory as tasks.run_dir (with the export's split settings)"
        )
    return run_dir, facts["split"]


def load_tasks(source: TaskSource) -> tuple[list[Blueprint], dict[str, Any]]:
    """The blueprints on ``source.split`` and how they were chosen (for the model card)."""
    if source.export_dir is not None:
        run_dir, split = _split_of_export(Path(source.export_dir))
        seed, validation, test = split["seed"], split["validation"], split["test"]
        group_by = split.get("group_by", "blueprint")
    else:
        group_by = "blueprint"
        run_dir = Path(source.run_dir or "")
        seed = 0 if source.seed is None else source.seed
        validation = 0.0 if source.validation is None else source.validation
        test = 0.1 if source.test is None else source.test
    run = DatagenRun(run_dir)
    if not run.blueprints.is_file():
        raise FileNotFoundError(
            f"tasks: expected blueprints in {run.blueprints} (a run of `apigen-mt blueprints` or `generate`), found none"
        )
    everything = read_records(run.blueprints, Blueprint)
    groups = split_groups(everything, group_by)  # the export's grouping: recombined tasks with their parents
    chosen = [b for b in everything if split_of(groups[b.id], seed, validation, test) == source.split]
    if source.limit is not None:
        chosen = chosen[: source.limit]
    if not chosen:
        raise ValueError(
            f"tasks: {run.blueprints} has {len(everything)} blueprints but none on the {source.split!r} side of "
            f"the split (seed {seed}, validation {validation}, test {test}); change the split or the run"
        )
    facts = {
        "run_dir": str(run_dir),
        "split": source.split,
        "split_rule": {"seed": seed, "validation": validation, "test": test},
        "blueprints_in_run": len(everything),
        "blueprints_used": len(chosen),
        "envs": sorted({b.env for b in chosen}),
    }
    return chosen, facts


def prompt_row(blueprint: Blueprint, policy: str) -> dict[str, Any]:
    """The dataset row of one task: the opening the policy sees (its system prompt, the greeting), the
    first message naming the blueprint. The rollout plays the rest."""
    return {
        "prompt": [
            {"role": "system", "content": agent_system_prompt(policy), TASK_KEY: blueprint.id},
            {"role": "assistant", "content": GREETING, TASK_KEY: None},
        ]
    }


def task_of(prompt: list[dict[str, Any]]) -> str:
    found = prompt[0].get(TASK_KEY) if prompt else None
    if not isinstance(found, str):
        raise ValueError(
            f"expected a GRPO prompt whose first message names its blueprint under {TASK_KEY!r} "
            f"(training.rl.tasks.prompt_row), found {prompt[:1]!r}"
        )
    return found
