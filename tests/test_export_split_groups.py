"""Splits that cannot leak: a recombined blueprint sits with its parents, blueprints sharing a
ground-truth call or an instruction sit together, `--group-by user` keeps each user on one side; no
blueprint's actions and no instruction text appear on both sides of an export."""

from __future__ import annotations

import json
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from apigen_rules.values import normal_form
from datagen.export import export_run
from datagen.export.rows import split_groups, split_of, split_rows
from datagen.records import Blueprint, Trajectory
from datagen.rundir import DatagenRun


def _blueprints(rng: random.Random, count: int) -> list[Blueprint]:
    """Base tasks of a few users; some share a call or an instruction; recombinations of one user's tasks."""
    found: list[Blueprint] = []
    for i in range(count):
        user = f"u{rng.randrange(max(2, count // 3))}"
        order = f"#W{user[1:]}0{rng.randrange(3)}"  # a user's own orders; two tasks may make the same call
        instruction = (
            f"Cancel {order} for {user}" if rng.random() < 0.3 else f"Task {i} of {user}: cancel {order}"
        )
        calls = [{"name": "cancel", "arguments": {"order_id": order}}]
        found.append(Blueprint(id=f"bp{i:03d}", env="toy", seed=1, user_id=user, persona=user,
                               instruction=instruction, actions=calls))  # fmt: skip
    for j in range(count // 3):
        user = found[j].user_id
        same = [b for b in found if b.user_id == user and b.provenance.get("kind") != "recombined"][:2]
        if len(same) == 2:
            found.append(Blueprint(
                id=f"rc{j:03d}", env="toy", seed=1, user_id=user, persona=user,
                instruction=f"Do both things, {user} ({j})", actions=[a for b in same for a in b.actions],
                provenance={"kind": "recombined", "parents": [b.id for b in same]},
            ))  # fmt: skip
    return found


def _write_run(root: Path, blueprints: list[Blueprint]) -> Path:
    run = DatagenRun(root)
    root.mkdir(parents=True, exist_ok=True)
    run.blueprints.write_text("".join(b.model_dump_json() + "\n" for b in blueprints))
    messages = [
        {"role": "system", "content": "policy"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "ok"},
    ]
    run.trajectories.write_text("".join(
        Trajectory(id=f"{b.id}-a{a}", blueprint_id=b.id, env="toy", seed=1, attempt=a, instruction=b.instruction,
                   messages=messages, tools=[], success=True, reward=1.0).model_dump_json() + "\n"
        for b in blueprints for a in range(2)
    ))  # fmt: skip
    return root


def _sides(splits: dict[str, list[dict]], by_id: dict[str, Blueprint]) -> dict[str, list[Blueprint]]:
    return {s: [by_id[r["blueprint_id"]] for r in rows] for s, rows in splits.items()}


def _leaks(sides: dict[str, list[Blueprint]], group_by: str) -> list[str]:
    """Calls, instructions (and users) found on more than one side."""
    seen: dict[str, set[str]] = {}
    for side, blueprints in sides.items():
        for b in blueprints:
            keys = {f"call {json.dumps(a.model_dump(), sort_keys=True)}" for a in b.actions}
            keys.add(f"instruction {normal_form(b.instruction)}")
            if group_by == "user":
                keys.add(f"user {b.user_id}")
            for key in keys:
                seen.setdefault(key, set()).add(side)
    return sorted(key for key, found in seen.items() if len(found) > 1)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), count=st.integers(4, 40), group_by=st.sampled_from(["blueprint", "user"]))
def test_no_call_instruction_or_user_is_on_two_sides(seed: int, count: int, group_by: str):
    blueprints = _blueprints(random.Random(seed), count)
    by_id = {b.id: b for b in blueprints}
    rows = [{"blueprint_id": b.id} for b in blueprints]
    groups = split_groups(blueprints, group_by)
    splits = split_rows(rows, seed=seed, validation=0.2, test=0.3, groups=groups)
    assert _leaks(_sides(splits, by_id), group_by) == []
    side = {r["blueprint_id"]: s for s, part in splits.items() for r in part}
    for b in blueprints:  # a recombined task sits with its parents
        assert all(side[p] == side[b.id] for p in b.provenance.get("parents", []))


def test_without_the_groups_the_same_data_leaks():
    """The check above can fail: split by blueprint alone, recombined tasks land apart from their parents."""
    blueprints = _blueprints(random.Random(3), 40)
    by_id = {b.id: b for b in blueprints}
    plain = split_rows([{"blueprint_id": b.id} for b in blueprints], seed=3, validation=0.2, test=0.3)
    assert _leaks(_sides(plain, by_id), "blueprint")


def test_a_blueprint_without_links_keeps_its_old_split():
    alone = [
        Blueprint(id=f"b{i}", env="toy", seed=1, persona="p", instruction=f"task {i}", actions=[])
        for i in range(30)
    ]
    groups = split_groups(alone)
    assert all(split_of(groups[b.id], 5, 0.1, 0.3) == split_of(b.id, 5, 0.1, 0.3) for b in alone)


def test_the_export_splits_by_group_and_says_so(tmp_path: Path):
    blueprints = _blueprints(random.Random(7), 30)
    by_id = {b.id: b for b in blueprints}
    run = _write_run(tmp_path / "run", blueprints)
    for group_by in ("blueprint", "user"):
        out = tmp_path / group_by
        export_run(run, out, fmt="jsonl", seed=1, test=0.4, group_by=group_by)
        splits = {
            p.stem: [json.loads(line) for line in p.read_text().splitlines()] for p in out.glob("*.jsonl")
        }
        assert set(splits) == {"train", "test"} and _leaks(_sides(splits, by_id), group_by) == []
        facts = json.loads((out / "export.json").read_text())
        assert facts["split"]["group_by"] == group_by
        card = (out / "README.md").read_text()
        assert "one was recombined from the other" in card and "no ground-truth call" in card
        assert ("tasks of the same user" in card) is (group_by == "user")
