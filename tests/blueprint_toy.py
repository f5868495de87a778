"""A tiny shop domain for Phase 1 tests: users, orders, two write tools and a cross-user policy check."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Literal, TypedDict

from pydantic import BaseModel, ConfigDict

from datagen.envs.base import NativeDomain
from datagen.envs.policy import checks_in, policy_check
from datagen.envs.references import References
from datagen.envs.store import Store
from datagen.envs.tools import ToolError, tool, tools_in


class User(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    address: str


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: str
    price: float


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str
    status: Literal["pending", "delivered", "cancelled", "returned"]
    items: list[Item]


class ShopDB(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: dict[str, User]
    orders: dict[str, Order]


class OrderInfo(TypedDict):
    order_id: str
    user_id: str
    status: str


def _tools() -> types.ModuleType:
    module = types.ModuleType("shop_tools")

    @tool("read")
    def get_order(db: Store, order_id: str) -> OrderInfo:
        """Look up an order.

        Args:
            order_id: The order id, such as "o1".
        """
        record = db.get("orders", order_id)
        if record is None:
            raise ToolError(f"order {order_id} not found")
        return {"order_id": order_id, "user_id": record["user_id"], "status": record["status"]}

    @tool("write")
    def cancel_order(
        db: Store, order_id: str, reason: Literal["no longer needed", "ordered by mistake"]
    ) -> OrderInfo:
        """Cancel a pending order.

        Args:
            order_id: The order to cancel.
            reason: Why the customer cancels.
        """
        if not db.has("orders", order_id):
            raise ToolError(f"order {order_id} not found")
        record = db.edit("orders", order_id)
        if record["status"] != "pending":
            raise ToolError(f"order {order_id} is {record['status']}; only pending orders can be cancelled")
        record["status"] = "cancelled"
        return {"order_id": order_id, "user_id": record["user_id"], "status": "cancelled"}

    @tool("write")
    def return_order(db: Store, order_id: str) -> OrderInfo:
        """Return a delivered order.

        Args:
            order_id: The order to return.
        """
        if not db.has("orders", order_id):
            raise ToolError(f"order {order_id} not found")
        record = db.edit("orders", order_id)
        if record["status"] != "delivered":
            raise ToolError(f"order {order_id} is {record['status']}; only delivered orders can be returned")
        record["status"] = "returned"
        return {"order_id": order_id, "user_id": record["user_id"], "status": "returned"}

    @tool("write")
    def update_address(db: Store, user_id: str, address: str) -> dict:
        """Change a customer's shipping address.

        Args:
            user_id: The customer.
            address: The new address.
        """
        if not db.has("users", user_id):
            raise ToolError(f"user {user_id} not found")
        db.edit("users", user_id)["address"] = address
        return {"user_id": user_id, "address": address}

    module.get_order, module.cancel_order, module.return_order = get_order, cancel_order, return_order
    module.update_address = update_address
    return module


def _checks() -> types.ModuleType:
    module = types.ModuleType("shop_checks")

    @policy_check("R2", "Act on the orders of one customer only in a conversation.")
    def one_customer(before, trace, after):
        owners = {
            before["orders"][a.arguments["order_id"]]["user_id"]
            for a in trace
            if a.ok and a.kind == "write" and a.arguments.get("order_id") in before["orders"]
        }
        return [f"writes touched orders of {sorted(owners)}"] if len(owners) > 1 else []

    module.one_customer = one_customer
    return module


POLICY = """# Shop policy

R1. Only pending orders can be cancelled with cancel_order; give the reason the customer states.

R2. Act on the orders of one customer only in a conversation.

R3. Delivered orders can be returned with return_order.
"""


def make_shop_domain(tmp_path: Path) -> NativeDomain:
    policy = tmp_path / "shop_policy.md"
    policy.write_text(POLICY)

    def build(seed: int):
        users = {f"u{i}": {"name": f"User {i}", "address": f"{i} Main St"} for i in range(4)}
        orders = {}
        for i in range(4):
            for j, status in enumerate(("pending", "delivered", "pending")):
                orders[f"o{i}{j}"] = {
                    "user_id": f"u{i}",
                    "status": status,
                    "items": [{"item_id": f"i{i}{j}", "price": 10.0 + seed + j}],
                }
        return {"users": users, "orders": orders}

    return NativeDomain(
        name="shop",
        build_database=build,
        db_model=ShopDB,
        tools=tools_in(_tools()),
        policy_path=policy,
        checks=checks_in(_checks()),
        references=References(user_table="users", tables={"users": "user_id", "orders": "order_id"}),
    )


def shop_responder(bad_first_draft: bool = False, judge_scores: tuple[int, int, int, int] = (1, 1, 1, 1)):
    """A scripted model for the shop: drafts a cancel (or return) for the sampled customer, judges
    with fixed scores, and writes feedback. With ``bad_first_draft`` every first draft is broken JSON
    (grounded mode: names an output that is not in the data), so acceptance needs a refinement round."""
    import json
    import re

    judge = dict(
        zip(("correctness", "completeness", "satisfaction", "creativity"), judge_scores, strict=True)
    )

    def values_of(actions_text: str) -> str:
        """The argument values of the numbered calls in a prompt ("1. {call} -> result"), so the
        instruction names what an agent needs and a dialogue on it can be grounded."""
        found: list[str] = []
        for line in actions_text.splitlines():
            head = re.match(r"\d+\. (\{.*?\})(?: -> .*)?$", line.strip())
            if head:
                call = json.loads(head.group(1))
                found += [str(v) for v in call.get("arguments", {}).values() if isinstance(v, str)]
        return ", ".join(dict.fromkeys(found))

    def respond(messages, kwargs):
        system = messages[0]["content"] if messages[0]["role"] == "system" else ""
        last = messages[-1]["content"]
        if system.startswith("You review"):
            return [json.dumps({"reflection": "checked", **judge, "correction": ""})]
        if not system:
            return ["1. Write valid JSON."]
        if "one coherent instruction" in last:
            instruction = f"You want all these changes made ({values_of(last)})."
            return [json.dumps({"thought": "t", "instruction": instruction})]
        if "The ground-truth actions are fixed" in messages[1]["content"]:
            # the first value the first write reports; a made-up output first when bad_first_draft is set
            status = re.search(r'-> \{"[^"]+": "([^"]+)"', messages[1]["content"]).group(1)
            output = "a made-up confirmation code" if bad_first_draft and len(messages) == 2 else status
            actions = messages[1]["content"].split("# The ground-truth actions are fixed", 1)[1]
            instruction = f"You want these changes made ({values_of(actions)})."
            return [json.dumps({"thought": "t", "instruction": instruction, "outputs": [output]})]
        if bad_first_draft and len(messages) == 2:
            return ['{"thought": "cancel", "instruction": "You want']
        user_id = re.search(r"user id (\w+)", "\n".join(m["content"] for m in messages)).group(1)
        text = messages[1]["content"]
        pending = re.findall(r'orders/(o\w+): [^\n]*"status": "pending"', text)
        if pending:
            action = {
                "name": "cancel_order",
                "arguments": {"order_id": pending[0], "reason": "ordered by mistake"},
            }
        else:
            delivered = re.findall(r'orders/(o\w+): [^\n]*"status": "delivered"', text)
            action = {"name": "return_order", "arguments": {"order_id": (delivered or ["o99"])[0]}}
        return [
            json.dumps(
                {
                    "thought": f"help {user_id}",
                    "instruction": f"You are {user_id}; change your order.",
                    "actions": [action],
                    "outputs": [],
                }
            )
        ]

    return respond
