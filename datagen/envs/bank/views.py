"""What the bank's tools return: typed shapes (their field names feed the dependency graph) and the
views that turn database records (cents) into what the agent reads (dollars)."""

from __future__ import annotations

from typing import Any, TypedDict


class CustomerRef(TypedDict):
    customer_id: str


class VerifiedCustomer(TypedDict):
    customer_id: str
    first_name: str
    last_name: str
    verified: bool


class AccountSummary(TypedDict):
    account_id: str
    type: str
    nickname: str
    status: str


class CardSummary(TypedDict):
    card_id: str
    type: str
    last4: str
    status: str


class CustomerProfile(TypedDict):
    customer_id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    address: dict[str, str]
    tier: str
    kyc_status: str
    accounts: list[AccountSummary]
    cards: list[CardSummary]


class AccountDetails(TypedDict):
    account_id: str
    customer_id: str
    type: str
    nickname: str
    status: str
    balance: float
    credit_limit: float | None
    available: float
    daily_transfer_limit: float
    transferred_today: float
    remaining_transfer_limit_today: float


class TransactionView(TypedDict):
    transaction_id: str
    date: str
    type: str
    amount: float
    description: str
    status: str
    card_id: str | None
    payee_id: str | None
    counterparty_account_id: str | None
    dispute_id: str | None


class TransactionList(TypedDict):
    account_id: str
    transactions: list[TransactionView]


class CardDetails(TypedDict):
    card_id: str
    customer_id: str
    account_id: str
    type: str
    last4: str
    status: str
    block_reason: str | None
    daily_spend_limit: float
    expiry: str
    replaced_by: str | None


class PayeeView(TypedDict):
    payee_id: str
    name: str
    bank_name: str
    account_last4: str
    status: str
    added_date: str


class PayeeList(TypedDict):
    customer_id: str
    payees: list[PayeeView]


class DisputeView(TypedDict):
    dispute_id: str
    transaction_id: str
    card_id: str | None
    amount: float
    reason: str
    status: str
    opened_date: str


class DisputeList(TypedDict):
    customer_id: str
    disputes: list[DisputeView]


class TransferResult(TypedDict):
    transaction_id: str
    from_account_id: str
    amount: float
    status: str
    date: str
    from_account_balance: float


class CardChange(TypedDict):
    card_id: str
    status: str
    daily_spend_limit: float


class NewCard(TypedDict):
    card_id: str
    replaced_card_id: str
    last4: str
    expiry: str
    status: str


class DisputeOpened(TypedDict):
    dispute_id: str
    transaction_id: str
    amount: float
    status: str


class AccountChange(TypedDict):
    account_id: str
    status: str


def dollars(cents: int) -> float:
    return round(cents / 100, 2)


def card_view(card: dict[str, Any]) -> CardDetails:
    return {
        "card_id": card["card_id"],
        "customer_id": card["customer_id"],
        "account_id": card["account_id"],
        "type": card["type"],
        "last4": card["last4"],
        "status": card["status"],
        "block_reason": card["block_reason"],
        "daily_spend_limit": dollars(card["daily_spend_limit_cents"]),
        "expiry": card["expiry"],
        "replaced_by": card["replaced_by"],
    }


def transaction_view(txn: dict[str, Any]) -> TransactionView:
    return {
        "transaction_id": txn["transaction_id"],
        "date": txn["date"],
        "type": txn["type"],
        "amount": dollars(txn["amount_cents"]),
        "description": txn["description"],
        "status": txn["status"],
        "card_id": txn["card_id"],
        "payee_id": txn["payee_id"],
        "counterparty_account_id": txn["counterparty_account_id"],
        "dispute_id": txn["dispute_id"],
    }


def card_change(card: dict[str, Any]) -> CardChange:
    return {
        "card_id": card["card_id"],
        "status": card["status"],
        "daily_spend_limit": dollars(card["daily_spend_limit_cents"]),
    }


def payee_view(payee: dict[str, Any]) -> PayeeView:
    """A payee without its full account number, which the agent never needs to see."""
    return {
        "payee_id": payee["payee_id"],
        "name": payee["name"],
        "bank_name": payee["bank_name"],
        "account_last4": payee["account_number"][-4:],
        "status": payee["status"],
        "added_date": payee["added_date"],
    }


def dispute_view(dispute: dict[str, Any]) -> DisputeView:
    return {
        "dispute_id": dispute["dispute_id"],
        "transaction_id": dispute["transaction_id"],
        "card_id": dispute["card_id"],
        "amount": dollars(dispute["amount_cents"]),
        "reason": dispute["reason"],
        "status": dispute["status"],
        "opened_date": dispute["opened_date"],
    }


def profile_view(
    customer: dict[str, Any], accounts: list[dict[str, Any]], cards: list[dict[str, Any]]
) -> CustomerProfile:
    """A customer's profile with account and card summaries; no SSN digits, no date of birth."""
    return {
        "customer_id": customer["customer_id"],
        "first_name": customer["first_name"],
        "last_name": customer["last_name"],
        "email": customer["email"],
        "phone": customer["phone"],
        "address": customer["address"],
        "tier": customer["tier"],
        "kyc_status": customer["kyc_status"],
        "accounts": [
            {
                "account_id": a["account_id"],
                "type": a["type"],
                "nickname": a["nickname"],
                "status": a["status"],
            }
            for a in accounts
        ],
        "cards": [
            {"card_id": c["card_id"], "type": c["type"], "last4": c["last4"], "status": c["status"]}
            for c in cards
        ],
    }
