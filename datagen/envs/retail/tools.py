"""Tools of the retail store's customer-service agent.

Tools enforce what the data itself requires (an order must be pending to be modified, a gift card
must cover what it pays); conversation rules (identify the customer first, act only on their
records) are the policy's and are enforced by ``checks.py`` over the trace.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal, TypedDict

from datagen.envs.store import Store
from datagen.envs.tools import ToolError, tool

PENDING = ("pending", "pending (items modified)")


class UserIdResult(TypedDict):
    user_id: str


class UserDetails(TypedDict):
    user_id: str
    name: dict[str, str]
    email: str
    address: dict[str, str]
    payment_methods: dict[str, dict[str, Any]]
    orders: list[str]


class OrderSummary(TypedDict):
    order_id: str
    status: str
    item_count: int
    total: float


class OrderItemInfo(TypedDict):
    name: str
    product_id: str
    item_id: str
    price: float
    options: dict[str, str]


class PaymentInfo(TypedDict):
    transaction_type: str
    amount: float
    payment_method_id: str


class OrderDetails(TypedDict):
    order_id: str
    user_id: str
    status: str
    created_at: str
    address: dict[str, str]
    items: list[OrderItemInfo]
    fulfillments: list[dict[str, Any]]
    payment_history: list[PaymentInfo]
    cancel_reason: str | None
    return_info: dict[str, Any] | None
    exchange_info: dict[str, Any] | None


class ProductType(TypedDict):
    name: str
    product_id: str


class VariantInfo(TypedDict):
    item_id: str
    options: dict[str, str]
    available: bool
    price: float


class ProductDetails(TypedDict):
    product_id: str
    name: str
    variants: dict[str, VariantInfo]


# -- helpers ------------------------------------------------------------------------------------


def _order(db: Store, order_id: str) -> dict[str, Any]:
    order = db.get("orders", order_id)
    if order is None:
        hint = "" if order_id.startswith("#") else " (order ids start with '#', e.g. '#W1234567')"
        raise ToolError(f"order {order_id!r} not found{hint}")
    return order


def _user(db: Store, user_id: str) -> dict[str, Any]:
    user = db.get("users", user_id)
    if user is None:
        raise ToolError(f"user {user_id!r} not found")
    return user


def _require_status(order: dict[str, Any], allowed: tuple[str, ...], action: str) -> None:
    if order["status"] not in allowed:
        raise ToolError(
            f"cannot {action} order {order['order_id']}: its status is {order['status']!r}, "
            f"expected {' or '.join(repr(s) for s in allowed)}"
        )


def _payment_method(db: Store, user_id: str, payment_method_id: str) -> dict[str, Any]:
    methods = _user(db, user_id)["payment_methods"]
    if payment_method_id not in methods:
        raise ToolError(
            f"payment method {payment_method_id!r} is not one of the customer's: {sorted(methods)}"
        )
    return methods[payment_method_id]


def _check_items_exist(order: dict[str, Any], item_ids: list[str]) -> None:
    if not item_ids:
        raise ToolError("item_ids must name at least one item of the order")
    have = Counter(i["item_id"] for i in order["items"])
    for item_id, wanted in Counter(item_ids).items():
        if have[item_id] < wanted:
            raise ToolError(
                f"item {item_id!r} is not in order {order['order_id']} (or not that many times); "
                f"its items are {[i['item_id'] for i in order['items']]}"
            )


def _swap_prices(
    db: Store, order: dict[str, Any], item_ids: list[str], new_item_ids: list[str]
) -> tuple[float, dict[str, dict[str, Any]]]:
    """Price difference (new - old) of swapping each item for a variant of the same product."""
    if len(item_ids) != len(new_item_ids):
        raise ToolError(
            f"item_ids and new_item_ids must have the same length, got {len(item_ids)} and {len(new_item_ids)}"
        )
    _check_items_exist(order, item_ids)
    by_id = {i["item_id"]: i for i in order["items"]}
    difference = 0.0
    chosen: dict[str, dict[str, Any]] = {}
    for old_id, new_id in zip(item_ids, new_item_ids, strict=True):
        old = by_id[old_id]
        product = db.get("products", old["product_id"])
        variant = product["variants"].get(new_id) if product else None
        if variant is None:
            raise ToolError(
                f"new item {new_id!r} is not a variant of {old['name']} ({old['product_id']}); "
                "an item can only be swapped for another variant of the same product"
            )
        if new_id == old_id:
            raise ToolError(f"new item {new_id!r} is the same variant as the old one")
        if not variant["available"]:
            raise ToolError(f"new item {new_id!r} ({old['name']}) is out of stock")
        difference += variant["price"] - old["price"]
        chosen[new_id] = variant
    return round(difference, 2), chosen


def _require_cover(method: dict[str, Any], amount: float) -> None:
    """A gift card must hold at least ``amount`` to pay it; other methods always can."""
    if method["source"] == "gift_card" and amount > method["balance"] + 1e-9:
        raise ToolError(
            f"gift card {method['payment_method_id']} has balance {method['balance']}, "
            f"not enough to pay {amount}"
        )


def _apply_gift_card(method: dict[str, Any], amount: float) -> None:
    """Charges (amount > 0) or refunds (amount < 0) a gift card's balance in place."""
    if method["source"] != "gift_card":
        return
    _require_cover(method, amount)
    method["balance"] = round(method["balance"] - amount, 2)


