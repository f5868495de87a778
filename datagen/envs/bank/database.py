"""The bank database: record models and a seeded generator.

Money is stored as integer cents everywhere in the database (``*_cents`` fields) so balances never
drift; tools take and show dollars. Dates are ISO strings. The bank's clock is fixed at ``TODAY`` so
that "today's transfers", "within 60 days" and scheduled dates mean the same thing in every run.

Ids carry the seed (``CUS1-0042`` on seed 1), so two seeds never share an entity; emails carry the
seed and customer number, and full names are drawn from a per-seed class, for the same reason.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
import zlib
from pathlib import Path
from typing import Any, Literal

from faker import Faker
from faker.providers.person.en_US import Provider as UsPersonProvider
from pydantic import BaseModel, ConfigDict

from datagen.envs.references import References

TODAY = "2026-03-16"
TODAY_DATE = dt.date.fromisoformat(TODAY)

Tier = Literal["standard", "plus", "premier"]
# Per-tier bounds on a card's daily spending limit, in cents: (lowest, highest). Policy rule R9.
CARD_LIMIT_BOUNDS_CENTS: dict[str, tuple[int, int]] = {
    "standard": (10_000, 250_000),
    "plus": (10_000, 500_000),
    "premier": (10_000, 1_000_000),
}
# Default daily outgoing-transfer limit per account, in cents, by the owner's tier.
TRANSFER_LIMIT_CENTS: dict[str, int] = {"standard": 250_000, "plus": 500_000, "premier": 1_000_000}

AccountType = Literal["checking", "savings", "credit_line"]
AccountStatus = Literal["open", "frozen", "closed"]
CardStatus = Literal["active", "blocked", "lost", "replaced"]
BlockReason = Literal["customer_request", "fraud_review"]
TransactionType = Literal[
    "card_purchase",
    "deposit",
    "transfer_in",
    "transfer_out",
    "payee_transfer",
    "atm_withdrawal",
    "interest",
    "fee",
]
TransactionStatus = Literal["posted", "pending", "scheduled", "cancelled"]
DisputeReason = Literal["unauthorized", "duplicate_charge", "item_not_received", "incorrect_amount"]
DisputeStatus = Literal["open", "under_review", "resolved_customer", "rejected"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Address(_Record):
    street: str
    city: str
    state: str
    zip: str


class Customer(_Record):
    customer_id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    date_of_birth: str
    ssn_last4: str
    address: Address
    kyc_status: Literal["verified", "pending"]
    tier: Tier
    customer_since: str
    account_ids: list[str]
    card_ids: list[str]
    payee_ids: list[str]


class Account(_Record):
    account_id: str
    customer_id: str
    type: AccountType
    nickname: str
    status: AccountStatus
    # checking/savings: money held (>= 0); credit_line: minus the amount owed (<= 0).
    balance_cents: int
    credit_limit_cents: int | None
    daily_transfer_limit_cents: int
    opened_date: str
    transaction_ids: list[str]  # every transaction on this account, in the order recorded


class Card(_Record):
    card_id: str
    customer_id: str
    account_id: str
    type: Literal["debit", "credit"]
    last4: str
    status: CardStatus
    block_reason: BlockReason | None
    daily_spend_limit_cents: int
    expiry: str  # MM/YY
    issued_date: str
    replaces: str | None
    replaced_by: str | None


class Payee(_Record):
    payee_id: str
    customer_id: str
    name: str
    bank_name: str
    routing_number: str
    account_number: str
    status: Literal["active", "removed"]
    added_date: str


class Transaction(_Record):
    transaction_id: str
    account_id: str
    date: str
    type: TransactionType
    amount_cents: int  # signed: money out of the account is negative
    description: str
    status: TransactionStatus
    card_id: str | None
    payee_id: str | None
    counterparty_account_id: str | None
    dispute_id: str | None


class Dispute(_Record):
    dispute_id: str
    transaction_id: str
    customer_id: str
    card_id: str | None
    amount_cents: int
    reason: DisputeReason
    status: DisputeStatus
    opened_date: str


class BankDB(_Record):
    customers: dict[str, Customer]
    accounts: dict[str, Account]
    cards: dict[str, Card]
    payees: dict[str, Payee]
    transactions: dict[str, Transaction]
    disputes: dict[str, Dispute]


# Which table each id parameter of the tools points into (Phase 1 fills arguments from the data).
REFERENCES = References(
    user_table="customers",
    tables={
        "customers": "customer_id",
        "accounts": "account_id",
        "cards": "card_id",
        "payees": "payee_id",
        "transactions": "transaction_id",
        "disputes": "dispute_id",
    },
    names={"from_account_id": "account_id", "to_account_id": "account_id"},
)


N_CUSTOMERS = 320
NAME_CLASSES = 16  # seeds that differ modulo this never share a customer's full name

CATALOG_PATH = Path(__file__).with_name("catalog.json")


@functools.cache
def _catalog() -> dict[str, Any]:
    """Merchants (with typical price ranges), employers, billers, banks and email domains to draw from."""
    return json.loads(CATALOG_PATH.read_text(encoding="utf-8"))


class _Ids:
    """Per-table counters; ids embed the seed so different seeds never share an id."""

    def __init__(self, seed: int):
        self.seed = seed
        self.counts: dict[str, int] = {}

    def next(self, prefix: str, width: int) -> str:
        n = self.counts.get(prefix, 0)
        self.counts[prefix] = n + 1
        return f"{prefix}{self.seed}-{n:0{width}d}"


@functools.cache
def _surnames_of_class(name_class: int) -> tuple[list[str], list[float]]:
    """Faker's US surnames (with their frequency weights) whose checksum falls in ``name_class``."""
    chosen = [
        (n, float(w))
        for n, w in UsPersonProvider.last_names.items()
        if zlib.crc32(n.encode()) % NAME_CLASSES == name_class
    ]
    return [n for n, _ in chosen], [w for _, w in chosen]


