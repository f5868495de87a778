"""Money and record keeping shared by the bank's tools: amounts, lookups, new ids, postings.

Everything here raises ``ToolError`` before changing anything, or changes the store through
``edit``/``insert`` inside the tool call's transaction.
"""

from __future__ import annotations

import math
from typing import Any

from datagen.envs.bank.database import TODAY
from datagen.envs.bank.views import dollars
from datagen.envs.store import Store
from datagen.envs.tools import ToolError, whole_cents

MAX_AMOUNT_CENTS = 100_000_000  # $1,000,000: anything larger is a typo, not a request
OUTGOING_TRANSFER_TYPES = ("transfer_out", "payee_transfer")


def to_cents(amount: float, what: str = "amount") -> int:
    """Whole cents of a dollar amount (tools' ``Money`` arguments are checked the same way before the
    tool runs; this keeps direct callers to the same rule)."""
    if not math.isfinite(amount) or amount <= 0:
        raise ToolError(f"{what} must be a positive number of dollars, got {amount}")
    try:
        whole_cents(amount)
    except ValueError as exc:
        raise ToolError(f"{what} must have at most two decimal places (whole cents), got {amount}") from exc
    cents = round(amount * 100)
    if cents > MAX_AMOUNT_CENTS:
        raise ToolError(f"{what} must be at most $1,000,000, got {amount}")
    return cents


def need(db: Store, table: str, key: str, label: str) -> dict[str, Any]:
    record = db.get(table, key)
    if record is None:
        raise ToolError(
            f"no {label} with id {key!r}; check the id (ids look like the ones other tools return)"
        )
    return record


def next_id(db: Store, table: str, prefix: str) -> str:
    """A fresh id in the seed's own id space; records are never deleted, so the count is unused."""
    keys = db.keys(table)
    stem = keys[0].split("-")[0] if keys else prefix
    number = len(keys)
    while db.has(table, f"{stem}-{number:06d}"):
        number += 1
    return f"{stem}-{number:06d}"


def transferred_today_cents(db: Store, account: dict[str, Any]) -> int:
    total = 0
    for tid in account["transaction_ids"]:
        txn = db.get("transactions", tid)
        if (
            txn
            and txn["date"] == TODAY
            and txn["type"] in OUTGOING_TRANSFER_TYPES
            and txn["status"] == "posted"
        ):
            total -= txn["amount_cents"]
    return total


def available_cents(account: dict[str, Any]) -> int:
    if account["type"] == "credit_line":
        return (account["credit_limit_cents"] or 0) + account["balance_cents"]
    return account["balance_cents"]


def record_transaction(db: Store, account: dict[str, Any], **fields: Any) -> str:
    tid = next_id(db, "transactions", "TXN")
    record = {
        "transaction_id": tid,
        "account_id": account["account_id"],
        "date": TODAY,
        "status": "posted",
        "card_id": None,
        "payee_id": None,
        "counterparty_account_id": None,
        "dispute_id": None,
        **fields,
    }
    db.insert("transactions", tid, record)
    db.edit("accounts", account["account_id"])["transaction_ids"].append(tid)
    return tid


def debit(db: Store, account_id: str, cents: int) -> dict[str, Any]:
    account = need(db, "accounts", account_id, "account")
    if account["status"] == "closed":
        raise ToolError(f"account {account_id} is closed and cannot send money")
    if cents > available_cents(account):
        raise ToolError(
            f"insufficient funds: account {account_id} has ${dollars(available_cents(account)):,.2f} available, "
            f"the transfer needs ${dollars(cents):,.2f}"
        )
    edited = db.edit("accounts", account_id)
    edited["balance_cents"] -= cents
    return edited
