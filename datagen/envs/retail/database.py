"""The retail store's database: record models and a seeded generator.

Every id embeds the seed (``#W`` + seed + fixed-width digits), so two seeds never share an id; full
names are drawn so that seeds of different parity (the training seed 0 and the evaluation seed 1)
never share a customer name or e-mail address either.
"""

from __future__ import annotations

import json
import random
import zlib
from datetime import datetime, timedelta
from functools import cache
from itertools import product as cartesian
from pathlib import Path
from typing import Any, Literal

from faker import Faker
from pydantic import BaseModel, ConfigDict

from datagen.envs.references import References

N_USERS = 320
ORDER_STATUSES = (
    "pending",
    "pending (items modified)",
    "processed",
    "delivered",
    "cancelled",
    "return requested",
    "exchange requested",
)
OrderStatus = Literal[
    "pending",
    "pending (items modified)",
    "processed",
    "delivered",
    "cancelled",
    "return requested",
    "exchange requested",
]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Variant(_Record):
    item_id: str
    options: dict[str, str]
    available: bool
    price: float


class Product(_Record):
    product_id: str
    name: str
    variants: dict[str, Variant]


class Name(_Record):
    first_name: str
    last_name: str


class Address(_Record):
    address1: str
    address2: str
    city: str
    state: str
    country: str
    zip: str


class PaymentMethod(_Record):
    payment_method_id: str
    source: Literal["credit_card", "gift_card", "paypal"]
    brand: str | None = None
    last_four: str | None = None
    balance: float | None = None  # gift cards only


class User(_Record):
    user_id: str
    name: Name
    email: str
    address: Address
    payment_methods: dict[str, PaymentMethod]
    orders: list[str]


class OrderItem(_Record):
    name: str
    product_id: str
    item_id: str
    price: float
    options: dict[str, str]


class Fulfillment(_Record):
    tracking_id: str
    item_ids: list[str]


class Payment(_Record):
    transaction_type: Literal["payment", "refund"]
    amount: float
    payment_method_id: str


class ReturnInfo(_Record):
    item_ids: list[str]
    payment_method_id: str
    refund_amount: float


class ExchangeInfo(_Record):
    item_ids: list[str]
    new_item_ids: list[str]
    payment_method_id: str
    price_difference: float


class Order(_Record):
    order_id: str
    user_id: str
    status: OrderStatus
    created_at: str
    address: Address
    items: list[OrderItem]
    fulfillments: list[Fulfillment]
    payment_history: list[Payment]
    cancel_reason: str | None = None
    return_info: ReturnInfo | None = None
    exchange_info: ExchangeInfo | None = None


class RetailDB(_Record):
    users: dict[str, User]
    products: dict[str, Product]
    orders: dict[str, Order]


# Which table each id parameter of the tools points into (Phase 1 fills arguments from the data).
REFERENCES = References(
    user_table="users",
    tables={"users": "user_id", "products": "product_id", "orders": "order_id"},
    maps={"payment_methods": "payment_method_id"},
    names={"item_ids": "item_id", "new_item_ids": "item_id"},
)


@cache
def _catalog() -> list[dict[str, Any]]:
    path = Path(__file__).with_name("catalog.json")
    return json.loads(path.read_text(encoding="utf-8"))["product_types"]


class _Ids:
    """Unique ids of a fixed width per prefix; the seed is part of every id."""

    def __init__(self, seed: int, rng: random.Random):
        self.seed, self.rng, self.used = seed, rng, set()

    def new(self, prefix: str, digits: int) -> str:
        while True:
            candidate = f"{prefix}{self.seed}{self.rng.randrange(10**digits):0{digits}d}"
            if candidate not in self.used:
                self.used.add(candidate)
                return candidate


def _build_products(rng: random.Random, ids: _Ids) -> dict[str, dict[str, Any]]:
    products: dict[str, dict[str, Any]] = {}
    for kind in _catalog():
        combos = list(cartesian(*kind["options"].values()))
        chosen = rng.sample(combos, min(kind["variants"], len(combos)))
        low, high = kind["price"]
        variants: dict[str, dict[str, Any]] = {}
        for combo in chosen:
            item_id = ids.new("", 9)
            variants[item_id] = {
                "item_id": item_id,
                "options": dict(zip(kind["options"], combo, strict=True)),
                "available": rng.random() < 0.8,
                "price": round(rng.uniform(low, high), 2),
            }
        product_id = ids.new("P", 7)
        products[product_id] = {"product_id": product_id, "name": kind["name"], "variants": variants}
    return products


def _address(fake: Faker) -> dict[str, str]:
    return {
        "address1": fake.street_address(),
        "address2": fake.secondary_address() if fake.random.random() < 0.5 else "",
        "city": fake.city(),
        "state": fake.state_abbr(include_territories=False),
        "country": "USA",
        "zip": fake.zipcode(),
    }