def _charge(db: Store, order: dict[str, Any], payment_method_id: str, amount: float) -> None:
    """Records a payment (amount > 0) or refund (amount < 0) on the order and the gift card."""
    if abs(amount) < 0.005:
        return
    user = db.edit("users", order["user_id"])
    _apply_gift_card(user["payment_methods"][payment_method_id], amount)
    order["payment_history"].append(
        {
            "transaction_type": "payment" if amount > 0 else "refund",
            "amount": round(abs(amount), 2),
            "payment_method_id": payment_method_id,
        }
    )


def _net_paid(order: dict[str, Any]) -> dict[str, float]:
    paid: dict[str, float] = {}
    for entry in order["payment_history"]:
        sign = 1 if entry["transaction_type"] == "payment" else -1
        paid[entry["payment_method_id"]] = paid.get(entry["payment_method_id"], 0.0) + sign * entry["amount"]
    return {k: round(v, 2) for k, v in paid.items() if round(v, 2) > 0}


def _original_payment_method(order: dict[str, Any]) -> str:
    return order["payment_history"][0]["payment_method_id"]


# -- identity -----------------------------------------------------------------------------------


@tool("read")
def find_user_id_by_email(db: Store, email: str) -> UserIdResult:
    """Find a customer's user id from their e-mail address (identity verification).

    Args:
        email: The customer's e-mail address, e.g. "jane.doe1234@example.com".
    """
    wanted = email.strip().lower()
    found = db.scan("users", lambda u: u["email"].lower() == wanted)
    if not found:
        raise ToolError(f"no customer has the e-mail address {email!r}")
    return {"user_id": found[0]["user_id"]}


@tool("read")
def find_user_id_by_name_zip(db: Store, first_name: str, last_name: str, zip: str) -> UserIdResult:
    """Find a customer's user id from their full name and zip code (identity verification).

    Args:
        first_name: The customer's first name, e.g. "Jane".
        last_name: The customer's last name, e.g. "Doe".
        zip: The zip code of the customer's default address, e.g. "94103".
    """
    first, last, code = first_name.strip().lower(), last_name.strip().lower(), zip.strip()
    found = db.scan(
        "users",
        lambda u: (
            u["name"]["first_name"].lower() == first
            and u["name"]["last_name"].lower() == last
            and u["address"]["zip"] == code
        ),
    )
    if not found:
        raise ToolError(f"no customer named {first_name} {last_name} with zip code {zip!r}")
    return {"user_id": found[0]["user_id"]}


# -- reading ------------------------------------------------------------------------------------


@tool("read", produces={"order_id", "payment_method_id"})
def get_user_details(db: Store, user_id: str) -> UserDetails:
    """Get a customer's profile: name, e-mail, default address, payment methods and order ids.

    Args:
        user_id: The customer's user id, e.g. "jane_doe_11234".
    """
    return _user(db, user_id)  # type: ignore[return-value]


