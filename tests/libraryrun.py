"""Task blueprints for the GRPO tests: the gold tasks of the scaffolded `library` user domain (small
enough for a 135M model's context on a CPU), and a run directory holding them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datagen.envs.registry import get_domain
from datagen.envs.scaffold import scaffold_domain
from datagen.records import Blueprint
from datagen.rundir import DatagenRun


def library_blueprints(parent: Path) -> tuple[Any, list[Blueprint]]:
    folder = scaffold_domain("library", parent)
    domain = get_domain(str(folder))
    blueprints = [
        Blueprint(
            id=task.id,
            env=str(folder),  # a user domain is found by its folder
            seed=domain.eval_seed,
            persona=task.persona,
            instruction=task.instruction,
            actions=task.actions,
            outputs=task.outputs,
        )
        for task in domain.gold_tasks
    ]
    return domain, blueprints


def write_library_run(root: Path) -> Path:
    """A run directory whose blueprints are the library domain's gold tasks."""
    _, blueprints = library_blueprints(root / "domains")
    run = DatagenRun(root / "run")
    run.root.mkdir(parents=True)
    run.blueprints.write_text("".join(b.model_dump_json() + "\n" for b in blueprints))
    return run.root
