"""State-aware grounding on the native domains: tools are anchored on the user's records, their other
arguments belong to the anchor, and users are chosen whose data the walked tool can act on."""

from __future__ import annotations

import random

import pytest

from datagen.blueprint.grounding import (
    Pools,
    StatePlanner,
    anchor_parameter,
    build_value_pool,
    draw_arguments,
    ground_actions,
)
from datagen.blueprint.proposal import grounded_messages
from datagen.blueprint.samplers import FewshotPool, UserIndex, draw_context, load_traits
from datagen.envs.registry import get_domain
from datagen.recipe.datagen import SamplerConfig


@pytest.fixture(scope="module")
def bank():
    domain = get_domain("bank")
    users = UserIndex(domain.new_env(domain.train_seed))
    return domain, users, StatePlanner(domain, users, domain.train_seed)


@pytest.fixture(scope="module")
def retail():
    domain = get_domain("retail")
    users = UserIndex(domain.new_env(domain.train_seed))
    return domain, users, StatePlanner(domain, users, domain.train_seed)


def _ground_chosen(domain, users, planner, tool: str, seed: int):
    """The grounded walk of ``tool`` for the user the planner chooses: (draw, actions, notes)."""
    draw = _draw(domain, users, seed, lambda _, rng: planner.choose_user([tool], rng))
    actions, notes = ground_actions(
        domain, domain.new_env(domain.train_seed), [tool], draw.records, random.Random(seed), 12,
        planner=planner, user_id=draw.user_id,
    )  # fmt: skip
    return draw, actions, notes


def _draw(domain, users, seed: int, choose_user=None):
    return draw_context(
        domain,
        users,
        random.Random(seed),
        seed,
        SamplerConfig(),
        FewshotPool([], 1),
        load_traits(),
        choose_user,
    )


def test_a_customers_transactions_are_found_through_their_accounts(bank):
    _, users, _ = bank
    customer = users.user_ids[0]
    related = users.related(customer)
    accounts = {k for t, k in related if t == "accounts"}
    transactions = [k for t, k in related if t == "transactions"]
    assert accounts and transactions
    assert all(users.tables["transactions"][k]["account_id"] in accounts for k in transactions)


def test_the_anchor_is_the_record_a_tool_acts_on(bank, retail):
    domain, users, _ = bank
    assert anchor_parameter(domain.tool("unblock_card"), users) == ("card_id", "cards")
    assert anchor_parameter(domain.tool("transfer_between_accounts"), users) == (
        "from_account_id",
        "accounts",
    )
    assert anchor_parameter(domain.tool("add_payee"), users) is None  # acts on the customer only
    domain, users, _ = retail
    assert anchor_parameter(domain.tool("exchange_delivered_order_items"), users) == ("order_id", "orders")


def test_the_planner_learns_which_states_each_tool_acts_on(bank, retail):
    _, _, planner = bank
    assert planner.viable("unblock_card") == {"blocked"}
    assert planner.viable("cancel_scheduled_transfer") == {"scheduled"}
    assert "blocked" not in planner.viable("block_card")
    _, _, planner = retail
    assert planner.viable("exchange_delivered_order_items") == {"delivered"}
    assert planner.viable("cancel_pending_order") <= {"pending", "pending (items modified)"}
    assert planner.viable("modify_user_address") == frozenset()  # no anchor: any user will do


@pytest.mark.parametrize("tool", ["unblock_card", "cancel_scheduled_transfer"])
def test_rare_states_are_grounded_when_the_user_is_chosen_for_them(bank, tool):
    """Few customers have a blocked card or a scheduled transfer: a random one rarely can serve the tool."""
    domain, users, planner = bank

    def grounded(seed: int, chosen: bool) -> bool:
        draw = _draw(
            domain, users, seed, (lambda _, rng: planner.choose_user([tool], rng)) if chosen else None
        )
        actions, _ = ground_actions(
            domain, domain.new_env(domain.train_seed), [tool], draw.records, random.Random(seed), 12,
            planner=planner, user_id=draw.user_id,
        )  # fmt: skip
        return bool(actions)

    with_choice = sum(grounded(seed, True) for seed in range(12))
    without = sum(grounded(seed, False) for seed in range(12))
    assert with_choice >= 11 and without <= 6, (with_choice, without)


def test_exchange_arguments_belong_to_the_order_and_its_products(retail):
    domain, users, planner = retail
    tool = "exchange_delivered_order_items"
    built = 0
    for seed in range(10):
        draw, actions, _ = _ground_chosen(domain, users, planner, tool, seed)
        if not actions:
            continue
        built += 1
        assert domain.tool(actions[0]["name"]).kind == "read"  # identity first, as the policy asks
        args = next(a for a in actions if a["name"] == tool)["arguments"]
        order = users.tables["orders"][args["order_id"]]
        items = {i["item_id"]: i["product_id"] for i in order["items"]}
        assert set(args["item_ids"]) <= set(items) and len(args["item_ids"]) == len(args["new_item_ids"])
        for old, new in zip(args["item_ids"], args["new_item_ids"], strict=True):
            assert new != old and new in users.tables["products"][items[old]]["variants"]
    assert built >= 9


