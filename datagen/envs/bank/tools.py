"""The bank's tools: what an agent at a retail bank's help desk can look up and do.

Tools enforce what the bank's systems enforce (records exist, closed things stay closed, money on
hand, valid states); the business rules an agent must follow on top (identity first, limits, tiers,
dispute windows) are in ``policy.md`` and checked by ``checks.py``. Amounts go in and out in
dollars; the database keeps integer cents.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Literal

from datagen.envs.bank.database import TODAY, TODAY_DATE, DisputeReason, TransactionType
from datagen.envs.bank.ledger import (
    available_cents,
    debit,
    need,
    next_id,
    record_transaction,
    to_cents,
    transferred_today_cents,
)
from datagen.envs.bank.views import (
    AccountChange,
    AccountDetails,
    CardChange,
    CardDetails,
    CustomerProfile,
    CustomerRef,
    DisputeList,
    DisputeOpened,
    NewCard,
    PayeeList,
    PayeeView,
    TransactionList,
    TransactionView,
    TransferResult,
    VerifiedCustomer,
    card_change,
    card_view,
    dispute_view,
    dollars,
    payee_view,
    profile_view,
    transaction_view,
)
from datagen.envs.store import Store
from datagen.envs.tools import Money, ToolError, tool

MAX_CARD_LIMIT_CENTS = 2_500_000  # the card system's own ceiling; policy sets lower ones per tier
SCHEDULE_HORIZON_DAYS = 90


# -- identity ------------------------------------------------------------------------------------
@tool("read")
def find_customer_by_email(db: Store, email: str) -> CustomerRef:
    """Find a customer's id from the email address on file. Finding a customer does not verify them.

    Args:
        email: The customer's email address, such as "jane.doe1042@example.com".
    """
    wanted = email.strip().lower()
    for customer in db.scan("customers", lambda c: c["email"].lower() == wanted):
        return {"customer_id": customer["customer_id"]}
    raise ToolError(
        f"no customer has the email {email!r}; ask the customer to check it or give their phone number"
    )


@tool("read")
def find_customer_by_phone(db: Store, phone: str) -> CustomerRef:
    """Find a customer's id from the phone number on file. Finding a customer does not verify them.

    Args:
        phone: The customer's phone number, such as "415-555-0134"; punctuation is ignored.
    """
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) < 7:
        raise ToolError(f"phone must contain at least 7 digits, got {phone!r}")
    found = db.scan("customers", lambda c: "".join(ch for ch in c["phone"] if ch.isdigit()) == digits)
    if not found:
        raise ToolError(f"no customer has the phone number {phone!r}; ask for the email address instead")
    if len(found) > 1:
        raise ToolError(
            f"several customers share the phone number {phone!r}; ask for the email address instead"
        )
    return {"customer_id": found[0]["customer_id"]}


@tool("read")
def verify_identity(db: Store, customer_id: str, date_of_birth: str, ssn_last4: str) -> VerifiedCustomer:
    """Verify that the person you are talking to is the customer, by date of birth and the last four SSN digits.

    Args:
        customer_id: The customer's id, from find_customer_by_email or find_customer_by_phone.
        date_of_birth: The date of birth the person gives, as YYYY-MM-DD.
        ssn_last4: The last four digits of the Social Security number the person gives.
    """
    customer = need(db, "customers", customer_id, "customer")
    try:
        dt.date.fromisoformat(date_of_birth)
    except ValueError:
        raise ToolError(f"date_of_birth must be a date as YYYY-MM-DD, got {date_of_birth!r}") from None
    if customer["date_of_birth"] != date_of_birth or customer["ssn_last4"] != ssn_last4.strip():
        raise ToolError(
            f"identity not verified: the date of birth or SSN digits do not match our records for {customer_id}"
        )
    return {
        "customer_id": customer_id,
        "first_name": customer["first_name"],
        "last_name": customer["last_name"],
        "verified": True,
    }


# -- reading -------------------------------------------------------------------------------------
@tool("read", produces={"from_account_id", "to_account_id"})
def get_customer_profile(db: Store, customer_id: str) -> CustomerProfile:
    """Get a customer's contact details, tier, KYC status, accounts and cards.

    Args:
        customer_id: The customer's id.
    """
    customer = need(db, "customers", customer_id, "customer")
    accounts = [db.get("accounts", a) for a in customer["account_ids"]]
    cards = [db.get("cards", c) for c in customer["card_ids"]]
    return profile_view(customer, [a for a in accounts if a], [c for c in cards if c])


@tool("read", produces={"from_account_id"})
def get_account(db: Store, account_id: str) -> AccountDetails:
    """Get an account's balance, status and how much of today's transfer limit is left.

    Args:
        account_id: The account's id.
    """
    account = need(db, "accounts", account_id, "account")
    sent = transferred_today_cents(db, account)
    limit = account["daily_transfer_limit_cents"]
    credit = account["credit_limit_cents"]
    return {
        "account_id": account_id,
        "customer_id": account["customer_id"],
        "type": account["type"],
        "nickname": account["nickname"],
        "status": account["status"],
        "balance": dollars(account["balance_cents"]),
        "credit_limit": None if credit is None else dollars(credit),
        "available": dollars(available_cents(account)),
        "daily_transfer_limit": dollars(limit),
        "transferred_today": dollars(sent),
        "remaining_transfer_limit_today": dollars(max(0, limit - sent)),
    }


@tool("read")
def list_transactions(
    db: Store, account_id: str, transaction_type: TransactionType | None = None, since_date: str | None = None
) -> TransactionList:
    """List an account's transactions, newest first, optionally only one type or only on or after a date.

    Args:
        account_id: The account's id.
        transaction_type: Only transactions of this type (card_purchase, deposit, transfer_in, transfer_out,
            payee_transfer, atm_withdrawal, interest, fee).
        since_date: Only transactions dated on or after this day, as YYYY-MM-DD.
    """
    account = need(db, "accounts", account_id, "account")
    if since_date is not None:
        try:
            dt.date.fromisoformat(since_date)
        except ValueError:
            raise ToolError(f"since_date must be a date as YYYY-MM-DD, got {since_date!r}") from None
    rows = [db.get("transactions", t) for t in account["transaction_ids"]]
    chosen = [
        t
        for t in rows
        if t
        and (transaction_type is None or t["type"] == transaction_type)
        and (since_date is None or t["date"] >= since_date)
    ]
    chosen.sort(key=lambda t: (t["date"], t["transaction_id"]), reverse=True)
    return {"account_id": account_id, "transactions": [transaction_view(t) for t in chosen]}


@tool("read")
def get_card(db: Store, card_id: str) -> CardDetails:
    """Get a card's status, spending limit, linked account and, if it was replaced, its replacement.

    Args:
        card_id: The card's id (not the card number).
    """
    return card_view(need(db, "cards", card_id, "card"))


@tool("read")
def list_payees(db: Store, customer_id: str) -> PayeeList:
    """List the external payees a customer has saved, including removed ones.

    Args:
        customer_id: The customer's id.
    """
    customer = need(db, "customers", customer_id, "customer")
    payees = [db.get("payees", p) for p in customer["payee_ids"]]
    return {"customer_id": customer_id, "payees": [payee_view(p) for p in payees if p]}


@tool("read")
def list_disputes(db: Store, customer_id: str) -> DisputeList:
    """List the card-transaction disputes a customer has opened, with their status.

    Args:
        customer_id: The customer's id.
    """
    need(db, "customers", customer_id, "customer")
    found = sorted(db.find("disputes", customer_id=customer_id), key=lambda d: d["dispute_id"])
    return {"customer_id": customer_id, "disputes": [dispute_view(d) for d in found]}


# -- moving money --------------------------------------------------------------------------------
@tool("write")
def transfer_between_accounts(
    db: Store, from_account_id: str, to_account_id: str, amount: Money
) -> TransferResult:
    """Move money now from one account to another account at this bank (a payment when the target is a credit line).

    Args:
        from_account_id: The account the money leaves.
        to_account_id: The account the money goes to.
        amount: Dollars to move, with at most two decimals, such as 250.75.
    """
    cents = to_cents(amount)
    if from_account_id == to_account_id:
        raise ToolError("from_account_id and to_account_id must be different accounts")
    target = need(db, "accounts", to_account_id, "account")
    if target["status"] == "closed":
        raise ToolError(f"account {to_account_id} is closed and cannot receive money")
    if target["type"] == "credit_line" and target["balance_cents"] + cents > 0:
        raise ToolError(
            f"the payment of ${dollars(cents):,.2f} is more than the ${dollars(-target['balance_cents']):,.2f} "
            f"owed on credit line {to_account_id}"
        )
    source = debit(db, from_account_id, cents)
    tid = record_transaction(
        db,
        source,
        type="transfer_out",
        amount_cents=-cents,
        description=f"Transfer to {target['nickname']} {to_account_id}",
        counterparty_account_id=to_account_id,
    )
    db.edit("accounts", to_account_id)["balance_cents"] += cents
    record_transaction(
        db,
        target,
        type="transfer_in",
        amount_cents=cents,
        description=f"Transfer from {source['nickname']} {from_account_id}",
        counterparty_account_id=from_account_id,
    )
    return {
        "transaction_id": tid,
        "from_account_id": from_account_id,
        "amount": dollars(cents),
        "status": "posted",
        "date": TODAY,
        "from_account_balance": dollars(source["balance_cents"]),
    }


@tool("write")
def transfer_to_payee(
    db: Store, from_account_id: str, payee_id: str, amount: Money, scheduled_date: str | None = None
) -> TransferResult:
    """Send money to one of the account owner's saved external payees, now or on a future date.

    Args:
        from_account_id: The account the money leaves.
        payee_id: The saved payee to pay; it must belong to the owner of from_account_id.
        amount: Dollars to send, with at most two decimals.
        scheduled_date: A future date (YYYY-MM-DD, at most 90 days ahead) to send it on; leave out to send now.
    """
    cents = to_cents(amount)
    account = need(db, "accounts", from_account_id, "account")
    payee = need(db, "payees", payee_id, "payee")
    if payee["customer_id"] != account["customer_id"]:
        raise ToolError(f"payee {payee_id} is not saved by the owner of account {from_account_id}")
    if payee["status"] != "active":
        raise ToolError(f"payee {payee_id} was removed and cannot be paid; add it again first")
    description = f"Transfer to {payee['name']}"
    if scheduled_date is None:
        source = debit(db, from_account_id, cents)
        tid = record_transaction(
            db, source, type="payee_transfer", amount_cents=-cents, description=description, payee_id=payee_id
        )
        return {
            "transaction_id": tid,
            "from_account_id": from_account_id,
            "amount": dollars(cents),
            "status": "posted",
            "date": TODAY,
            "from_account_balance": dollars(source["balance_cents"]),
        }
    try:
        day = dt.date.fromisoformat(scheduled_date)
    except ValueError:
        raise ToolError(f"scheduled_date must be a date as YYYY-MM-DD, got {scheduled_date!r}") from None
    if not TODAY_DATE < day <= TODAY_DATE + dt.timedelta(days=SCHEDULE_HORIZON_DAYS):
        raise ToolError(
            f"scheduled_date must be after today ({TODAY}) and at most {SCHEDULE_HORIZON_DAYS} days ahead, "
            f"got {scheduled_date}"
        )
    if account["status"] == "closed":
        raise ToolError(f"account {from_account_id} is closed and cannot send money")
    tid = record_transaction(
        db,
        account,
        type="payee_transfer",
        amount_cents=-cents,
        date=day.isoformat(),
        status="scheduled",
        description=f"Scheduled transfer to {payee['name']}",
        payee_id=payee_id,
    )
    return {
        "transaction_id": tid,
        "from_account_id": from_account_id,
        "amount": dollars(cents),
        "status": "scheduled",
        "date": day.isoformat(),
        "from_account_balance": dollars(account["balance_cents"]),
    }


@tool("write")
def cancel_scheduled_transfer(db: Store, transaction_id: str) -> TransactionView:
    """Cancel a scheduled transfer that has not been sent yet.

    Args:
        transaction_id: The scheduled transfer's transaction id.
    """
    txn = need(db, "transactions", transaction_id, "transaction")
    if txn["status"] != "scheduled":
        raise ToolError(
            f"transaction {transaction_id} is {txn['status']}, not scheduled; only scheduled transfers "
            "can be cancelled"
        )
    edited = db.edit("transactions", transaction_id)
    edited["status"] = "cancelled"
    return transaction_view(edited)


@tool("write")
def add_payee(
    db: Store, customer_id: str, name: str, bank_name: str, routing_number: str, account_number: str
) -> PayeeView:
    """Save a new external payee (a person or company at another bank) for a customer.

    Args:
        customer_id: The customer saving the payee.
        name: The payee's name as it appears on their bank account.
        bank_name: The payee's bank.
        routing_number: The payee bank's 9-digit routing number.
        account_number: The payee's account number, 4 to 17 digits.
    """
    customer = need(db, "customers", customer_id, "customer")
    if not (len(routing_number) == 9 and routing_number.isdigit()):
        raise ToolError(f"routing_number must be exactly 9 digits, got {routing_number!r}")
    if not (4 <= len(account_number) <= 17 and account_number.isdigit()):
        raise ToolError(f"account_number must be 4 to 17 digits, got {account_number!r}")
    if not name.strip() or not bank_name.strip():
        raise ToolError("name and bank_name must not be empty")
    for pid in customer["payee_ids"]:
        other = db.get("payees", pid)
        if (
            other
            and other["status"] == "active"
            and (other["routing_number"], other["account_number"]) == (routing_number, account_number)
        ):
            raise ToolError(f"this account is already saved as payee {pid} ({other['name']})")
    pid = next_id(db, "payees", "PAY")
    record = {
        "payee_id": pid,
        "customer_id": customer_id,
        "name": name.strip(),
        "bank_name": bank_name.strip(),
        "routing_number": routing_number,
        "account_number": account_number,
        "status": "active",
        "added_date": TODAY,
    }
    db.insert("payees", pid, record)
    db.edit("customers", customer_id)["payee_ids"].append(pid)
    return payee_view(record)


@tool("write")
def remove_payee(db: Store, payee_id: str) -> PayeeView:
    """Remove a saved payee. Scheduled transfers to the payee must be cancelled first.

    Args:
        payee_id: The payee to remove.
    """
    payee = need(db, "payees", payee_id, "payee")
    if payee["status"] == "removed":
        raise ToolError(f"payee {payee_id} is already removed")
    customer = need(db, "customers", payee["customer_id"], "customer")
    for aid in customer["account_ids"]:
        for tid in need(db, "accounts", aid, "account")["transaction_ids"]:
            txn = db.get("transactions", tid)
            if txn and txn["payee_id"] == payee_id and txn["status"] == "scheduled":
                raise ToolError(
                    f"payee {payee_id} has scheduled transfer {tid}; cancel it before removing the payee"
                )
    edited = db.edit("payees", payee_id)
    edited["status"] = "removed"
    return payee_view(edited)


@tool("write")
def freeze_account(db: Store, account_id: str) -> AccountChange:
    """Freeze an open account so no money can leave it (for suspected fraud); it can still receive money.

    Args:
        account_id: The account to freeze.
    """
    account = need(db, "accounts", account_id, "account")
    if account["status"] != "open":
        raise ToolError(f"account {account_id} is {account['status']}; only open accounts can be frozen")
    db.edit("accounts", account_id)["status"] = "frozen"
    return {"account_id": account_id, "status": "frozen"}


# -- cards ---------------------------------------------------------------------------------------
@tool("write")
def block_card(db: Store, card_id: str) -> CardChange:
    """Temporarily block an active card at the customer's request; it can be unblocked later.

    Args:
        card_id: The card to block.
    """
    card = need(db, "cards", card_id, "card")
    if card["status"] != "active":
        raise ToolError(f"card {card_id} is {card['status']}; only active cards can be blocked")
    edited = db.edit("cards", card_id)
    edited["status"], edited["block_reason"] = "blocked", "customer_request"
    return card_change(edited)


@tool("write")
def unblock_card(db: Store, card_id: str) -> CardChange:
    """Reactivate a blocked card.

    Args:
        card_id: The card to unblock.
    """
    card = need(db, "cards", card_id, "card")
    if card["status"] != "blocked":
        raise ToolError(f"card {card_id} is {card['status']}; only blocked cards can be unblocked")
    edited = db.edit("cards", card_id)
    edited["status"], edited["block_reason"] = "active", None
    return card_change(edited)


@tool("write")
def report_card_lost(db: Store, card_id: str) -> CardChange:
    """Mark a card lost or stolen: it is blocked for good and can only be replaced.

    Args:
        card_id: The card that was lost or stolen.
    """
    card = need(db, "cards", card_id, "card")
    if card["status"] not in ("active", "blocked"):
        raise ToolError(
            f"card {card_id} is {card['status']}; only active or blocked cards can be reported lost"
        )
    edited = db.edit("cards", card_id)
    edited["status"] = "lost"
    return card_change(edited)


@tool("write")
def replace_card(db: Store, card_id: str, reason: Literal["lost", "stolen", "damaged"]) -> NewCard:
    """Issue a new card number for a card (lost, stolen or damaged); the old card stops working.

    Args:
        card_id: The card to replace.
        reason: Why the card is replaced: lost, stolen or damaged.
    """
    old = need(db, "cards", card_id, "card")
    if old["status"] == "replaced":
        raise ToolError(f"card {card_id} was already replaced by {old['replaced_by']}")
    account = need(db, "accounts", old["account_id"], "account")
    if account["status"] == "closed":
        raise ToolError(f"the account {account['account_id']} behind card {card_id} is closed")
    new_id = next_id(db, "cards", "CRD")
    digest = hashlib.sha256(f"{new_id}/{card_id}".encode()).hexdigest()
    expiry = f"{TODAY_DATE.month:02d}/{(TODAY_DATE.year + 4) % 100:02d}"
    record = {
        **old,
        "card_id": new_id,
        "last4": f"{int(digest, 16) % 10_000:04d}",
        "status": "active",
        "block_reason": None,
        "expiry": expiry,
        "issued_date": TODAY,
        "replaces": card_id,
        "replaced_by": None,
    }
    db.insert("cards", new_id, record)
    edited = db.edit("cards", card_id)
    edited["status"], edited["replaced_by"] = "replaced", new_id
    db.edit("customers", old["customer_id"])["card_ids"].append(new_id)
    return {
        "card_id": new_id,
        "replaced_card_id": card_id,
        "last4": record["last4"],
        "expiry": expiry,
        "status": "active",
    }


@tool("write")
def set_card_spending_limit(db: Store, card_id: str, daily_limit: Money) -> CardChange:
    """Change how much a card can spend per day.

    Args:
        card_id: The card to change.
        daily_limit: The new daily spending limit in dollars.
    """
    cents = to_cents(daily_limit, "daily_limit")
    if cents > MAX_CARD_LIMIT_CENTS:
        raise ToolError(
            f"daily_limit must be at most ${dollars(MAX_CARD_LIMIT_CENTS):,.0f}, got {daily_limit}"
        )
    card = need(db, "cards", card_id, "card")
    if card["status"] in ("lost", "replaced"):
        raise ToolError(f"card {card_id} is {card['status']}; its limit cannot change")
    edited = db.edit("cards", card_id)
    edited["daily_spend_limit_cents"] = cents
    return card_change(edited)


@tool("write")
def open_dispute(db: Store, transaction_id: str, reason: DisputeReason) -> DisputeOpened:
    """Open a dispute on a charge the customer does not recognise or disagrees with.

    Args:
        transaction_id: The transaction to dispute.
        reason: unauthorized, duplicate_charge, item_not_received or incorrect_amount.
    """
    txn = need(db, "transactions", transaction_id, "transaction")
    if txn["dispute_id"] is not None:
        raise ToolError(
            f"transaction {transaction_id} already has dispute {txn['dispute_id']}; "
            "a transaction can be disputed only once"
        )
    if txn["amount_cents"] >= 0:
        raise ToolError(
            f"transaction {transaction_id} is money coming in, not a charge; there is nothing to dispute"
        )
    account = need(db, "accounts", txn["account_id"], "account")
    did = next_id(db, "disputes", "DSP")
    db.insert(
        "disputes",
        did,
        {
            "dispute_id": did,
            "transaction_id": transaction_id,
            "customer_id": account["customer_id"],
            "card_id": txn["card_id"],
            "amount_cents": -txn["amount_cents"],
            "reason": reason,
            "status": "open",
            "opened_date": TODAY,
        },
    )
    db.edit("transactions", transaction_id)["dispute_id"] = did
    return {
        "dispute_id": did,
        "transaction_id": transaction_id,
        "amount": dollars(-txn["amount_cents"]),
        "status": "open",
    }