@tool("read")
def list_user_orders(db: Store, user_id: str) -> list[OrderSummary]:
    """List a customer's orders with their status, number of items and total paid.

    Args:
        user_id: The customer's user id.
    """
    user = _user(db, user_id)
    summaries: list[OrderSummary] = []
    for order_id in user["orders"]:
        order = _order(db, order_id)
        summaries.append(
            {
                "order_id": order_id,
                "status": order["status"],
                "item_count": len(order["items"]),
                "total": round(sum(i["price"] for i in order["items"]), 2),
            }
        )
    return summaries


@tool("read")
def get_order_details(db: Store, order_id: str) -> OrderDetails:
    """Get an order's status, items, shipping address, tracking and payment history.

    Args:
        order_id: The order id, starting with '#', e.g. "#W1234567".
    """
    return _order(db, order_id)  # type: ignore[return-value]


@tool("read")
def list_product_types(db: Store) -> list[ProductType]:
    """List every product type the store sells, with its product id."""
    return sorted(
        ({"name": p["name"], "product_id": p["product_id"]} for p in db.scan("products", lambda p: True)),
        key=lambda p: p["name"],
    )


@tool("read")
def get_product_details(db: Store, product_id: str) -> ProductDetails:
    """Get a product's variants (item ids), their options, price and availability.

    Args:
        product_id: The product id, e.g. "P11234567" (not an item id).
    """
    product = db.get("products", product_id)
    if product is None:
        raise ToolError(
            f"product {product_id!r} not found; product ids look like 'P11234567' "
            "(list_product_types lists them; item ids are variants inside a product)"
        )
    return product  # type: ignore[return-value]


# -- writing ------------------------------------------------------------------------------------


@tool("write")
def cancel_pending_order(
    db: Store, order_id: str, reason: Literal["no longer needed", "ordered by mistake"]
) -> OrderDetails:
    """Cancel a pending order; everything paid is refunded to the method that paid it.

    Args:
        order_id: The order id, e.g. "#W1234567".
        reason: Why the customer cancels: "no longer needed" or "ordered by mistake".
    """
    _require_status(_order(db, order_id), PENDING, "cancel")
    order = db.edit("orders", order_id)
    for method_id, amount in sorted(_net_paid(order).items()):
        _charge(db, order, method_id, -amount)
    order["status"] = "cancelled"
    order["cancel_reason"] = reason
    return order  # type: ignore[return-value]


@tool("write")
def modify_pending_order_address(
    db: Store, order_id: str, address1: str, address2: str, city: str, state: str, country: str, zip: str
) -> OrderDetails:
    """Change the shipping address of a pending order.

    Args:
        order_id: The order id, e.g. "#W1234567".
        address1: Street address, e.g. "123 Main St".
        address2: Apartment, suite etc.; "" if none.
        city: City.
        state: State code, e.g. "CA".
        country: Country, e.g. "USA".
        zip: Zip code, e.g. "94103".
    """
    _require_status(_order(db, order_id), PENDING, "change the address of")
    new = {
        "address1": address1,
        "address2": address2,
        "city": city,
        "state": state,
        "country": country,
        "zip": zip,
    }
    if not address1.strip() or not city.strip() or not zip.strip():
        raise ToolError("address1, city and zip must not be empty")
    order = db.edit("orders", order_id)
    order["address"] = new
    return order  # type: ignore[return-value]


@tool("write")
def modify_pending_order_payment(db: Store, order_id: str, payment_method_id: str) -> OrderDetails:
    """Pay a pending order with another of the customer's payment methods; the old one is refunded.

    Args:
        order_id: The order id, e.g. "#W1234567".
        payment_method_id: The new payment method, e.g. "credit_card_1234567"; must differ from the current one.
    """
    current = _order(db, order_id)
    _require_status(current, PENDING, "change the payment method of")
    paid = _net_paid(current)
    if len(paid) != 1:
        raise ToolError(
            f"order {order_id} was paid with {len(paid)} methods; only single-method orders can switch"
        )
    ((old_id, amount),) = paid.items()
    if payment_method_id == old_id:
        raise ToolError(f"order {order_id} is already paid with {payment_method_id}")
    _require_cover(_payment_method(db, current["user_id"], payment_method_id), amount)
    order = db.edit("orders", order_id)
    _charge(db, order, payment_method_id, amount)
    _charge(db, order, old_id, -amount)
    return order  # type: ignore[return-value]