def test_a_flight_change_swaps_in_a_searched_flight_on_the_same_route():
    """The new itinerary is the current one with one flight replaced by an alternative the flight
    search (a read tool filled from the reservation) returned: the same route, on one of the
    reservation's travel days."""
    domain = get_domain("airline")
    users = UserIndex(domain.new_env(domain.train_seed))
    planner = StatePlanner(domain, users, domain.train_seed)
    flights = users.tables["flights"]
    swapped = grounded = 0

    def route(number: str) -> tuple[str, str]:
        return flights[number]["origin"], flights[number]["destination"]

    for seed in range(20):
        draw = _draw(domain, users, seed)
        actions, _ = ground_actions(
            domain, domain.new_env(domain.train_seed), ["update_reservation_flights"], draw.records,
            random.Random(seed), 12, planner=planner, user_id=draw.user_id,
        )  # fmt: skip
        if not any(a["name"] == "update_reservation_flights" for a in actions):
            continue
        grounded += 1
        args = next(a for a in actions if a["name"] == "update_reservation_flights")["arguments"]
        current = users.tables["reservations"][args["reservation_id"]]["flights"]
        assert len(args["flights"]) == len(current)
        for old, new in zip(current, args["flights"], strict=True):
            if old["flight_number"] != new["flight_number"]:
                swapped += 1
                assert route(old["flight_number"]) == route(new["flight_number"])
                assert new["date"] in {f["date"] for f in current}
    assert grounded >= 8 and swapped >= 5, (grounded, swapped)


@pytest.mark.parametrize(
    "tool",
    ["update_reservation_baggages", "add_travel_insurance", "update_reservation_cabin", "cancel_reservation"],
)
def test_grounded_airline_actions_keep_the_policy(tool):
    """The walk keeps only candidates that break no policy rule: a paid-bag count the allowance
    leaves (R5), a reservation inside the insurance window (R8), never a certificate for a change
    (R10), a cancellation the policy allows (R6). Before, 17 of 30 demo drafts broke one of these
    and Phase 1's policy stage rejected them."""
    from datagen.blueprint.validators import validate_execution, validate_policy
    from datagen.envs.base import ToolCallModel

    domain = get_domain("airline")
    users = UserIndex(domain.new_env(domain.train_seed))
    planner = StatePlanner(domain, users, domain.train_seed)
    grounded = 0
    for seed in range(10):
        draw, actions, notes = _ground_chosen(domain, users, planner, tool, seed)
        if not any(a["name"] == tool for a in actions):
            continue
        grounded += 1
        execution = validate_execution(
            [ToolCallModel.model_validate(a) for a in actions], domain, domain.train_seed
        )
        assert execution.ok, execution.reasons
        assert validate_policy(execution).ok, (actions, validate_policy(execution).reasons)
    assert grounded >= 3, grounded


def test_a_walk_never_undoes_itself(bank):
    """A walk of block_card then unblock_card must not unblock the card it just blocked: the draft
    would change nothing and the execution stage rejects it."""
    from datagen.blueprint.validators import validate_execution
    from datagen.envs.base import ToolCallModel

    domain, users, planner = bank
    for seed in range(10):
        draw = _draw(domain, users, seed, lambda _, rng: planner.choose_user(["block_card"], rng))
        actions, _ = ground_actions(
            domain, domain.new_env(domain.train_seed), ["block_card", "unblock_card"], draw.records,
            random.Random(seed), 12, planner=planner, user_id=draw.user_id,
        )  # fmt: skip
        if actions:
            execution = validate_execution(
                [ToolCallModel.model_validate(a) for a in actions], domain, domain.train_seed
            )
            assert execution.ok, (actions, execution.reasons)


def test_made_up_text_never_replaces_dates_or_codes():
    """Exploring tries new free text (an address) but draws dates and codes from the data."""
    domain = get_domain("airline")
    spec = domain.tool("update_reservation_flights")
    users = UserIndex(domain.new_env(domain.train_seed))
    reservation = next(iter(users.tables["reservations"]))
    pool = Pools(build_value_pool([users.record("reservations", reservation)], users.refs), users.refs)
    for seed in range(20):
        args = draw_arguments(spec, pool, random.Random(seed), explore=True)
        assert all(not flight["date"].startswith("new ") for flight in args.get("flights", []))


def test_examples_show_no_outputs_when_the_task_has_none():
    domain = get_domain("retail")
    users = UserIndex(domain.new_env(domain.train_seed))
    draw = _draw(domain, users, 0)
    draw.fewshot = [{"id": "x", "instruction": "Cancel it.", "actions": [], "outputs": ["42"]}]
    without = grounded_messages(draw, "system", [], [], with_outputs=False)[-1]["content"]
    with_outputs = grounded_messages(draw, "system", [], [], with_outputs=True)[-1]["content"]
    assert '"outputs"' not in without and '"outputs"' in with_outputs
