"""Tool arguments are validated by the tools' argument models: money is money (positive, whole cents,
finite, bounded), τ²'s calculate does bounded work, and a domain name is a whole-name match."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from datagen.envs.registry import get_domain
from datagen.envs.scaffold import scaffold_domain
from datagen.envs.tau2.toolspecs import calculate

NOT_MONEY = [1e-9, 0.001, 12.345, 0.005, 1e307, -5, 0, math.inf, math.nan, 10**400]


def _before(domain_name: str, task_id: str, tool: str):
    """The episode state just before a gold task calls ``tool``, and that gold call."""
    domain = get_domain(domain_name)
    task = next(t for t in domain.gold_tasks if t.id == task_id)
    index = next(i for i, a in enumerate(task.actions) if a.name == tool)
    env = domain.env_for_task(task)
    assert all(o.ok for o in env.replay(task.actions[:index]))
    return env, task.actions[index].model_dump()


@pytest.mark.parametrize(
    "domain_name, task_id, tool, field",
    [
        ("bank", "bank_001", "transfer_between_accounts", "amount"),
        ("bank", "bank_007", "transfer_to_payee", "amount"),
        ("bank", "bank_008", "set_card_spending_limit", "daily_limit"),
        ("airline", "airline-eval-compensation-delayed", "send_certificate", "amount"),
    ],
)
@pytest.mark.parametrize("amount", NOT_MONEY, ids=repr)
def test_an_amount_that_is_not_money_is_a_clean_tool_error(domain_name, task_id, tool, field, amount):
    env, gold = _before(domain_name, task_id, tool)
    state = env.state_hash()
    observation = env.call({**gold, "arguments": {**gold["arguments"], field: amount}})
    assert not observation.ok
    assert observation.content.startswith(f"Error: invalid arguments for {tool}: {field}:"), (
        observation.content
    )
    assert env.state_hash() == state
    assert env.call(gold).ok, "the gold amount itself is money"


@pytest.mark.parametrize("amount", NOT_MONEY[:4], ids=repr)
def test_a_payment_split_amount_is_money_too(amount):
    env, gold = _before("airline", "airline-eval-book-direct-economy", "book_reservation")
    split = {**gold["arguments"]["payment_methods"][0], "amount": amount}
    observation = env.call({**gold, "arguments": {**gold["arguments"], "payment_methods": [split]}})
    assert not observation.ok and "invalid arguments for book_reservation: payment_methods.0.amount" in (
        observation.content
    )


def test_to_cents_refuses_sub_cent_amounts_for_direct_callers():
    from datagen.envs.bank.ledger import to_cents
    from datagen.envs.tools import ToolError

    assert to_cents(250.75) == 25075 and to_cents(12) == 1200
    for amount in (1e-9, 0.001, 12.345):
        with pytest.raises(ToolError, match="whole cents"):
            to_cents(amount)


@pytest.mark.parametrize(
    "expression",
    [
        "((9**999)**999)**999",  # ran for minutes inside a synchronous tool call
        "(2**999)*(2**999)*(2**999)*(2**999)*(2**999)",
        "9**999*9**999",
        "(10**999)**5",
    ],
)
@pytest.mark.timeout(60)  # a hang guard, not a speed check: unbounded, the first took minutes
def test_calculate_refuses_results_too_large_before_computing_them(expression: str):
    with pytest.raises(ValueError, match="too large"):
        calculate(expression)


def test_calculate_still_answers_what_tau2_answers():
    assert calculate("2 + 3 * 4") == "14.0"
    assert calculate("10**400 / 10**399") == "10.0"  # big intermediates a division brings back
    assert calculate("(1200 - 200) / 3") == "333.33"
    with pytest.raises(ValueError, match="Invalid characters"):
        calculate("'a'*10**9")


@pytest.mark.parametrize("name", ["library\n", "library\r\n", "lib rary", "Library", "1lib", ""])
def test_a_domain_name_must_match_in_whole(tmp_path: Path, name: str):
    with pytest.raises(ValueError, match="domain name must be"):
        scaffold_domain(name, tmp_path)
    assert not any(tmp_path.iterdir())