def _days_ago(days: int) -> str:
    return (TODAY_DATE - dt.timedelta(days=days)).isoformat()


def _date_of_birth(fake: Faker, youngest: int, oldest: int) -> str:
    """A birth date for someone aged ``youngest``..``oldest`` on the bank's ``TODAY``. Faker's own
    ``date_of_birth`` counts ages from the wall clock, so the data would change from day to day."""
    earliest = TODAY_DATE.replace(year=TODAY_DATE.year - oldest - 1) + dt.timedelta(days=1)
    latest = TODAY_DATE.replace(year=TODAY_DATE.year - youngest)
    return fake.date_between_dates(date_start=earliest, date_end=latest).isoformat()


def _cents(rng: random.Random, low: float, high: float) -> int:
    return int(round(rng.uniform(low, high) * 100))


class _Builder:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.fake = Faker("en_US")
        self.fake.seed_instance(seed)
        self.ids = _Ids(seed)
        self.tables: dict[str, dict[str, Any]] = {
            name: {} for name in ("customers", "accounts", "cards", "payees", "transactions", "disputes")
        }

    # -- records -------------------------------------------------------------------------------
    def add_transaction(
        self,
        account_id: str,
        days_ago: int,
        type_: str,
        amount_cents: int,
        description: str,
        status: str = "posted",
        **links: str | None,
    ) -> dict[str, Any]:
        tid = self.ids.next("TXN", 6)
        record = {
            "transaction_id": tid,
            "account_id": account_id,
            "date": _days_ago(days_ago),
            "type": type_,
            "amount_cents": amount_cents,
            "description": description,
            "status": status,
            "card_id": links.get("card_id"),
            "payee_id": links.get("payee_id"),
            "counterparty_account_id": links.get("counterparty_account_id"),
            "dispute_id": None,
        }
        self.tables["transactions"][tid] = record
        self.tables["accounts"][account_id]["transaction_ids"].append(tid)
        return record

    def draw_name(self) -> tuple[str, str]:
        """A name whose surname is in this seed's class, so seeds in different classes never share a customer."""
        names, weights = _surnames_of_class(self.ids.seed % NAME_CLASSES)
        return self.fake.first_name(), self.rng.choices(names, weights=weights)[0]

    def make_customer(self, index: int) -> dict[str, Any]:
        rng, fake = self.rng, self.fake
        cid = self.ids.next("CUS", 4)
        first, last = self.draw_name()
        handle = "".join(ch for ch in f"{first}.{last}".lower() if ch.isalnum() or ch == ".")
        tier = rng.choices(["standard", "plus", "premier"], weights=[60, 28, 12])[0]
        customer = {
            "customer_id": cid,
            "first_name": first,
            "last_name": last,
            "email": f"{handle}{self.ids.seed}{index:03d}@{rng.choice(_catalog()['email_domains'])}",
            "phone": f"{rng.randint(201, 989)}-555-{rng.randint(0, 9999):04d}",
            "date_of_birth": _date_of_birth(fake, youngest=19, oldest=86),
            "ssn_last4": f"{rng.randint(0, 9999):04d}",
            "address": {
                "street": fake.street_address(),
                "city": fake.city(),
                "state": fake.state_abbr(),
                "zip": fake.zipcode(),
            },
            "kyc_status": "pending" if rng.random() < 0.08 else "verified",
            "tier": tier,
            "customer_since": _days_ago(rng.randint(200, 6000)),
            "account_ids": [],
            "card_ids": [],
            "payee_ids": [],
        }
        self.tables["customers"][cid] = customer
        return customer

    def make_account(self, customer: dict[str, Any], type_: str) -> dict[str, Any]:
        rng = self.rng
        aid = self.ids.next("ACC", 5)
        limit = TRANSFER_LIMIT_CENTS[customer["tier"]]
        if rng.random() < 0.15:
            limit = rng.choice([100_000, 150_000, 200_000])
        status = "open"
        if type_ == "checking" and rng.random() < 0.05:
            status = "frozen"
        elif type_ == "savings" and rng.random() < 0.04:
            status = "closed"
        credit_limit = None
        if type_ == "checking":
            balance = int(rng.lognormvariate(7.6, 1.0) * 100)
        elif type_ == "savings":
            balance = 0 if status == "closed" else int(rng.lognormvariate(8.8, 1.1) * 100)
        else:
            credit_limit = rng.choice([200_000, 500_000, 1_000_000, 1_500_000, 2_500_000])
            balance = -int(credit_limit * rng.uniform(0.0, 0.6))
        nickname = {
            "checking": "Everyday Checking",
            "savings": "High-Yield Savings",
            "credit_line": "Flex Credit Line",
        }
        account = {
            "account_id": aid,
            "customer_id": customer["customer_id"],
            "type": type_,
            "nickname": nickname[type_],
            "status": status,
            "balance_cents": balance,
            "credit_limit_cents": credit_limit,
            "daily_transfer_limit_cents": limit,
            "opened_date": _days_ago(rng.randint(150, 4000)),
            "transaction_ids": [],
        }
        self.tables["accounts"][aid] = account
        customer["account_ids"].append(aid)
        return account

    def make_card(
        self,
        customer: dict[str, Any],
        account: dict[str, Any],
        status: str = "active",
        block_reason: str | None = None,
        replaces: str | None = None,
    ) -> dict[str, Any]:
        rng = self.rng
        card_id = self.ids.next("CRD", 5)
        low, high = CARD_LIMIT_BOUNDS_CENTS[customer["tier"]]
        card = {
            "card_id": card_id,
            "customer_id": customer["customer_id"],
            "account_id": account["account_id"],
            "type": "debit" if account["type"] == "checking" else "credit",
            "last4": f"{rng.randint(0, 9999):04d}",
            "status": status,
            "block_reason": block_reason,
            "daily_spend_limit_cents": rng.choice(
                [v for v in (50_000, 100_000, 150_000, 250_000, 500_000) if low <= v <= high]
            ),
            "expiry": f"{rng.randint(1, 12):02d}/{rng.randint(27, 31)}",
            "issued_date": _days_ago(rng.randint(30, 900)),
            "replaces": replaces,
            "replaced_by": None,
        }
        self.tables["cards"][card_id] = card
        customer["card_ids"].append(card_id)
        return card

    def make_cards(self, customer: dict[str, Any], account: dict[str, Any]) -> dict[str, Any]:
        roll = self.rng.random()
        if roll < 0.07:  # an old card that was lost and replaced
            old = self.make_card(customer, account, status="replaced")
            new = self.make_card(customer, account, replaces=old["card_id"])
            old["replaced_by"] = new["card_id"]
            return new
        if roll < 0.11:
            return self.make_card(customer, account, status="blocked", block_reason="customer_request")
        if roll < 0.15:
            return self.make_card(customer, account, status="blocked", block_reason="fraud_review")
        if roll < 0.18:
            return self.make_card(customer, account, status="lost")
        return self.make_card(customer, account)

    def make_payees(self, customer: dict[str, Any]) -> list[dict[str, Any]]:
        rng, fake = self.rng, self.fake
        payees = []
        for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4])):
            pid = self.ids.next("PAY", 5)
            name = rng.choice(_catalog()["billers"]) if rng.random() < 0.4 else fake.name()
            if any(p["name"] == name for p in payees):
                continue
            payee = {
                "payee_id": pid,
                "customer_id": customer["customer_id"],
                "name": name,
                "bank_name": rng.choice(_catalog()["banks"]),
                "routing_number": f"{rng.randint(10_000_000, 329_999_999):09d}",
                "account_number": str(rng.randint(10**7, 10**12 - 1)),
                "status": "removed" if rng.random() < 0.08 else "active",
                "added_date": _days_ago(rng.randint(20, 1500)),
            }
            self.tables["payees"][pid] = payee
            customer["payee_ids"].append(pid)
            payees.append(payee)
        return payees

    # -- histories ------------------------------------------------------------------------------
    def card_history(self, account: dict[str, Any], card: dict[str, Any], count: int) -> None:
        rng = self.rng
        for _ in range(count):
            merchant = rng.choice(_catalog()["merchants"])
            days = rng.randint(0, 120)
            status = "pending" if days <= 2 and rng.random() < 0.6 else "posted"
            self.add_transaction(
                account["account_id"],
                days,
                "card_purchase",
                -_cents(rng, merchant["min_dollars"], merchant["max_dollars"]),
                f"{merchant['name']} purchase",
                status,
                card_id=card["card_id"],
            )

    def checking_history(
        self,
        customer: dict[str, Any],
        account: dict[str, Any],
        card: dict[str, Any],
        savings: dict[str, Any] | None,
        payees: list[dict[str, Any]],
    ) -> None:
        rng = self.rng
        aid = account["account_id"]
        employer = rng.choice(_catalog()["employers"])
        pay = _cents(rng, 1100, 4800)
        for days in range(rng.randint(1, 14), 120, 14):
            if rng.random() < 0.85:
                self.add_transaction(aid, days, "deposit", pay, f"Payroll deposit - {employer}")
        self.card_history(account, card, rng.randint(6, 10))
        for _ in range(rng.randint(0, 2)):
            self.add_transaction(
                aid,
                rng.randint(1, 110),
                "atm_withdrawal",
                -rng.choice([2000, 4000, 6000, 10000, 20000]),
                "ATM withdrawal",
            )
        active = [p for p in payees if p["status"] == "active"]
        for payee in active:
            self.add_transaction(
                aid,
                rng.randint(3, 110),
                "payee_transfer",
                -_cents(rng, 40, 1500),
                f"Transfer to {payee['name']}",
                payee_id=payee["payee_id"],
            )
        if active and rng.random() < 0.35:
            payee = rng.choice(active)
            self.add_transaction(
                aid,
                -rng.randint(2, 40),
                "payee_transfer",
                -_cents(rng, 50, 900),
                f"Scheduled transfer to {payee['name']}",
                "scheduled",
                payee_id=payee["payee_id"],
            )
        if savings is not None and savings["status"] != "closed":
            for _ in range(rng.randint(1, 2)):
                self.transfer_pair(account, savings, rng.randint(1, 100), _cents(rng, 50, 800))
        if (
            account["status"] == "open" and rng.random() < 0.2
        ):  # already sent money today: the daily limit matters
            share = rng.uniform(0.3, 0.9)
            amount = max(100, int(account["daily_transfer_limit_cents"] * share) // 100 * 100)
            if active and rng.random() < 0.5:
                payee = rng.choice(active)
                self.add_transaction(
                    aid,
                    0,
                    "payee_transfer",
                    -amount,
                    f"Transfer to {payee['name']}",
                    payee_id=payee["payee_id"],
                )
            elif savings is not None and savings["status"] != "closed":
                self.transfer_pair(account, savings, 0, amount)

    def transfer_pair(
        self, source: dict[str, Any], target: dict[str, Any], days_ago: int, amount: int
    ) -> None:
        self.add_transaction(
            source["account_id"],
            days_ago,
            "transfer_out",
            -amount,
            f"Transfer to {target['nickname']} {target['account_id']}",
            counterparty_account_id=target["account_id"],
        )
        self.add_transaction(
            target["account_id"],
            days_ago,
            "transfer_in",
            amount,
            f"Transfer from {source['nickname']} {source['account_id']}",
            counterparty_account_id=source["account_id"],
        )

    def savings_history(self, account: dict[str, Any]) -> None:
        rng = self.rng
        offset = 150 if account["status"] == "closed" else 0  # a closed account's history ends months ago
        for month in range(4):
            self.add_transaction(
                account["account_id"],
                offset + 15 + 30 * month,
                "interest",
                _cents(rng, 0.5, 45),
                "Monthly interest",
            )
        for _ in range(rng.randint(4, 7)):
            self.add_transaction(
                account["account_id"],
                offset + rng.randint(1, 120),
                "deposit",
                _cents(rng, 50, 2500),
                "Mobile check deposit",
            )

    def credit_history(self, account: dict[str, Any], card: dict[str, Any], checking: dict[str, Any]) -> None:
        rng = self.rng
        self.card_history(account, card, rng.randint(8, 12))
        for month in range(3):
            self.transfer_pair(checking, account, 5 + 30 * month, _cents(rng, 60, 700))
        if rng.random() < 0.1:
            self.add_transaction(account["account_id"], rng.randint(5, 90), "fee", -3900, "Late payment fee")

    def seed_disputes(self) -> None:
        """A few purchases already under dispute, so "one dispute per transaction" has something to bite on."""
        purchases = [
            t
            for t in self.tables["transactions"].values()
            if t["type"] == "card_purchase" and t["status"] == "posted"
        ]
        for txn in self.rng.sample(purchases, k=max(1, len(purchases) // 60)):
            did = self.ids.next("DSP", 4)
            owner = self.tables["accounts"][txn["account_id"]]["customer_id"]
            days = (TODAY_DATE - dt.date.fromisoformat(txn["date"])).days
            self.tables["disputes"][did] = {
                "dispute_id": did,
                "transaction_id": txn["transaction_id"],
                "customer_id": owner,
                "card_id": txn["card_id"],
                "amount_cents": -txn["amount_cents"],
                "reason": self.rng.choice(
                    ["unauthorized", "duplicate_charge", "item_not_received", "incorrect_amount"]
                ),
                "status": self.rng.choice(["open", "under_review", "resolved_customer", "rejected"]),
                "opened_date": _days_ago(self.rng.randint(0, max(0, days - 1))),
            }
            txn["dispute_id"] = did

    def build(self) -> dict[str, dict[str, Any]]:
        rng = self.rng
        for index in range(N_CUSTOMERS):
            customer = self.make_customer(index)
            checking = self.make_account(customer, "checking")
            savings = self.make_account(customer, "savings") if rng.random() < 0.65 else None
            credit = self.make_account(customer, "credit_line") if rng.random() < 0.35 else None
            debit_card = self.make_cards(customer, checking)
            payees = self.make_payees(customer)
            self.checking_history(customer, checking, debit_card, savings, payees)
            if savings is not None:
                self.savings_history(savings)
            if credit is not None:
                credit_card = self.make_cards(customer, credit)
                self.credit_history(credit, credit_card, checking)
        self.seed_disputes()
        return self.tables


def build_database(seed: int) -> dict[str, dict[str, Any]]:
    """The bank's tables for ``seed``: the same seed gives the same data, byte for byte."""
    return _Builder(seed).build()