def _unique_name(fake: Faker, seed: int, taken: set[str]) -> tuple[str, str]:
    # Parity of a stable hash keeps seeds 0 and 1 (train / eval) free of shared customer names.
    while True:
        first, last = fake.first_name(), fake.last_name()
        full = f"{first} {last}"
        if full not in taken and zlib.crc32(full.encode()) % 2 == seed % 2:
            taken.add(full)
            return first, last


def _payment_methods(rng: random.Random, ids: _Ids) -> dict[str, dict[str, Any]]:
    methods: dict[str, dict[str, Any]] = {}
    kinds = rng.sample(["credit_card", "gift_card", "paypal"], rng.randint(1, 3))
    if rng.random() < 0.25:
        kinds.append("credit_card")
    for source in kinds:
        method_id = ids.new(f"{source}_", 6)
        method: dict[str, Any] = {"payment_method_id": method_id, "source": source}
        if source == "credit_card":
            method["brand"] = rng.choice(["visa", "mastercard", "amex", "discover"])
            method["last_four"] = f"{rng.randrange(10000):04d}"
        elif source == "gift_card":
            method["balance"] = float(rng.randint(0, 300))
        methods[method_id] = method
    return methods


_STATUS_WEIGHTS = (30, 5, 17, 33, 8, 4, 3)


def _build_order(
    rng: random.Random, ids: _Ids, user: dict[str, Any], products: dict[str, Any], when: datetime
) -> dict[str, Any]:
    order_id = ids.new("#W", 7)
    status = rng.choices(ORDER_STATUSES, weights=_STATUS_WEIGHTS)[0]
    items = []
    for product_id in rng.sample(sorted(products), rng.randint(1, 5)):
        product = products[product_id]
        variant = product["variants"][rng.choice(sorted(product["variants"]))]
        items.append(
            {
                "name": product["name"],
                "product_id": product_id,
                "item_id": variant["item_id"],
                "price": variant["price"],
                "options": dict(variant["options"]),
            }
        )
    total = round(sum(i["price"] for i in items), 2)
    method_id = rng.choice(sorted(user["payment_methods"]))
    history = [{"transaction_type": "payment", "amount": total, "payment_method_id": method_id}]
    fulfillments = []
    if status in ("processed", "delivered", "return requested", "exchange requested"):
        fulfillments = [
            {"tracking_id": f"{rng.randrange(10**11):011d}", "item_ids": [i["item_id"] for i in items]}
        ]
    order: dict[str, Any] = {
        "order_id": order_id,
        "user_id": user["user_id"],
        "status": status,
        "created_at": when.isoformat(timespec="seconds"),
        "address": dict(user["address"]),
        "items": items,
        "fulfillments": fulfillments,
        "payment_history": history,
        "cancel_reason": None,
        "return_info": None,
        "exchange_info": None,
    }
    if status == "cancelled":
        order["cancel_reason"] = rng.choice(["no longer needed", "ordered by mistake"])
        history.append({"transaction_type": "refund", "amount": total, "payment_method_id": method_id})
    elif status == "return requested":
        returned = [items[0]["item_id"]]
        order["return_info"] = {
            "item_ids": returned,
            "payment_method_id": method_id,
            "refund_amount": items[0]["price"],
        }
    elif status == "exchange requested":
        product = products[items[0]["product_id"]]
        others = sorted(v for v in product["variants"] if v != items[0]["item_id"])
        if others:
            new_id = rng.choice(others)
            order["exchange_info"] = {
                "item_ids": [items[0]["item_id"]],
                "new_item_ids": [new_id],
                "payment_method_id": method_id,
                "price_difference": round(product["variants"][new_id]["price"] - items[0]["price"], 2),
            }
        else:
            order["status"] = "delivered"
    return order


def build_database(seed: int) -> dict[str, Any]:
    """The store for ``seed``: ~320 customers, 22 products with variants, ~800 orders."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    ids = _Ids(seed, rng)
    products = _build_products(rng, ids)
    users: dict[str, dict[str, Any]] = {}
    orders: dict[str, dict[str, Any]] = {}
    taken: set[str] = set()
    start = datetime(2025, 1, 1)
    for _ in range(N_USERS):
        first, last = _unique_name(fake, seed, taken)
        user_id = f"{first.lower()}_{last.lower()}_{seed}{rng.randrange(10**4):04d}"
        while user_id in users:
            user_id = f"{first.lower()}_{last.lower()}_{seed}{rng.randrange(10**4):04d}"
        user = {
            "user_id": user_id,
            "name": {"first_name": first, "last_name": last},
            "email": f"{first.lower()}.{last.lower()}{seed}{rng.randrange(10**4):04d}@example.com",
            "address": _address(fake),
            "payment_methods": _payment_methods(rng, ids),
            "orders": [],
        }
        for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
            when = start + timedelta(minutes=rng.randrange(60 * 24 * 300))
            order = _build_order(rng, ids, user, products, when)
            orders[order["order_id"]] = order
            user["orders"].append(order["order_id"])
        users[user_id] = user
    return {"users": users, "products": products, "orders": orders}
