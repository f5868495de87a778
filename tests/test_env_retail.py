"""The retail domain: seeded data, tools, gold tasks replayed, and every policy check on both sides."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from datagen.envs.base import NativeDomain, NativeEnvironment
from datagen.envs.policy import ActionRecord
from datagen.envs.retail import load_domain
from datagen.envs.retail.database import RetailDB, build_database
from datagen.envs.selftest import check_tool_schemas, replay_task
from datagen.envs.store import canonical_json


@pytest.fixture(scope="module")
def domain() -> NativeDomain:
    return load_domain()


@pytest.fixture(scope="module")
def db() -> dict[str, Any]:
    return load_domain().database(1)


def test_same_seed_same_bytes_and_valid():
    first, second = build_database(1), build_database(1)
    assert canonical_json(first) == canonical_json(second)
    RetailDB.model_validate(first)
    assert len(first["users"]) >= 300 and len(first["orders"]) >= 300


def test_train_and_eval_seeds_share_no_entities():
    train, evals = build_database(0), build_database(1)

    def entities(data: dict[str, Any]) -> dict[str, set[str]]:
        return {
            "ids": set(data["users"])
            | set(data["orders"])
            | set(data["products"])
            | {v for p in data["products"].values() for v in p["variants"]}
            | {m for u in data["users"].values() for m in u["payment_methods"]},
            "emails": {u["email"] for u in data["users"].values()},
            "names": {f"{u['name']['first_name']} {u['name']['last_name']}" for u in data["users"].values()},
        }

    a, b = entities(train), entities(evals)
    for kind in a:
        assert not a[kind] & b[kind], f"train and eval seeds share {kind}: {sorted(a[kind] & b[kind])[:5]}"


def test_sizes_and_schemas(domain):
    assert len(domain.tools) >= 12 and len(domain.write_tools()) >= 5
    assert len(domain.checks) >= 8 and len(domain.gold_tasks) >= 20 and 3 <= len(domain.example_tasks) <= 5
    assert len(set(re.findall(r"\*\*R(\d+)\.\*\*", domain.policy))) >= 10
    cited = {c.rule for c in domain.checks}
    assert cited <= {f"R{n}" for n in re.findall(r"\*\*R(\d+)\.\*\*", domain.policy)}
    assert check_tool_schemas(domain) == []
    graph = domain.dependency_graph()
    assert "cancel_pending_order" in graph["list_user_orders"]
    assert "get_product_details" in graph["get_order_details"]


def test_examples_are_on_the_training_seed(domain):
    assert all(t.seed == domain.train_seed for t in domain.example_tasks)
    assert not {t.id for t in domain.example_tasks} & {t.id for t in domain.gold_tasks}


@pytest.mark.parametrize("index", range(len(load_domain().gold_tasks) + len(load_domain().example_tasks)))
def test_task_replays_clean(domain, index):
    tasks = domain.gold_tasks + domain.example_tasks
    task = tasks[index]
    seed = domain.eval_seed if task.seed is None else task.seed
    report = replay_task(domain, task, seed)
    assert report.failures == []


@pytest.mark.parametrize("written", ["1149.160", "$1,149.16"])
def test_envs_check_reads_expected_outputs_by_the_value_rule(domain, written: str):
    """`envs check` and Phase 2 agree on what an observation says: an expected output written another
    way ("1149.160", "$1,149.16") is said by a tool result holding 1149.16 under both (the check once
    used τ-bench's plain substring rule, and failed a task that Phase 2 verified)."""
    from apigen_rules.values import missing_outputs

    task = next(t for t in domain.gold_tasks if t.id == "retail-gold-001")
    respelled = task.model_copy(update={"outputs": [written]})
    report = replay_task(domain, respelled, domain.eval_seed)
    assert missing_outputs([written], [o.content for o in report.observations]) == []
    assert report.failures == []


def test_do_nothing_differs_from_gold_end_state(domain):
    env = domain.new_env()
    changing = [t for t in domain.gold_tasks if any(domain.tool(a.name).kind == "write" for a in t.actions)]
    unchanged = [t for t in domain.gold_tasks if t not in changing]
    assert len(unchanged) >= 3, "a few gold tasks must be refusals / read-only"
    for task in changing:
        gold_end = replay_task(domain, task, domain.eval_seed, env).end_hash
        env.reset()
        env.replay(task.actions[:1])  # identity only, then the agent does nothing
        assert env.state_hash() != gold_end, task.id


def test_failed_write_changes_nothing_and_explains(domain, db):
    env = domain.new_env()
    delivered = next(o for o in db["orders"].values() if o["status"] == "delivered")
    before = env.state_hash()
    obs = env.call(
        {
            "name": "cancel_pending_order",
            "arguments": {"order_id": delivered["order_id"], "reason": "no longer needed"},
        }
    )
    assert not obs.ok and "status is 'delivered'" in obs.content
    obs = env.call({"name": "get_order_details", "arguments": {"order_id": "W123"}})
    assert not obs.ok and "start with '#'" in obs.content
    assert env.state_hash() == before


def test_cancel_refunds_gift_card_balance(domain, db):
    order = next(
        o
        for o in db["orders"].values()
        if o["status"] == "pending" and o["payment_history"][0]["payment_method_id"].startswith("gift_card")
    )
    method = order["payment_history"][0]["payment_method_id"]
    env = domain.new_env()
    balance = db["users"][order["user_id"]]["payment_methods"][method]["balance"]
    assert env.call(
        {
            "name": "cancel_pending_order",
            "arguments": {"order_id": order["order_id"], "reason": "ordered by mistake"},
        }
    ).ok
    after = env.store.get("users", order["user_id"])["payment_methods"][method]["balance"]
    assert after == pytest.approx(balance + order["payment_history"][0]["amount"])


# -- policy checks: one violating and one compliant trace each --------------------------------------


class TraceKit:
    """Builds traces from real calls (compliant) or hand-made records (calls the tools would refuse)."""

    def __init__(self, domain: NativeDomain, db: dict[str, Any]):
        self.domain, self.db = domain, db
        self.env: NativeEnvironment = domain.new_env()
        self.before = self.env.snapshot()

    def real(self, name: str, **arguments: Any) -> ActionRecord:
        obs = self.env.call({"name": name, "arguments": arguments})
        assert obs.ok, obs.content
        return self.env.trace[-1]

    def fake(self, name: str, result: Any = None, **arguments: Any) -> ActionRecord:
        return ActionRecord(name, arguments, self.domain.tool(name).kind, True, "{}", result)

    def who(self, user_id: str) -> ActionRecord:
        return self.real("find_user_id_by_email", email=self.db["users"][user_id]["email"])

    def run(self, check: str, trace: list[ActionRecord], after: dict | None = None) -> list[str]:
        found = next(c for c in self.domain.checks if c.name == check)
        return [v.message for v in found.run(self.before, trace, after or self.env.snapshot())]

    def order(
        self, pred: Callable[[dict[str, Any]], bool], exclude_user: str | None = None
    ) -> dict[str, Any]:
        return next(o for o in self.db["orders"].values() if pred(o) and o["user_id"] != exclude_user)


@pytest.fixture()
def kit(domain, db) -> TraceKit:
    return TraceKit(domain, db)


def _status(status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda o: o["status"] == status


def _paid_by(source: str, status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda o: (
        o["status"] == status
        and len(o["payment_history"]) == 1
        and o["payment_history"][0]["payment_method_id"].startswith(source)
    )


def test_check_identity_verified_first(kit):
    order = kit.order(_status("pending"))
    cancel = kit.fake("cancel_pending_order", order_id=order["order_id"], reason="no longer needed")
    assert kit.run("identity_verified_first", [cancel])
    assert kit.run("identity_verified_first", [kit.who(order["user_id"]), cancel]) == []


def test_check_one_customer_per_conversation(kit):
    a = kit.order(_status("pending"))
    b = kit.order(_status("pending"), exclude_user=a["user_id"])
    user = kit.db["users"][a["user_id"]]
    by_zip = kit.real(
        "find_user_id_by_name_zip",
        first_name=user["name"]["first_name"],
        last_name=user["name"]["last_name"],
        zip=user["address"]["zip"],
    )
    assert kit.run("one_customer_per_conversation", [kit.who(a["user_id"]), kit.who(b["user_id"])])
    assert kit.run("one_customer_per_conversation", [kit.who(a["user_id"]), by_zip]) == []


def test_check_writes_only_for_identified_customer(kit):
    a = kit.order(_status("pending"))
    b = kit.order(_status("pending"), exclude_user=a["user_id"])
    who = kit.who(a["user_id"])
    other = kit.fake("cancel_pending_order", order_id=b["order_id"], reason="no longer needed")
    assert kit.run("writes_only_for_identified_customer", [who, other])
    own = kit.real("cancel_pending_order", order_id=a["order_id"], reason="no longer needed")
    assert kit.run("writes_only_for_identified_customer", [who, own]) == []


def test_check_reads_only_identified_customer(kit):
    a = kit.order(_status("delivered"))
    b = kit.order(_status("delivered"), exclude_user=a["user_id"])
    who = kit.who(a["user_id"])
    assert kit.run(
        "reads_only_identified_customer", [who, kit.real("get_order_details", order_id=b["order_id"])]
    )
    own = [
        who,
        kit.real("get_order_details", order_id=a["order_id"]),
        kit.real("get_product_details", product_id=b["items"][0]["product_id"]),
    ]
    assert kit.run("reads_only_identified_customer", own) == []


def test_check_pending_changes_only_when_pending(kit):
    delivered = kit.order(_status("delivered"))
    who = kit.who(delivered["user_id"])
    bad = kit.fake("modify_pending_order_payment", order_id=delivered["order_id"], payment_method_id="x")
    assert kit.run("pending_changes_only_when_pending", [who, bad])
    pending = kit.order(_status("pending"))
    cancel = kit.real("cancel_pending_order", order_id=pending["order_id"], reason="ordered by mistake")
    assert kit.run("pending_changes_only_when_pending", [kit.who(pending["user_id"]), cancel]) == []
    # the status during the trace counts: re-addressing an order this trace already cancelled is caught
    readdress = kit.fake(
        "modify_pending_order_address", order_id=pending["order_id"], **dict(pending["address"])
    )
    assert kit.run("pending_changes_only_when_pending", [cancel, readdress])


def test_check_cancellation_refunds_everything(kit):
    order = kit.order(_status("pending"))
    cancel = kit.real("cancel_pending_order", order_id=order["order_id"], reason="no longer needed")
    assert kit.run("cancellation_refunds_everything", [cancel]) == []
    unrefunded = kit.env.snapshot()
    unrefunded["orders"] = dict(unrefunded["orders"])
    unrefunded["orders"][order["order_id"]] = {
        **unrefunded["orders"][order["order_id"]],
        "payment_history": order["payment_history"],
    }
    assert kit.run("cancellation_refunds_everything", [cancel], unrefunded)
    bad_reason = kit.fake("cancel_pending_order", order_id=order["order_id"], reason="found it cheaper")
    assert kit.run("cancellation_refunds_everything", [bad_reason])


def _swappable(kit: TraceKit, status: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    for order in kit.db["orders"].values():
        if order["status"] != status or order["payment_history"][0]["payment_method_id"].startswith(
            "gift_card"
        ):
            continue
        for item in order["items"]:
            variants = kit.db["products"][item["product_id"]]["variants"].values()
            other = next(
                (v["item_id"] for v in variants if v["available"] and v["item_id"] != item["item_id"]), None
            )
            if other:
                return order, item, other
    raise AssertionError(f"no {status} order with a swappable item")


def test_check_items_modified_once(kit):
    order, item, new = _swappable(kit, "pending")
    args = {
        "order_id": order["order_id"],
        "item_ids": [item["item_id"]],
        "new_item_ids": [new],
        "payment_method_id": order["payment_history"][0]["payment_method_id"],
    }
    first = kit.real("modify_pending_order_items", **args)
    assert kit.run("items_modified_once", [first]) == []
    second = kit.fake(
        "modify_pending_order_items", **{**args, "item_ids": [new], "new_item_ids": [item["item_id"]]}
    )
    assert kit.run("items_modified_once", [first, second])


def test_check_swaps_within_same_product(kit):
    order, item, new = _swappable(kit, "delivered")
    method = order["payment_history"][0]["payment_method_id"]
    args = {"order_id": order["order_id"], "item_ids": [item["item_id"]], "payment_method_id": method}
    assert (
        kit.run(
            "swaps_within_same_product",
            [kit.real("exchange_delivered_order_items", new_item_ids=[new], **args)],
        )
        == []
    )
    foreign = next(p for pid, p in kit.db["products"].items() if pid != item["product_id"])
    wrong = kit.fake("exchange_delivered_order_items", new_item_ids=[next(iter(foreign["variants"]))], **args)
    assert kit.run("swaps_within_same_product", [wrong])


def test_check_payment_change_to_other_own_method(kit):
    order = next(
        o
        for o in kit.db["orders"].values()
        if _paid_by("credit_card", "pending")(o)
        and any(m.startswith("paypal") for m in kit.db["users"][o["user_id"]]["payment_methods"])
    )
    paypal = next(m for m in kit.db["users"][order["user_id"]]["payment_methods"] if m.startswith("paypal"))
    assert (
        kit.run(
            "payment_change_to_other_own_method",
            [kit.real("modify_pending_order_payment", order_id=order["order_id"], payment_method_id=paypal)],
        )
        == []
    )
    stranger = next(u for u in kit.db["users"].values() if u["user_id"] != order["user_id"])
    foreign = kit.fake(
        "modify_pending_order_payment",
        order_id=order["order_id"],
        payment_method_id=next(iter(stranger["payment_methods"])),
    )
    same = kit.fake(
        "modify_pending_order_payment",
        order_id=order["order_id"],
        payment_method_id=order["payment_history"][0]["payment_method_id"],
    )
    assert len(kit.run("payment_change_to_other_own_method", [foreign, same])) == 2


def test_check_one_return_or_exchange_when_delivered(kit):
    order, item, new = _swappable(kit, "delivered")
    method = order["payment_history"][0]["payment_method_id"]
    ret = kit.real(
        "return_delivered_order_items",
        order_id=order["order_id"],
        item_ids=[item["item_id"]],
        payment_method_id=method,
    )
    assert kit.run("one_return_or_exchange_when_delivered", [ret]) == []
    exchange = kit.fake(
        "exchange_delivered_order_items",
        order_id=order["order_id"],
        item_ids=[item["item_id"]],
        new_item_ids=[new],
        payment_method_id=method,
    )
    assert kit.run("one_return_or_exchange_when_delivered", [ret, exchange])


def test_check_return_refund_destination(kit):
    def two_cards(o: dict[str, Any]) -> bool:
        methods = kit.db["users"][o["user_id"]]["payment_methods"]
        return (
            o["status"] == "delivered"
            and any(m.startswith("gift_card") for m in methods)
            and sum(not m.startswith("gift_card") for m in methods) >= 2
            and not o["payment_history"][0]["payment_method_id"].startswith("gift_card")
        )

    order = kit.order(two_cards)
    methods = kit.db["users"][order["user_id"]]["payment_methods"]
    original = order["payment_history"][0]["payment_method_id"]
    elsewhere = next(m for m in methods if m != original and not m.startswith("gift_card"))
    gift = next(m for m in methods if m.startswith("gift_card"))
    items = [order["items"][0]["item_id"]]
    assert (
        kit.run(
            "return_refund_destination",
            [
                kit.real(
                    "return_delivered_order_items",
                    order_id=order["order_id"],
                    item_ids=items,
                    payment_method_id=gift,
                )
            ],
        )
        == []
    )
    wrong = kit.fake(
        "return_delivered_order_items",
        order_id=order["order_id"],
        item_ids=items,
        payment_method_id=elsewhere,
    )
    assert kit.run("return_refund_destination", [wrong])


def test_every_check_has_a_test():
    tested = {name.removeprefix("test_check_") for name in globals() if name.startswith("test_check_")}
    assert {c.name for c in load_domain().checks} == tested


def test_gift_card_must_cover_a_payment_change(domain, db):
    def short_card(order: dict[str, Any]) -> str | None:
        methods = db["users"][order["user_id"]]["payment_methods"].values()
        total = order["payment_history"][0]["amount"]
        return next(
            (m["payment_method_id"] for m in methods if m["source"] == "gift_card" and m["balance"] < total),
            None,
        )

    order = next(
        o
        for o in db["orders"].values()
        if o["status"] == "pending"
        and not o["payment_history"][0]["payment_method_id"].startswith("gift_card")
        and short_card(o)
    )
    env = domain.new_env()
    before = env.state_hash()
    args = {"order_id": order["order_id"], "payment_method_id": short_card(order)}
    obs = env.call({"name": "modify_pending_order_payment", "arguments": args})
    assert not obs.ok and "not enough to pay" in obs.content
    assert env.state_hash() == before
