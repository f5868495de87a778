"""The airline domain: seeded data, tools, gold tasks replayed, and every policy check on both sides."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datagen.envs.airline import load_domain
from datagen.envs.airline.database import AirlineDB, build_database, flight_date_key
from datagen.envs.base import NativeDomain, NativeEnvironment, Task
from datagen.envs.selftest import check_tool_schemas, replay_task
from datagen.envs.store import canonical_json

DOMAIN = load_domain()
TASKS = DOMAIN.gold_tasks + DOMAIN.example_tasks
DB = DOMAIN.base(1).tables  # the cached evaluation-seed database every episode starts from (read-only)


@pytest.fixture(scope="module")
def domain() -> NativeDomain:
    return DOMAIN


def gold(task_suffix: str) -> Task:
    return next(t for t in DOMAIN.gold_tasks if t.id.endswith(task_suffix))


def day_info(flight_number: str, day: str) -> dict[str, Any]:
    return DB["flight_dates"][flight_date_key(flight_number, day)]


def run(actions: list[dict[str, Any]], seed: int = 1) -> tuple[NativeEnvironment, dict]:
    """Replays ``actions`` (asserting each call succeeds) and returns the env and the start snapshot."""
    env = DOMAIN.new_env(seed)
    before = env.snapshot()
    for action in actions:
        obs = env.call(action)
        assert obs.ok, f"{action['name']} failed: {obs.content}"
    return env, before


def rules_broken(env: NativeEnvironment, before: dict) -> set[str]:
    return {v.rule for v in env.policy_violations(before)}


def actions_of(task: Task) -> list[dict[str, Any]]:
    return [a.model_dump() for a in task.actions]


# -- data --------------------------------------------------------------------------------------
def test_same_seed_same_bytes_and_valid():
    first = build_database(1)
    assert canonical_json(first) == canonical_json(DB)  # DB came from an earlier, separate build
    AirlineDB.model_validate(first)
    assert len(first["users"]) >= 300 and len(first["reservations"]) >= 1000
    assert len(first["airports"]) == 20
    dates = {d["date"] for d in first["flight_dates"].values()}
    assert len(dates) == 30 and len(first["flights"]) >= 200
    assert len(first["flight_dates"]) == 30 * len(first["flights"])


def test_train_and_eval_seeds_share_no_entities():
    def entities(data: dict[str, Any]) -> dict[str, set[str]]:
        users = data["users"].values()
        return {
            "ids": set(data["users"])
            | set(data["reservations"])
            | set(data["flights"])
            | {m for u in users for m in u["payment_methods"]},
            "emails": {u["email"] for u in users},
            "names": {
                f"{p['first_name']} {p['last_name']}"
                for r in data["reservations"].values()
                for p in r["passengers"]
            }
            | {f"{u['first_name']} {u['last_name']}" for u in users},
        }

    a, b = entities(DOMAIN.base(0).tables), entities(DB)
    for kind in a:
        assert not a[kind] & b[kind], f"train and eval seeds share {kind}: {sorted(a[kind] & b[kind])[:5]}"


def test_generated_reservations_are_consistent():
    db = DB
    for r in db["reservations"].values():
        flights = r["flights"]
        assert flights[0]["origin"] == r["origin"]
        assert all(a["destination"] == b["origin"] for a, b in zip(flights, flights[1:], strict=False))
        end = r["origin"] if r["trip_type"] == "round_trip" else r["destination"]
        assert flights[-1]["destination"] == end
        assert r["user_id"] in db["users"] and 0 <= r["nonfree_baggages"] <= r["total_baggages"]
        assert all(
            p["payment_id"] in db["users"][r["user_id"]]["payment_methods"] for p in r["payment_history"]
        )


# -- interface ---------------------------------------------------------------------------------
def test_sizes_schemas_policy_and_graph(domain):
    assert len(domain.tools) >= 12 and len(domain.write_tools()) >= 5
    assert len(domain.checks) >= 8 and len(domain.gold_tasks) >= 20 and 3 <= len(domain.example_tasks) <= 5
    rules = {f"R{n}" for n in re.findall(r"\*\*R(\d+)\.\*\*", domain.policy)}
    assert len(rules) >= 10
    assert {c.rule for c in domain.checks} <= rules and len({c.rule for c in domain.checks}) >= 8
    assert check_tool_schemas(domain) == []
    graph = domain.dependency_graph()
    assert "cancel_reservation" in graph["list_user_reservations"]
    assert "get_user_details" in graph["verify_user"]
    assert "book_reservation" in graph["search_direct_flights"]
    assert "update_reservation_cabin" in graph["get_user_details"]  # payment_id


def test_tasks_are_on_the_right_seeds(domain):
    assert all(t.seed == domain.eval_seed for t in domain.gold_tasks)
    assert all(t.seed == domain.train_seed for t in domain.example_tasks)
    assert not {t.id for t in domain.example_tasks} & {t.id for t in domain.gold_tasks}
    for task in TASKS:
        assert task.actions[0].name in ("verify_user", "find_user_by_email"), task.id
        assert task.instruction.startswith("You are"), task.id
    unchanged = [t for t in domain.gold_tasks if "end state equals start state" in t.notes.lower()]
    assert len(unchanged) >= 3


@pytest.mark.parametrize("task", TASKS, ids=[t.id for t in TASKS])
def test_task_replays_clean(domain, task):
    report = replay_task(domain, task, task.seed)
    assert report.failures == []


def test_do_nothing_differs_from_gold_end_state(domain):
    changing = [t for t in domain.gold_tasks if any(domain.tool(a.name).kind == "write" for a in t.actions)]
    assert len(changing) >= 12
    env = domain.new_env(domain.eval_seed)
    nothing = env.state_hash()
    for task in changing:
        assert replay_task(domain, task, task.seed, env).end_hash != nothing, task.id


# -- tool behaviour ----------------------------------------------------------------------------
def test_booking_takes_seats_and_cancelling_gives_them_back():
    task = gold("book-direct-economy")
    env, _ = run(actions_of(task))
    booked = env.trace[-1].result
    flight = booked["flights"][0]
    key = flight_date_key(flight["flight_number"], flight["date"])
    seats = lambda e: e.store.get("flight_dates", key)["available_seats"]["economy"]  # noqa: E731
    fresh = DOMAIN.new_env(1)
    assert seats(env) == seats(fresh) - 1
    obs = env.call(
        {
            "name": "cancel_reservation",
            "arguments": {"reservation_id": booked["reservation_id"], "reason": "change_of_plans"},
        }
    )
    assert obs.ok and obs.result["refund_total"] == booked["payment_history"][0]["amount"]
    assert seats(env) == seats(fresh)
    again, _ = run(actions_of(task))
    assert again.trace[-1].result["reservation_id"] == booked["reservation_id"]  # ids derive from the state


@pytest.mark.parametrize(
    "tool, arguments, fragment",
    [
        ("update_reservation_passengers", {"passengers": []}, "count cannot change"),
        ("update_reservation_baggages", {"total_baggages": 0, "nonfree_baggages": 0}, "can only be added"),
        ("book_reservation", None, "add up to"),
        ("verify_user", {"user_id": "nobody_0000", "date_of_birth": "1990-01-01"}, "no user"),
        ("cancel_reservation", {"reservation_id": "ZZZZZZ", "reason": "health"}, "no reservation"),
    ],
)
def test_refused_calls_change_nothing(tool, arguments, fragment):
    task = gold("fix-passenger-dob")
    rid = task.actions[-1].arguments["reservation_id"]
    if arguments is None:
        arguments = dict(gold("book-direct-economy").actions[-1].arguments)
        arguments["payment_methods"] = [{**arguments["payment_methods"][0], "amount": 1.0}]
    else:
        arguments = {"reservation_id": rid, **arguments} if tool.startswith("update") else arguments
    env = DOMAIN.new_env(1)
    start = env.state_hash()
    obs = env.call({"name": tool, "arguments": arguments})
    assert not obs.ok and fragment in obs.content
    assert env.state_hash() == start


def test_flown_reservation_cannot_be_cancelled():
    db = DB
    flown = next(
        r
        for r in db["reservations"].values()
        if r["status"] == "active"
        and day_info(r["flights"][0]["flight_number"], r["flights"][0]["date"])["status"] == "landed"
    )
    env = DOMAIN.new_env(1)
    obs = env.call(
        {
            "name": "cancel_reservation",
            "arguments": {"reservation_id": flown["reservation_id"], "reason": "health"},
        }
    )
    assert not obs.ok and "already flown" in obs.content


# -- policy checks: each caught on a violating trace, silent on a compliant one ----------------
def _other_users_business_cancel() -> tuple[list[dict], list[dict]]:
    task = gold("refuse-other-users-reservation")
    rid = re.search(r"reservation ([A-Z0-9]{6})", task.instruction).group(1)
    owner = DB["reservations"][rid]["user_id"]
    dob = DB["users"][owner]["date_of_birth"]
    cancel = {"name": "cancel_reservation", "arguments": {"reservation_id": rid, "reason": "change_of_plans"}}
    own = {"name": "verify_user", "arguments": {"user_id": owner, "date_of_birth": dob}}
    return actions_of(task) + [cancel], [own, cancel]


def _with_argument(task: Task, index: int, **changes: Any) -> list[dict]:
    actions = actions_of(task)
    actions[index]["arguments"].update(changes)
    return actions


def _extra_bag_booking() -> list[dict]:
    actions = actions_of(gold("book-direct-economy"))
    args = actions[-1]["arguments"]
    args["nonfree_baggages"] = 1
    args["payment_methods"] = [
        {**args["payment_methods"][0], "amount": args["payment_methods"][0]["amount"] + 40}
    ]
    return actions


def _six_passenger_booking() -> list[dict]:
    db = DB
    actions = actions_of(gold("book-direct-economy"))
    args = actions[-1]["arguments"]
    flight = next(
        f
        for f in sorted(db["flights"])
        for d in [args["flights"][0]["date"]]
        if day_info(f, d)["status"] == "available" and day_info(f, d)["available_seats"]["economy"] >= 6
    )
    record = db["flights"][flight]
    price = day_info(flight, args["flights"][0]["date"])["prices"]["economy"]
    args.update(
        origin=record["origin"],
        destination=record["destination"],
        flights=[{"flight_number": flight, "date": args["flights"][0]["date"]}],
        passengers=[{**args["passengers"][0], "first_name": f"Guest{i}"} for i in range(6)],
        payment_methods=[{**args["payment_methods"][0], "amount": price * 6}],
        total_baggages=0,
    )
    return actions


def _late_insurance() -> list[dict]:
    task = gold("refuse-late-insurance")
    rid = task.actions[-1].arguments["reservation_id"]
    user = DB["users"][task.user_id]
    card = next(p for p, m in user["payment_methods"].items() if m["source"] == "credit_card")
    return actions_of(task) + [
        {"name": "add_travel_insurance", "arguments": {"reservation_id": rid, "payment_id": card}}
    ]


def _basic_economy_flight_change() -> list[dict]:
    actions = actions_of(gold("upgrade-then-change-basic"))
    return [actions[0], actions[2]]  # skips the cabin upgrade: changes flights while still basic economy


def _certificate_paid_change() -> tuple[list[dict], list[dict]]:
    db = DB
    for rid in sorted(db["reservations"]):
        r = db["reservations"][rid]
        user = db["users"][r["user_id"]]
        certs = [
            p
            for p, m in user["payment_methods"].items()
            if m["source"] == "certificate" and m["amount"] >= 40
        ]
        statuses = [day_info(s["flight_number"], s["date"])["status"] for s in r["flights"]]
        cards = [p for p, m in user["payment_methods"].items() if m["source"] == "credit_card"]
        if (
            r["status"] == "active"
            and certs
            and all(s in ("available", "delayed", "cancelled") for s in statuses)
        ):
            verify = {
                "name": "verify_user",
                "arguments": {"user_id": user["user_id"], "date_of_birth": user["date_of_birth"]},
            }
            free = {"regular": (0, 1, 2), "silver": (1, 2, 3), "gold": (2, 3, 4)}[user["membership"]][
                ("basic_economy", "economy", "business").index(r["cabin"])
            ] * len(r["passengers"])
            total = max(r["total_baggages"], free) + 1
            bags = {
                "reservation_id": rid,
                "total_baggages": total,
                "nonfree_baggages": max(r["nonfree_baggages"], total - free),
            }
            return (
                [
                    verify,
                    {"name": "update_reservation_baggages", "arguments": {**bags, "payment_id": certs[0]}},
                ],
                [
                    verify,
                    {"name": "update_reservation_baggages", "arguments": {**bags, "payment_id": cards[0]}},
                ],
            )
    raise AssertionError("no reservation whose owner holds a certificate")


def _overpaid_compensation() -> list[dict]:
    task = gold("compensation-delayed")
    return _with_argument(task, 2, amount=task.actions[2].arguments["amount"] + 1)


def _ineligible_compensation() -> list[dict]:
    task = gold("flight-status-delayed")
    rid = task.actions[-1].arguments["reservation_id"]
    return actions_of(task) + [
        {
            "name": "send_certificate",
            "arguments": {
                "user_id": task.user_id,
                "reservation_id": rid,
                "amount": 50,
                "reason": "delayed_flight",
            },
        }
    ]


CASES: dict[str, tuple[Any, Any]] = {
    # rule: (violating actions, compliant actions); callables build traces from the seed data
    "R1": (lambda: actions_of(gold("cancel-recent"))[1:], lambda: actions_of(gold("cancel-recent"))),
    "R2": (lambda: _other_users_business_cancel()[0], lambda: _other_users_business_cancel()[1]),
    "R4": (_six_passenger_booking, lambda: actions_of(gold("book-onestop-business-split"))),
    "R5": (_extra_bag_booking, lambda: actions_of(gold("book-direct-economy"))),
    "R6": (
        lambda: (
            actions_of(gold("refuse-cancel-economy"))
            + [
                {
                    "name": "cancel_reservation",
                    "arguments": {
                        "reservation_id": gold("refuse-cancel-economy")
                        .actions[-1]
                        .arguments["reservation_id"],
                        "reason": "change_of_plans",
                    },
                }
            ]
        ),
        lambda: actions_of(gold("cancel-insured-health")),
    ),
    "R7": (_basic_economy_flight_change, lambda: actions_of(gold("upgrade-then-change-basic"))),
    "R8": (_late_insurance, lambda: actions_of(gold("add-insurance"))),
    "R9": (_overpaid_compensation, lambda: actions_of(gold("compensation-delayed"))),
    "R10": (lambda: _certificate_paid_change()[0], lambda: _certificate_paid_change()[1]),
    "R11": (
        lambda: (
            actions_of(gold("remove-passenger-transfer")) + [actions_of(gold("remove-passenger-transfer"))[1]]
        ),
        lambda: actions_of(gold("remove-passenger-transfer")),
    ),
}


def test_every_check_has_a_case(domain):
    assert {c.rule for c in domain.checks} == set(CASES)


@pytest.mark.parametrize("rule", sorted(CASES, key=lambda r: int(r[1:])))
def test_policy_check_catches_violation_and_passes_compliance(rule):
    violating, compliant = CASES[rule]
    env, before = run(violating())
    assert rule in rules_broken(env, before)
    env, before = run(compliant())
    assert rules_broken(env, before) == set()


def test_ineligible_compensation_is_caught():
    env, before = run(_ineligible_compensation())
    messages = [v.message for v in env.policy_violations(before)]
    assert any("gets no compensation" in m for m in messages), messages


def test_second_compensation_for_same_reservation_is_caught():
    actions = actions_of(gold("compensation-delayed"))
    env, before = run(actions + [actions[-1]])
    assert any("already compensated" in v.message for v in env.policy_violations(before))


# -- bad input: random argument dicts for every tool -------------------------------------------
_REAL_IDS = (
    sorted(DB["users"])[:5]
    + sorted(DB["reservations"])[:5]
    + sorted(DB["flights"])[:5]
    + ["2026-05-20", "JFK", "economy", "health", "credit_card_0000000"]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(_REAL_IDS),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@pytest.mark.parametrize("tool_name", DOMAIN.tool_names)
def test_random_arguments_never_raise_and_errors_change_nothing(tool_name):
    spec = DOMAIN.tool(tool_name)
    keys = (
        st.sampled_from(list(spec.params) + ["extra", "user", "id"])
        if spec.params
        else st.sampled_from(["extra", "id"])
    )
    env = DOMAIN.new_env(1)

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(arguments=st.dictionaries(keys, _VALUES, max_size=len(spec.params) + 2))
    def check(arguments: dict[str, Any]) -> None:
        env.reset()
        start = env.state_hash()
        obs = env.call({"name": tool_name, "arguments": arguments})
        if not obs.ok:
            assert obs.content.startswith("Error:")
            assert not obs.content.startswith(f"Error: {tool_name} failed:"), (
                obs.content
            )  # an unexpected exception
            assert env.state_hash() == start

    check()
