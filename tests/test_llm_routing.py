"""Prefix-affine routing over several servers of one model (datagen/llm/routing.py): a conversation
keeps its server while that is up and not overloaded, keys spread evenly, and a server leaving moves
only its own conversations."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datagen.llm.routing import Router, affinity_key

URLS = [f"http://10.0.0.{i}:8000/v1" for i in range(1, 5)]

_text = st.text(max_size=40)
_message = st.fixed_dictionaries({"role": st.sampled_from(["assistant", "tool", "user"]), "content": _text})


@st.composite
def conversations(draw) -> list[dict]:
    """A system prompt, a first user message, then any later turns."""
    opening = [{"role": "system", "content": draw(_text)}, {"role": "user", "content": draw(_text)}]
    return opening + draw(st.lists(_message, max_size=8))


@settings(max_examples=200, deadline=None)
@given(conversations())
def test_every_turn_of_a_conversation_has_the_key_of_its_opening(conversation: list[dict]) -> None:
    keys = {affinity_key(conversation[:end]) for end in range(2, len(conversation) + 1)}
    assert len(keys) == 1


def test_conversations_with_one_system_prompt_but_other_tasks_get_other_keys() -> None:
    system = {"role": "system", "content": "policy"}
    keys = {affinity_key([system, {"role": "user", "content": f"task {i}"}]) for i in range(50)}
    assert len(keys) == 50


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1), st.integers(min_value=0, max_value=3))
def test_the_order_holds_every_server_once_with_the_home_server_first_when_idle(key: str, down: int) -> None:
    router = Router(URLS, slack=4)
    assert router.order(key)[0] == router.home(key)
    router.mark_down(URLS[down])
    order = router.order(key)
    assert sorted(order) == sorted(URLS) and order[-1] == URLS[down]


def test_keys_spread_evenly_and_a_leaving_server_moves_only_its_own_keys() -> None:
    keys = [f"conversation-{i}" for i in range(2000)]
    homes = {key: Router(URLS, slack=4).home(key) for key in keys}
    shares = Counter(homes.values())
    assert set(shares) == set(URLS) and min(shares.values()) > 2000 / 4 * 0.8, shares
    smaller = Router(URLS[:-1], slack=4)
    moved = [key for key in keys if homes[key] != URLS[-1] and smaller.home(key) != homes[key]]
    assert moved == []


def test_an_overloaded_home_server_gives_new_requests_to_the_least_busy() -> None:
    router = Router(URLS[:2], slack=4)
    key = "k"
    home = router.home(key)
    other = next(url for url in URLS[:2] if url != home)
    with router.busy(home), router.busy(home), router.busy(home):
        assert router.order(key)[0] == home  # 3 more in flight than the other: still home
        with router.busy(home):
            assert router.order(key) == [other, home]  # 4 more: overloaded
            with router.busy(other):
                assert router.order(key)[0] == home  # the gap is back under the slack
    assert router.in_flight == {home: 0, other: 0}


def test_a_down_server_is_skipped_until_its_time_is_up_and_all_down_still_tries_each() -> None:
    now = [100.0]
    router = Router(URLS[:2], slack=4, down_for_s=30.0, clock=lambda: now[0])
    key = "k"
    home = router.home(key)
    other = next(url for url in URLS[:2] if url != home)
    router.mark_down(home)
    assert router.order(key) == [other, home] and router.is_down(home)
    now[0] += 31.0
    assert router.order(key) == [home, other] and not router.is_down(home)
    router.mark_down(home)
    router.mark_down(other)
    assert router.order(key) == [home, other]  # everything failed recently: home first all the same
    router.mark_up(other)
    assert router.order(key) == [other, home]


def test_a_router_needs_servers_and_a_positive_slack() -> None:
    with pytest.raises(ValueError, match="at least one server"):
        Router([], slack=4)
    with pytest.raises(ValueError, match="slack"):
        Router(URLS, slack=0)
