"""Policy checks of the retail store, one per enforceable rule of policy.md (R4 and R12 concern the
conversation itself and are judged by reviewers, not here).

Checks read only the trace and the two states, so they also judge traces the tools would refuse
(a check is a second line of defence, and is tested on hand-made violating traces).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from datagen.envs.policy import ActionRecord, policy_check
from datagen.envs.store import Tables

IDENTITY_TOOLS = frozenset({"find_user_id_by_email", "find_user_id_by_name_zip"})
ACCOUNT_READS = frozenset({"get_user_details", "list_user_orders", "get_order_details"})
PENDING = ("pending", "pending (items modified)")
NEXT_STATUS = {
    "cancel_pending_order": "cancelled",
    "modify_pending_order_items": "pending (items modified)",
    "return_delivered_order_items": "return requested",
    "exchange_delivered_order_items": "exchange requested",
}


def _ok(trace: Sequence[ActionRecord]) -> Iterator[tuple[int, ActionRecord]]:
    return ((i, a) for i, a in enumerate(trace) if a.ok)


def _identified(trace: Sequence[ActionRecord], upto: int | None = None) -> list[str]:
    """User ids returned by successful identity calls (in order) before position ``upto``."""
    found = []
    for _, action in _ok(trace[:upto]):
        if action.name in IDENTITY_TOOLS and isinstance(action.result, dict) and "user_id" in action.result:
            found.append(action.result["user_id"])
    return found


def _owner(state: Tables, action: ActionRecord) -> str | None:
    """The customer whose records a call reads or changes (None if it names no such record)."""
    args = action.arguments
    if isinstance(args.get("user_id"), str):
        return args["user_id"]
    order = (
        state.get("orders", {}).get(args.get("order_id")) if isinstance(args.get("order_id"), str) else None
    )
    return order["user_id"] if order else None


def _order_statuses(
    before: Tables, trace: Sequence[ActionRecord]
) -> Iterator[tuple[ActionRecord, str | None]]:
    """Each successful call with the status its order had just before it ran."""
    status: dict[str, str] = {}
    for _, action in _ok(trace):
        order_id = action.arguments.get("order_id")
        if not isinstance(order_id, str):
            continue
        order = before.get("orders", {}).get(order_id)
        current = status.get(order_id, order["status"] if order else None)
        yield action, current
        if action.kind == "write" and action.name in NEXT_STATUS:
            status[order_id] = NEXT_STATUS[action.name]


def _user_methods(state: Tables, user_id: str | None) -> dict[str, Any]:
    user = state.get("users", {}).get(user_id) if user_id else None
    return user["payment_methods"] if user else {}


def _writes(trace: Sequence[ActionRecord]) -> Iterator[tuple[int, ActionRecord]]:
    return ((i, a) for i, a in _ok(trace) if a.kind == "write")


@policy_check(
    "R1", "Verify the customer's identity (e-mail, or name and zip) before reading or changing their account."
)
def identity_verified_first(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    problems = []
    for i, action in _ok(trace):
        if (action.kind == "write" or action.name in ACCOUNT_READS) and not _identified(trace, i):
            problems.append(f"call {i} ({action.name}) came before any successful identity verification")
    return problems


@policy_check("R1", "Serve one customer per conversation.")
def one_customer_per_conversation(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    users = list(dict.fromkeys(_identified(trace)))
    return [f"identified {len(users)} different customers: {users}"] if len(users) > 1 else []


@policy_check("R2", "Change only the identified customer's own orders and profile.")
def writes_only_for_identified_customer(
    before: Tables, trace: Sequence[ActionRecord], after: Tables
) -> list[str]:
    identified = _identified(trace)
    if not identified:
        return []  # identity_verified_first reports writes without identification
    problems = []
    for i, action in _writes(trace):
        owner = _owner(before, action)
        if owner != identified[0]:
            problems.append(f"call {i} ({action.name}) changed records of {owner}, not of {identified[0]}")
    return problems


@policy_check("R3", "Read only the identified customer's profile and orders.")
def reads_only_identified_customer(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    problems = []
    for i, action in _ok(trace):
        identified = _identified(trace, i)
        if action.name in ACCOUNT_READS and identified:
            owner = _owner(before, action)
            if owner != identified[0]:
                problems.append(f"call {i} ({action.name}) read records of {owner}, not of {identified[0]}")
    return problems


@policy_check("R5", "Cancel, re-address or re-pay only orders that are pending.")
def pending_changes_only_when_pending(
    before: Tables, trace: Sequence[ActionRecord], after: Tables
) -> list[str]:
    names = {"cancel_pending_order", "modify_pending_order_address", "modify_pending_order_payment"}
    return [
        f"{action.name} on {action.arguments.get('order_id')} whose status was {status!r}"
        for action, status in _order_statuses(before, trace)
        if action.kind == "write" and action.name in names and status not in PENDING
    ]


@policy_check("R6", "A cancellation has an allowed reason and refunds everything to the method that paid it.")
def cancellation_refunds_everything(
    before: Tables, trace: Sequence[ActionRecord], after: Tables
) -> list[str]:
    problems = []
    for i, action in _writes(trace):
        if action.name != "cancel_pending_order":
            continue
        order_id = action.arguments.get("order_id")
        if action.arguments.get("reason") not in ("no longer needed", "ordered by mistake"):
            problems.append(f"call {i} cancelled {order_id} with reason {action.arguments.get('reason')!r}")
        order = after.get("orders", {}).get(order_id)
        if order is None:
            continue
        net: Counter[str] = Counter()
        for entry in order["payment_history"]:
            net[entry["payment_method_id"]] += entry["amount"] * (
                1 if entry["transaction_type"] == "payment" else -1
            )
        unrefunded = {m: round(v, 2) for m, v in net.items() if abs(v) > 0.005}
        if unrefunded:
            problems.append(f"cancelled order {order_id} is not refunded to its paying methods: {unrefunded}")
    return problems


@policy_check("R7", "Modify a pending order's items once, while its status is exactly 'pending'.")
def items_modified_once(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    return [
        f"modify_pending_order_items on {action.arguments.get('order_id')} whose status was {status!r}"
        for action, status in _order_statuses(before, trace)
        if action.kind == "write" and action.name == "modify_pending_order_items" and status != "pending"
    ]


@policy_check(
    "R8", "Swap items only for available variants of the same product, paid with the customer's own method."
)
def swaps_within_same_product(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    problems = []
    for i, action in _writes(trace):
        if action.name not in ("modify_pending_order_items", "exchange_delivered_order_items"):
            continue
        order = before.get("orders", {}).get(action.arguments.get("order_id"))
        if order is None:
            continue
        product_of = {item["item_id"]: item["product_id"] for item in order["items"]}
        old_ids, new_ids = action.arguments.get("item_ids") or [], action.arguments.get("new_item_ids") or []
        for old_id, new_id in zip(old_ids, new_ids, strict=False):
            product = before.get("products", {}).get(product_of.get(old_id))
            variant = product["variants"].get(new_id) if product else None
            if variant is None or not variant["available"]:
                problems.append(
                    f"call {i} swapped {old_id} for {new_id}, not an available variant of the same product"
                )
        if action.arguments.get("payment_method_id") not in _user_methods(before, order["user_id"]):
            problems.append(
                f"call {i} used payment method {action.arguments.get('payment_method_id')!r} not of {order['user_id']}"
            )
    return problems


@policy_check("R9", "A payment change moves the payment to a different method of the same customer.")
def payment_change_to_other_own_method(
    before: Tables, trace: Sequence[ActionRecord], after: Tables
) -> list[str]:
    problems = []
    for i, action in _writes(trace):
        if action.name != "modify_pending_order_payment":
            continue
        order = before.get("orders", {}).get(action.arguments.get("order_id"))
        if order is None:
            continue
        method = action.arguments.get("payment_method_id")
        if method not in _user_methods(before, order["user_id"]):
            problems.append(f"call {i} moved payment to {method!r}, not a method of {order['user_id']}")
        if method == order["payment_history"][0]["payment_method_id"] and len(order["payment_history"]) == 1:
            problems.append(f"call {i} moved payment to the method that already pays it ({method})")
    return problems


@policy_check("R10", "Return or exchange only delivered orders, at most one request per order.")
def one_return_or_exchange_when_delivered(
    before: Tables, trace: Sequence[ActionRecord], after: Tables
) -> list[str]:
    names = ("return_delivered_order_items", "exchange_delivered_order_items")
    return [
        f"{action.name} on {action.arguments.get('order_id')} whose status was {status!r}"
        for action, status in _order_statuses(before, trace)
        if action.kind == "write" and action.name in names and status != "delivered"
    ]


@policy_check("R11", "Return refunds go to the original payment method or one of the customer's gift cards.")
def return_refund_destination(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    problems = []
    for i, action in _writes(trace):
        if action.name != "return_delivered_order_items":
            continue
        order = before.get("orders", {}).get(action.arguments.get("order_id"))
        if order is None:
            continue
        method_id = action.arguments.get("payment_method_id")
        method = _user_methods(before, order["user_id"]).get(method_id)
        original = order["payment_history"][0]["payment_method_id"]
        if method_id != original and (method is None or method["source"] != "gift_card"):
            problems.append(
                f"call {i} refunds to {method_id!r}; expected {original} or a gift card of the customer"
            )
    return problems
