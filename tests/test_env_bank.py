"""The bank domain: seeded data, tools, gold tasks replayed, and every policy check on both sides."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datagen.envs.bank import load_domain
from datagen.envs.bank.database import TODAY, BankDB, build_database
from datagen.envs.base import NativeDomain
from datagen.envs.selftest import check_tool_schemas, replay_task
from datagen.envs.store import canonical_json, state_hash_of

EVAL = 1


@pytest.fixture(scope="module")
def domain() -> NativeDomain:
    return load_domain()


@pytest.fixture(scope="module")
def db(domain) -> dict[str, Any]:
    return domain.database(EVAL)


# -- data ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def builds() -> dict[int, dict[str, Any]]:
    return {seed: build_database(seed) for seed in (0, EVAL)}


def test_same_seed_same_bytes_and_valid(builds):
    assert canonical_json(builds[EVAL]) == canonical_json(build_database(EVAL))
    BankDB.model_validate(builds[EVAL])
    assert canonical_json(builds[EVAL]) != canonical_json(builds[0])


def test_train_and_eval_seeds_share_no_entities(builds):
    def entities(data: dict[str, Any]) -> dict[str, set[str]]:
        return {
            "ids": {key for rows in data.values() for key in rows},
            "emails": {c["email"] for c in data["customers"].values()},
            "phones": {c["phone"] for c in data["customers"].values()},
            "names": {f"{c['first_name']} {c['last_name']}" for c in data["customers"].values()},
        }

    train, evals = entities(builds[0]), entities(builds[EVAL])
    for kind in train:
        shared = train[kind] & evals[kind]
        if (
            kind == "phones"
        ):  # 555 numbers can repeat by chance; identity also needs date of birth and SSN digits
            assert len(shared) <= 3, sorted(shared)
        else:
            assert not shared, f"train and eval seeds share {kind}: {sorted(shared)[:5]}"


def test_records_are_realistic_and_linked(db):
    customers, accounts, cards, transactions = (
        db[t] for t in ("customers", "accounts", "cards", "transactions")
    )
    assert len(customers) >= 300
    assert len({c["email"] for c in customers.values()}) == len(customers)
    for customer in customers.values():
        assert customer["account_ids"] and all(
            accounts[a]["customer_id"] == customer["customer_id"] for a in customer["account_ids"]
        )
        assert all(cards[k]["customer_id"] == customer["customer_id"] for k in customer["card_ids"])
        assert all(db["payees"][p]["customer_id"] == customer["customer_id"] for p in customer["payee_ids"])
    per_account = [len(a["transaction_ids"]) for a in accounts.values()]
    assert min(per_account) >= 8 and sum(per_account) / len(per_account) >= 12
    assert sum(per_account) == len(transactions)
    for account in accounts.values():
        assert all(transactions[t]["account_id"] == account["account_id"] for t in account["transaction_ids"])
        assert (
            account["balance_cents"] >= 0
            if account["type"] != "credit_line"
            else account["balance_cents"] <= 0
        )
    for dispute in db["disputes"].values():
        assert transactions[dispute["transaction_id"]]["dispute_id"] == dispute["dispute_id"]
    kinds = {t["type"] for t in transactions.values()} | {t["status"] for t in transactions.values()}
    assert {"card_purchase", "deposit", "transfer_out", "payee_transfer", "pending", "scheduled"} <= kinds
    assert any(t["date"] == TODAY and t["type"] == "transfer_out" for t in transactions.values())


def test_sizes_schemas_policy_and_graph(domain):
    assert len(domain.tools) >= 12 and len(domain.write_tools()) >= 5
    assert len(domain.checks) >= 8 and len(domain.gold_tasks) >= 20 and 3 <= len(domain.example_tasks) <= 5
    rules = set(re.findall(r"\*\*(R\d+)\.\*\*", domain.policy))
    assert len(rules) >= 10 and {c.rule for c in domain.checks} <= rules
    assert len({c.rule for c in domain.checks}) == len(domain.checks)
    assert check_tool_schemas(domain) == []
    graph = domain.dependency_graph()
    assert "verify_identity" in graph["find_customer_by_email"]
    assert "transfer_to_payee" in graph["add_payee"]
    assert "open_dispute" in graph["list_transactions"]
    assert "transfer_between_accounts" in graph["get_customer_profile"]


# -- tools ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, arguments, fragment",
    [
        (
            "transfer_between_accounts",
            {"from_account_id": "ACC1-00027", "to_account_id": "ACC1-00062", "amount": 500},
            "insufficient funds",
        ),
        (
            "transfer_between_accounts",
            {"from_account_id": "ACC1-00006", "to_account_id": "ACC1-00008", "amount": 540},
            "more than the $536.48 owed",
        ),
        (
            "transfer_between_accounts",
            {"from_account_id": "ACC1-00003", "to_account_id": "ACC1-00004", "amount": 10},
            "closed",
        ),
        (
            "transfer_between_accounts",
            {"from_account_id": "ACC1-00003", "to_account_id": "ACC1-00003", "amount": 10},
            "different",
        ),
        (
            "transfer_between_accounts",
            {"from_account_id": "ACC1-00020", "to_account_id": "ACC1-00021", "amount": 10.005},
            "two decimal places",
        ),
        (
            "transfer_to_payee",
            {"from_account_id": "ACC1-00020", "payee_id": "PAY1-00003", "amount": 10},
            "not saved by the owner",
        ),
        (
            "transfer_to_payee",
            {
                "from_account_id": "ACC1-00020",
                "payee_id": "PAY1-00011",
                "amount": 10,
                "scheduled_date": TODAY,
            },
            "after today",
        ),
        ("remove_payee", {"payee_id": "PAY1-00003"}, "cancel it before removing"),
        ("cancel_scheduled_transfer", {"transaction_id": "TXN1-000226"}, "not scheduled"),
        (
            "open_dispute",
            {"transaction_id": "TXN1-000770", "reason": "unauthorized"},
            "already has dispute DSP1-0055",
        ),
        ("open_dispute", {"transaction_id": "TXN1-000044", "reason": "unauthorized"}, "money coming in"),
        ("unblock_card", {"card_id": "CRD1-00016"}, "only blocked cards"),
        ("set_card_spending_limit", {"card_id": "CRD1-00026", "daily_limit": 500}, "lost"),
        (
            "add_payee",
            {
                "customer_id": "CUS1-0002",
                "name": "X",
                "bank_name": "Chase",
                "routing_number": "12345",
                "account_number": "48213377",
            },
            "9 digits",
        ),
        (
            "verify_identity",
            {"customer_id": "CUS1-0004", "date_of_birth": "1992-10-31", "ssn_last4": "0000"},
            "identity not verified",
        ),
        ("find_customer_by_email", {"email": "nobody@example.com"}, "no customer"),
    ],
)
def test_refused_calls_explain_and_change_nothing(domain, name, arguments, fragment):
    env = domain.new_env(EVAL)
    before = env.state_hash()
    obs = env.call({"name": name, "arguments": arguments})
    assert not obs.ok and fragment in obs.content, obs.content
    assert env.state_hash() == before


def test_transfer_moves_cents_exactly_and_diff_reads_well(domain, db):
    env = domain.new_env(EVAL)
    before = env.snapshot()
    obs = env.call(
        {
            "name": "transfer_between_accounts",
            "arguments": {"from_account_id": "ACC1-00031", "to_account_id": "ACC1-00033", "amount": 0.1},
        }
    )
    assert obs.ok and obs.result["from_account_balance"] == 7509.57
    after = env.snapshot()
    assert (
        after["accounts"]["ACC1-00031"]["balance_cents"] == db["accounts"]["ACC1-00031"]["balance_cents"] - 10
    )
    assert (
        after["accounts"]["ACC1-00033"]["balance_cents"] == db["accounts"]["ACC1-00033"]["balance_cents"] + 10
    )
    diff = env.diff(before, after)
    assert "~ accounts/ACC1-00031.balance_cents: 750967 -> 750957" in diff
    assert sum(line.startswith("+ transactions/") for line in diff) == 2
    assert env.state_hash() == state_hash_of(after)


def test_replace_card_issues_a_new_active_card(domain):
    env = domain.new_env(EVAL)
    obs = env.call({"name": "replace_card", "arguments": {"card_id": "CRD1-00018", "reason": "damaged"}})
    assert obs.ok
    new_id = obs.result["card_id"]
    card = env.store.get("cards", new_id)
    assert (
        card["status"] == "active" and card["replaces"] == "CRD1-00018" and card["account_id"] == "ACC1-00025"
    )
    assert env.store.get("cards", "CRD1-00018")["replaced_by"] == new_id
    assert new_id in env.store.get("customers", "CUS1-0015")["card_ids"]
    again = env.call({"name": "replace_card", "arguments": {"card_id": "CRD1-00018", "reason": "damaged"}})
    assert not again.ok and new_id in again.content


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "CUS1-0004",
            "ACC1-00006",
            "ACC1-00008",
            "ACC1-00046",
            "CRD1-00016",
            "CRD1-00036",
            "PAY1-00003",
            "TXN1-000226",
            "TXN1-000154",
            "2026-04-01",
            "lost",
            "unauthorized",
            "12.5",
        ]
    ),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@pytest.mark.parametrize("tool_name", [t.name for t in load_domain().tools])
def test_random_arguments_never_raise_and_errors_change_nothing(domain, tool_name):
    spec = domain.tool(tool_name)
    env = domain.new_env(EVAL)
    keys = st.sampled_from([*spec.params, "extra", "id"])

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(arguments=st.dictionaries(keys, _VALUES, max_size=len(spec.params) + 1))
    def call_once(arguments: dict[str, Any]) -> None:
        env.reset()
        before = env.state_hash()
        obs = env.call({"name": tool_name, "arguments": arguments})
        assert isinstance(obs.content, str)
        if not obs.ok:
            assert obs.content.startswith("Error:") and env.state_hash() == before
        elif spec.kind == "read":
            assert env.state_hash() == before

    call_once()


# -- gold tasks ----------------------------------------------------------------------------------
def test_tasks_are_on_their_seeds_and_start_with_identity(domain):
    assert all(t.seed == domain.eval_seed for t in domain.gold_tasks)
    assert all(t.seed == domain.train_seed for t in domain.example_tasks)
    ids = [t.id for t in domain.gold_tasks + domain.example_tasks]
    assert len(set(ids)) == len(ids)
    for task in domain.gold_tasks + domain.example_tasks:
        assert task.actions[0].name in {"find_customer_by_email", "find_customer_by_phone"}, task.id
        assert (
            task.actions[1].name == "verify_identity"
            and task.actions[1].arguments["customer_id"] == task.user_id
        )
        assert task.instruction.startswith("You are ") and " want" in task.instruction


@pytest.mark.parametrize("index", range(len(load_domain().gold_tasks) + len(load_domain().example_tasks)))
def test_task_replays_clean(domain, index):
    task = (domain.gold_tasks + domain.example_tasks)[index]
    report = replay_task(domain, task, task.seed)
    assert report.failures == []


def test_do_nothing_differs_from_gold_end_state(domain):
    env = domain.new_env(EVAL)
    changing = [t for t in domain.gold_tasks if any(domain.tool(a.name).kind == "write" for a in t.actions)]
    unchanged = [t for t in domain.gold_tasks if t not in changing]
    assert len(unchanged) >= 3 and all("No state change" in t.notes for t in unchanged)
    for task in changing:
        gold_end = replay_task(domain, task, EVAL, env).end_hash
        env.reset()
        env.replay(task.actions[:2])  # identity only, then the agent does nothing
        assert env.state_hash() != gold_end, task.id


# -- policy checks: a violating and a compliant trace each, from real calls ---------------------
def _who(db: dict[str, Any], customer_id: str) -> list[dict[str, Any]]:
    c = db["customers"][customer_id]
    return [
        {"name": "find_customer_by_email", "arguments": {"email": c["email"]}},
        {
            "name": "verify_identity",
            "arguments": {
                "customer_id": customer_id,
                "date_of_birth": c["date_of_birth"],
                "ssn_last4": c["ssn_last4"],
            },
        },
    ]


def _call(tool_name: str, /, **arguments: Any) -> dict[str, Any]:
    return {"name": tool_name, "arguments": arguments}


def _violations(domain: NativeDomain, calls: list[dict[str, Any]]) -> dict[str, list[str]]:
    env = domain.new_env(EVAL)
    before = env.snapshot()
    for call, obs in zip(calls, env.replay(calls), strict=True):
        assert obs.ok, (call, obs.content)  # the tools allow it: only the policy can object
    found: dict[str, list[str]] = {}
    for violation in env.policy_violations(before):
        found.setdefault(violation.check, []).append(violation.message)
    return found


_PAYEE = {
    "name": "Marco Diaz",
    "bank_name": "Chase",
    "routing_number": "021000021",
    "account_number": "48213377",
}
# check name -> (customer, violating calls, compliant calls); both lists follow verification of the customer.
CASES: dict[str, tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = {
    "only_the_verified_customer": (
        "CUS1-0036",
        [
            _call(
                "transfer_between_accounts",
                from_account_id="ACC1-00062",
                to_account_id="ACC1-00027",
                amount=300,
            )
        ],
        [
            _call(
                "transfer_between_accounts",
                from_account_id="ACC1-00062",
                to_account_id="ACC1-00063",
                amount=300,
            )
        ],
    ),
    "kyc_needed_for_payees": (
        "CUS1-0021",
        [_call("add_payee", customer_id="CUS1-0021", **_PAYEE)],
        [
            _call(
                "transfer_between_accounts",
                from_account_id="ACC1-00035",
                to_account_id="ACC1-00036",
                amount=1000,
            )
        ],
    ),
    "daily_transfer_limit": (
        "CUS1-0010",
        [
            _call(
                "transfer_between_accounts",
                from_account_id="ACC1-00017",
                to_account_id="ACC1-00018",
                amount=1000,
            ),
            _call(
                "transfer_between_accounts",
                from_account_id="ACC1-00017",
                to_account_id="ACC1-00018",
                amount=198.01,
            ),
        ],
        [
            _call(
                "transfer_between_accounts",
                from_account_id="ACC1-00017",
                to_account_id="ACC1-00018",
                amount=1000,
            ),
            _call(
                "transfer_between_accounts",
                from_account_id="ACC1-00017",
                to_account_id="ACC1-00018",
                amount=198,
            ),
            _call(
                "transfer_between_accounts",
                from_account_id="ACC1-00018",
                to_account_id="ACC1-00017",
                amount=1500,
            ),
        ],
    ),
    "frozen_accounts_do_not_send": (
        "CUS1-0044",
        [
            _call("freeze_account", account_id="ACC1-00078"),
            _call(
                "transfer_between_accounts",
                from_account_id="ACC1-00078",
                to_account_id="ACC1-00079",
                amount=50,
            ),
        ],
        [
            _call("freeze_account", account_id="ACC1-00078"),
            _call(
                "transfer_between_accounts",
                from_account_id="ACC1-00079",
                to_account_id="ACC1-00078",
                amount=50,
            ),
        ],
    ),
    "no_money_out_of_credit_lines": (
        "CUS1-0027",
        [
            _call(
                "transfer_between_accounts",
                from_account_id="ACC1-00046",
                to_account_id="ACC1-00045",
                amount=500,
            )
        ],
        [
            _call(
                "transfer_between_accounts",
                from_account_id="ACC1-00045",
                to_account_id="ACC1-00046",
                amount=300,
            )
        ],
    ),
    "new_payee_cap": (
        "CUS1-0002",
        [
            _call("add_payee", customer_id="CUS1-0002", **_PAYEE),
            _call("transfer_to_payee", from_account_id="ACC1-00003", payee_id="PAY1-000566", amount=300),
            _call(
                "transfer_to_payee",
                from_account_id="ACC1-00003",
                payee_id="PAY1-000566",
                amount=250,
                scheduled_date="2026-03-20",
            ),
        ],
        [
            _call("add_payee", customer_id="CUS1-0002", **_PAYEE),
            _call("transfer_to_payee", from_account_id="ACC1-00003", payee_id="PAY1-000566", amount=500),
            _call("transfer_to_payee", from_account_id="ACC1-00003", payee_id="PAY1-00000", amount=300),
        ],
    ),
    "report_lost_before_replacing": (
        "CUS1-0013",
        [_call("replace_card", card_id="CRD1-00016", reason="stolen")],
        [
            _call("report_card_lost", card_id="CRD1-00016"),
            _call("replace_card", card_id="CRD1-00016", reason="stolen"),
        ],
    ),
    "fraud_blocks_stay": (
        "CUS1-0028",
        [_call("unblock_card", card_id="CRD1-00036")],
        [_call("block_card", card_id="CRD1-00037"), _call("unblock_card", card_id="CRD1-00037")],
    ),
    "card_limit_within_tier": (
        "CUS1-0012",
        [_call("set_card_spending_limit", card_id="CRD1-00015", daily_limit=2500.01)],
        [_call("set_card_spending_limit", card_id="CRD1-00015", daily_limit=2500)],
    ),
    "disputes_only_for_posted_purchases": (
        "CUS1-0008",
        [
            _call("open_dispute", transaction_id="TXN1-000225", reason="incorrect_amount"),  # still pending
            _call("open_dispute", transaction_id="TXN1-000230", reason="unauthorized"),  # a payee transfer
        ],
        [_call("open_dispute", transaction_id="TXN1-000226", reason="item_not_received")],
    ),
    "disputes_within_window": (
        "CUS1-0046",
        [_call("open_dispute", transaction_id="TXN1-001337", reason="duplicate_charge")],  # dated 61 days ago
        [_call("open_dispute", transaction_id="TXN1-001339", reason="duplicate_charge")],  # dated 60 days ago
    ),
}


# Paying another customer's account also touches records of someone never verified.
ALSO_FIRES = {"only_the_verified_customer": {"identity_verified_first"}}


@pytest.mark.parametrize("check", sorted(CASES))
def test_check_catches_violation_and_passes_compliance(domain, db, check):
    customer, violating, compliant = CASES[check]
    found = _violations(domain, _who(db, customer) + violating)
    assert found.get(check), f"{check} missed the violation; fired instead: {found}"
    assert set(found) == {check} | ALSO_FIRES.get(check, set()), f"only {check} should fire, got {found}"
    assert _violations(domain, _who(db, customer) + compliant) == {}


def test_check_identity_verified_first(domain, db):
    lookup = _who(db, "CUS1-0004")
    reads = [_call("get_account", account_id="ACC1-00006"), _call("list_payees", customer_id="CUS1-0004")]
    found = _violations(domain, lookup[:1] + reads)
    assert len(found.get("identity_verified_first", [])) == 2
    assert _violations(domain, lookup + reads) == {}
    failed = {**lookup[1], "arguments": {**lookup[1]["arguments"], "ssn_last4": "0000"}}
    env = domain.new_env(EVAL)
    before = env.snapshot()
    env.replay([lookup[0], failed, reads[0]])
    assert [v.check for v in env.policy_violations(before)] == ["identity_verified_first"]


def test_check_second_verified_customer_is_not_served(domain, db):
    calls = _who(db, "CUS1-0004") + _who(db, "CUS1-0005") + [_call("get_account", account_id="ACC1-00009")]
    assert set(_violations(domain, calls)) == {"only_the_verified_customer"}


def test_every_check_has_a_test(domain):
    tested = set(CASES) | {"identity_verified_first"}
    assert {c.name for c in domain.checks} == tested
