"""Policy checks for the bank: each enforces one numbered rule of ``policy.md`` over (before, trace, after).

Only successful calls count: a refused call changed nothing. The state a rule needs "at the time of
the call" (a card's status, an account's status) is the state before the conversation updated by
the successful calls earlier in the trace.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from datagen.envs.bank.database import CARD_LIMIT_BOUNDS_CENTS, TODAY, TODAY_DATE
from datagen.envs.policy import ActionRecord, policy_check
from datagen.envs.store import Tables

IDENTITY_TOOLS = frozenset({"find_customer_by_email", "find_customer_by_phone", "verify_identity"})
TRANSFER_TOOLS = frozenset({"transfer_between_accounts", "transfer_to_payee"})
PAYEE_CAP_CENTS = 50_000
DISPUTE_WINDOW_DAYS = 60
_ACCOUNT_ARGS = ("account_id", "from_account_id", "to_account_id")


def _cents(amount: Any) -> int:
    return round(float(amount) * 100)


def _record(before: Tables, after: Tables, table: str, key: Any) -> dict[str, Any] | None:
    """The record as it was before the conversation, or as created during it."""
    if not isinstance(key, str):
        return None
    return before.get(table, {}).get(key) or after.get(table, {}).get(key)


def owners_of(action: ActionRecord, before: Tables, after: Tables) -> set[str]:
    """The customers whose records a call refers to, through any id among its arguments."""
    args = action.arguments
    owners: set[str] = set()
    if isinstance(args.get("customer_id"), str):
        owners.add(args["customer_id"])
    for name in _ACCOUNT_ARGS:
        account = _record(before, after, "accounts", args.get(name))
        if account:
            owners.add(account["customer_id"])
    for name, table in (("card_id", "cards"), ("payee_id", "payees")):
        found = _record(before, after, table, args.get(name))
        if found:
            owners.add(found["customer_id"])
    txn = _record(before, after, "transactions", args.get("transaction_id"))
    if txn:
        account = _record(before, after, "accounts", txn["account_id"])
        if account:
            owners.add(account["customer_id"])
    return owners


def _ok(trace: Sequence[ActionRecord], names: Iterable[str]) -> list[ActionRecord]:
    wanted = set(names)
    return [a for a in trace if a.ok and a.name in wanted]


def _customer_actions(trace: Sequence[ActionRecord]) -> list[tuple[int, ActionRecord]]:
    return [(i, a) for i, a in enumerate(trace) if a.ok and a.name not in IDENTITY_TOOLS]


def _source_owner(action: ActionRecord, before: Tables, after: Tables) -> dict[str, Any] | None:
    account = _record(before, after, "accounts", action.arguments.get("from_account_id"))
    return _record(before, after, "customers", account["customer_id"]) if account else None


@policy_check("R1", "Verify identity with verify_identity before reading or changing a customer's records.")
def identity_verified_first(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    verified: set[str] = set()
    problems = []
    for action in trace:
        if action.name == "verify_identity" and action.ok and isinstance(action.result, dict):
            verified.add(action.result.get("customer_id"))
            continue
        if not action.ok or action.name in IDENTITY_TOOLS:
            continue
        missing = owners_of(action, before, after) - verified
        if missing:
            problems.append(
                f"{action.name} touched records of {sorted(missing)} before verifying their identity"
            )
    return problems


@policy_check(
    "R2", "Act only on the verified customer's own records; both ends of an internal transfer are theirs."
)
def only_the_verified_customer(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    first = next(
        (
            a.result.get("customer_id")
            for a in trace
            if a.name == "verify_identity" and a.ok and isinstance(a.result, dict)
        ),
        None,
    )
    if first is None:
        return []
    problems = []
    for _, action in _customer_actions(trace):
        others = owners_of(action, before, after) - {first}
        if others:
            problems.append(
                f"{action.name} touched records of {sorted(others)}, not of the verified customer {first}"
            )
    return problems


@policy_check("R3", "Customers whose KYC status is not verified may not add payees or send money to payees.")
def kyc_needed_for_payees(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    problems = []
    for action in _ok(trace, {"add_payee", "transfer_to_payee"}):
        if action.name == "add_payee":
            customer = _record(before, after, "customers", action.arguments.get("customer_id"))
        else:
            customer = _source_owner(action, before, after)
        if customer and customer["kyc_status"] != "verified":
            problems.append(
                f"{action.name} for {customer['customer_id']} whose KYC status is {customer['kyc_status']}"
            )
    return problems


@policy_check("R4", "Money sent out of an account today must not exceed its daily transfer limit.")
def daily_transfer_limit(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    sent: dict[str, int] = {}
    problems = []
    for action in _ok(trace, TRANSFER_TOOLS):
        if action.arguments.get("scheduled_date") is not None:
            continue
        aid = action.arguments.get("from_account_id")
        account = _record(before, after, "accounts", aid)
        if account is None:
            continue
        if aid not in sent:
            history = (before["transactions"].get(t) for t in account["transaction_ids"])
            sent[aid] = -sum(
                t["amount_cents"]
                for t in history
                if t
                and t["date"] == TODAY
                and t["status"] == "posted"
                and t["type"] in ("transfer_out", "payee_transfer")
            )
        sent[aid] += _cents(action.arguments["amount"])
        if sent[aid] > account["daily_transfer_limit_cents"]:
            problems.append(
                f"{aid} has sent ${sent[aid] / 100:,.2f} today, over its daily limit of "
                f"${account['daily_transfer_limit_cents'] / 100:,.2f}"
            )
    return problems


@policy_check("R5", "A frozen account cannot send money, now or scheduled.")
def frozen_accounts_do_not_send(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    frozen = {aid for aid, a in before["accounts"].items() if a["status"] == "frozen"}
    problems = []
    for action in trace:
        if not action.ok:
            continue
        if action.name == "freeze_account":
            frozen.add(action.arguments.get("account_id"))
        elif action.name in TRANSFER_TOOLS and action.arguments.get("from_account_id") in frozen:
            problems.append(
                f"{action.name} sent money from frozen account {action.arguments['from_account_id']}"
            )
    return problems


@policy_check("R6", "Never transfer money out of a credit line.")
def no_money_out_of_credit_lines(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    problems = []
    for action in _ok(trace, TRANSFER_TOOLS):
        account = _record(before, after, "accounts", action.arguments.get("from_account_id"))
        if account and account["type"] == "credit_line":
            problems.append(f"{action.name} moved money out of credit line {account['account_id']}")
    return problems


@policy_check("R7", "At most $500 in total may be sent to a payee in the conversation that added it.")
def new_payee_cap(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    new_payees = {a.result.get("payee_id") for a in _ok(trace, {"add_payee"}) if isinstance(a.result, dict)}
    totals: dict[str, int] = {}
    for action in _ok(trace, {"transfer_to_payee"}):
        pid = action.arguments.get("payee_id")
        if pid in new_payees:
            totals[pid] = totals.get(pid, 0) + _cents(action.arguments["amount"])
    return [
        f"${total / 100:,.2f} sent to payee {pid} added in this conversation (cap $500.00)"
        for pid, total in sorted(totals.items())
        if total > PAYEE_CAP_CENTS
    ]


def _card_states(before: Tables) -> dict[str, tuple[str, str | None]]:
    return {cid: (c["status"], c["block_reason"]) for cid, c in before["cards"].items()}


@policy_check("R8", "A lost or stolen card is reported lost before it is replaced.")
def report_lost_before_replacing(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    states = _card_states(before)
    problems = []
    for action in trace:
        if not action.ok:
            continue
        card_id = action.arguments.get("card_id")
        if action.name == "report_card_lost":
            states[card_id] = ("lost", states.get(card_id, ("", None))[1])
        elif action.name == "replace_card" and action.arguments.get("reason") in ("lost", "stolen"):
            status = states.get(card_id, ("", None))[0]
            if status != "lost":
                problems.append(
                    f"card {card_id} was replaced as {action.arguments['reason']} while {status}, "
                    "without being reported lost first"
                )
    return problems


@policy_check("R9", "A card blocked for fraud review is never unblocked by the agent.")
def fraud_blocks_stay(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    states = _card_states(before)
    problems = []
    for action in trace:
        if not action.ok:
            continue
        card_id = action.arguments.get("card_id")
        if action.name == "block_card":
            states[card_id] = ("blocked", "customer_request")
        elif action.name == "unblock_card":
            if states.get(card_id, ("", None))[1] == "fraud_review":
                problems.append(f"card {card_id} was unblocked while held for fraud review")
            states[card_id] = ("active", None)
    return problems


@policy_check("R10", "A card's daily spending limit stays within the bounds of the customer's tier.")
def card_limit_within_tier(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    problems = []
    for action in _ok(trace, {"set_card_spending_limit"}):
        card = _record(before, after, "cards", action.arguments.get("card_id"))
        customer = _record(before, after, "customers", card["customer_id"]) if card else None
        if customer is None:
            continue
        low, high = CARD_LIMIT_BOUNDS_CENTS[customer["tier"]]
        cents = _cents(action.arguments["daily_limit"])
        if not low <= cents <= high:
            problems.append(
                f"card {card['card_id']} limit set to ${cents / 100:,.2f}; a {customer['tier']} customer's "
                f"bounds are ${low / 100:,.2f} to ${high / 100:,.2f}"
            )
    return problems


def _disputed(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[dict[str, Any]]:
    found = (
        _record(before, after, "transactions", a.arguments.get("transaction_id"))
        for a in _ok(trace, {"open_dispute"})
    )
    return [t for t in found if t]


@policy_check("R11", "Only posted card purchases can be disputed.")
def disputes_only_for_posted_purchases(
    before: Tables, trace: Sequence[ActionRecord], after: Tables
) -> list[str]:
    return [
        f"dispute opened on {t['transaction_id']}, a {t['status']} {t['type']}"
        for t in _disputed(before, trace, after)
        if t["type"] != "card_purchase" or t["status"] != "posted"
    ]


@policy_check("R12", "A purchase can be disputed only within 60 days of its date.")
def disputes_within_window(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    earliest = (TODAY_DATE - dt.timedelta(days=DISPUTE_WINDOW_DAYS)).isoformat()
    return [
        f"dispute opened on {t['transaction_id']} dated {t['date']}, before the window starting {earliest}"
        for t in _disputed(before, trace, after)
        if t["date"] < earliest
    ]