@tool("write")
def modify_pending_order_items(
    db: Store, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
) -> OrderDetails:
    """Swap items of a pending order for other variants of the same products (only once per order).

    Args:
        order_id: The order id, e.g. "#W1234567".
        item_ids: Item ids in the order to change, e.g. ["1008292230"].
        new_item_ids: The new variants' item ids, in the same order as item_ids.
        payment_method_id: The customer's payment method that pays or receives the price difference.
    """
    current = _order(db, order_id)
    _require_status(current, ("pending",), "modify the items of")
    difference, chosen = _swap_prices(db, current, item_ids, new_item_ids)
    _require_cover(_payment_method(db, current["user_id"], payment_method_id), difference)
    order = db.edit("orders", order_id)
    remaining = list(item_ids)
    for item in order["items"]:
        if item["item_id"] in remaining:
            new_id = new_item_ids[remaining.index(item["item_id"])]
            remaining[remaining.index(item["item_id"])] = None  # type: ignore[call-overload]
            item.update(
                item_id=new_id, price=chosen[new_id]["price"], options=dict(chosen[new_id]["options"])
            )
    _charge(db, order, payment_method_id, difference)
    order["status"] = "pending (items modified)"
    return order  # type: ignore[return-value]


@tool("write")
def return_delivered_order_items(
    db: Store, order_id: str, item_ids: list[str], payment_method_id: str
) -> OrderDetails:
    """Request the return of items of a delivered order; the refund goes to payment_method_id.

    Args:
        order_id: The order id, e.g. "#W1234567".
        item_ids: Item ids of the order to return, e.g. ["1008292230"].
        payment_method_id: The original payment method of the order or one of the customer's gift cards.
    """
    current = _order(db, order_id)
    _require_status(current, ("delivered",), "return items of")
    _check_items_exist(current, item_ids)
    method = _payment_method(db, current["user_id"], payment_method_id)
    if payment_method_id != _original_payment_method(current) and method["source"] != "gift_card":
        raise ToolError(
            f"refunds go to the original payment method ({_original_payment_method(current)}) "
            f"or a gift card; {payment_method_id} is neither"
        )
    prices = {item["item_id"]: item["price"] for item in current["items"]}
    refund = round(sum(prices[i] for i in item_ids), 2)
    order = db.edit("orders", order_id)
    order["status"] = "return requested"
    order["return_info"] = {
        "item_ids": sorted(item_ids),
        "payment_method_id": payment_method_id,
        "refund_amount": refund,
    }
    return order  # type: ignore[return-value]


@tool("write")
def exchange_delivered_order_items(
    db: Store, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
) -> OrderDetails:
    """Request an exchange of delivered items for other variants of the same products.

    Args:
        order_id: The order id, e.g. "#W1234567".
        item_ids: Item ids of the order to exchange, e.g. ["1008292230"].
        new_item_ids: The new variants' item ids, in the same order as item_ids.
        payment_method_id: The customer's payment method that pays or receives the price difference.
    """
    current = _order(db, order_id)
    _require_status(current, ("delivered",), "exchange items of")
    difference, _ = _swap_prices(db, current, item_ids, new_item_ids)
    _require_cover(_payment_method(db, current["user_id"], payment_method_id), difference)
    order = db.edit("orders", order_id)
    order["status"] = "exchange requested"
    order["exchange_info"] = {
        "item_ids": list(item_ids),
        "new_item_ids": list(new_item_ids),
        "payment_method_id": payment_method_id,
        "price_difference": difference,
    }
    return order  # type: ignore[return-value]


@tool("write")
def modify_user_address(
    db: Store, user_id: str, address1: str, address2: str, city: str, state: str, country: str, zip: str
) -> UserDetails:
    """Change a customer's default address (existing orders keep theirs).

    Args:
        user_id: The customer's user id.
        address1: Street address, e.g. "123 Main St".
        address2: Apartment, suite etc.; "" if none.
        city: City.
        state: State code, e.g. "CA".
        country: Country, e.g. "USA".
        zip: Zip code, e.g. "94103".
    """
    _user(db, user_id)
    if not address1.strip() or not city.strip() or not zip.strip():
        raise ToolError("address1, city and zip must not be empty")
    user = db.edit("users", user_id)
    user["address"] = {
        "address1": address1,
        "address2": address2,
        "city": city,
        "state": state,
        "country": country,
        "zip": zip,
    }
    return user  # type: ignore[return-value]
