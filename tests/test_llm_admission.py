"""Admission in front of one engine: priority order, the prefill budget, the KV budget, the ceiling,
cancelled waiters, and the prefix estimate (the real engine's side is in test_llm_vllm.py)."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from datagen.llm.admission import (
    Admission,
    EngineLimits,
    PrefixEstimator,
    Priority,
    StepModel,
    current_priority,
    request_priority,
)


def _gate(step=None, kv=None, seqs=None, ceiling=64, block=4, whole_prefill=False) -> Admission:
    return Admission(ceiling, EngineLimits(step, kv, seqs, block_size=block, whole_prefill=whole_prefill))


async def _hold(gate, ticket, order, release: asyncio.Event, prefilled: asyncio.Event | None = None):
    async with gate.slot(ticket):
        order.append(ticket.priority)
        if prefilled is not None:
            await prefilled.wait()
            ticket.prefilled()
        await release.wait()


def test_waiting_requests_go_in_priority_order_and_first_come_within_one():
    async def run():
        gate = _gate(ceiling=1)
        order: list[tuple[int, int]] = []
        release = asyncio.Event()

        async def one(priority: int, index: int, hold: bool = False):
            ticket = gate.ticket(None, max_tokens=8, n=1, priority=priority)
            async with gate.slot(ticket):
                order.append((priority, index))
                if hold:
                    await release.wait()

        first = asyncio.create_task(one(Priority.PROPOSAL, 0, hold=True))
        await asyncio.sleep(0)
        rest = [
            asyncio.create_task(one(p, i))
            for i, p in enumerate([Priority.PROPOSAL, Priority.REVIEW, Priority.DIALOGUE, Priority.REVIEW], 1)
        ]
        await asyncio.sleep(0)
        assert gate.waiting() == 4
        release.set()
        await asyncio.gather(first, *rest)
        return order

    assert asyncio.run(run()) == [(2, 0), (0, 3), (1, 2), (1, 4), (2, 1)]


def test_prompts_wait_for_the_prefill_budget_and_go_once_earlier_ones_are_prefilled():
    async def run():
        gate = _gate(step=50)  # budget: two steps of 50 uncached tokens
        order: list[int] = []
        release, prefilled = asyncio.Event(), asyncio.Event()
        tickets = [
            gate.ticket(list(range(i * 1000, i * 1000 + 60)), max_tokens=4, n=1, priority=0) for i in range(3)
        ]
        tasks = [asyncio.create_task(_hold(gate, t, order, release, prefilled)) for t in tickets]
        await asyncio.sleep(0.01)
        admitted_before = gate.counts.admitted  # 60 + 60 > 100: the second waits for the first's prefill
        prefilled.set()
        await asyncio.sleep(0.01)
        admitted_after = gate.counts.admitted
        release.set()
        await asyncio.gather(*tasks)
        return admitted_before, admitted_after, gate.prefill_tokens, gate.in_flight

    assert asyncio.run(run()) == (1, 3, 0, 0)


def test_an_engine_that_prefills_whole_prompts_keeps_the_prefill_share_until_the_request_ends():
    """Without chunked prefill, a prompt admitted while others decode stalls all of them for its
    whole prefill: new prompts wait for running requests to end, not for their first token."""

    async def run():
        gate = _gate(step=50, whole_prefill=True)
        order: list[int] = []
        first_release, rest_release, prefilled = asyncio.Event(), asyncio.Event(), asyncio.Event()
        tickets = [
            gate.ticket(list(range(i * 1000, i * 1000 + 60)), max_tokens=4, n=1, priority=0) for i in range(3)
        ]
        first = asyncio.create_task(_hold(gate, tickets[0], order, first_release, prefilled))
        await asyncio.sleep(0.01)
        rest = [asyncio.create_task(_hold(gate, t, order, rest_release, prefilled)) for t in tickets[1:]]
        prefilled.set()  # the first request streams its first token and keeps decoding
        await asyncio.sleep(0.01)
        after_first_token = gate.counts.admitted
        first_release.set()  # the first request ends
        await asyncio.sleep(0.01)
        after_end = gate.counts.admitted
        rest_release.set()
        await asyncio.gather(first, *rest)
        return after_first_token, after_end, gate.prefill_tokens, gate.in_flight

    # 60 + 60 > 100: one at a time, each admitted when the one before it has ended
    assert asyncio.run(run()) == (1, 2, 0, 0)


def test_kv_budget_holds_prompt_and_max_tokens_until_the_request_ends():
    async def run():
        gate = _gate(kv=100)
        order: list[int] = []
        release = asyncio.Event()
        big = [
            gate.ticket(list(range(i * 100, i * 100 + 40)), max_tokens=20, n=1, priority=0) for i in range(2)
        ]
        tasks = [asyncio.create_task(_hold(gate, t, order, release)) for t in big]
        await asyncio.sleep(0.01)
        during = gate.counts.admitted
        release.set()
        await asyncio.gather(*tasks)
        return during, gate.kv_tokens

    assert asyncio.run(run()) == (1, 0)


def test_a_request_larger_than_every_budget_still_runs_alone():
    async def run():
        gate = _gate(step=10, kv=10, seqs=1)
        ticket = gate.ticket(list(range(500)), max_tokens=100, n=4, priority=Priority.PROPOSAL)
        async with gate.slot(ticket):
            return gate.in_flight

    assert asyncio.run(run()) == 1


def test_a_cancelled_waiter_leaves_no_share_behind_and_blocks_no_one():
    async def run():
        gate = _gate(ceiling=1)
        release = asyncio.Event()
        order: list[int] = []
        holder = asyncio.create_task(
            _hold(gate, gate.ticket(None, max_tokens=1, n=1, priority=0), order, release)
        )
        await asyncio.sleep(0)
        doomed = asyncio.create_task(
            _hold(gate, gate.ticket(None, max_tokens=1, n=1, priority=0), order, release)
        )
        later = asyncio.create_task(
            _hold(gate, gate.ticket(None, max_tokens=1, n=1, priority=1), order, release)
        )
        await asyncio.sleep(0)
        doomed.cancel()
        release.set()
        await asyncio.gather(holder, later, doomed, return_exceptions=True)
        return order, gate.in_flight, gate.seqs, gate.waiting()

    assert asyncio.run(run()) == ([0, 1], 0, 0, 0)


def test_priority_is_inherited_by_nested_calls_and_tasks():
    async def run():
        seen = []

        async def call():
            seen.append(current_priority())

        with request_priority(Priority.PROPOSAL):
            await call()
            await asyncio.gather(call())
            with request_priority(Priority.REVIEW):
                await call()
        await call()
        return seen

    assert asyncio.run(run()) == [2, 2, 1, 0]


def test_prefix_estimate_counts_whole_shared_blocks_of_prompts_already_sent():
    async def run():
        gate = _gate(block=4)
        shared = list(range(10))  # two whole blocks (8 tokens) and 2 tokens of a third
        first = gate.ticket(shared + [100, 101, 102], max_tokens=1, n=1, priority=0)
        async with gate.slot(first):
            pass
        second = gate.ticket(shared + [200, 201, 202], max_tokens=1, n=1, priority=0)
        return first.estimated_cached, second.estimated_cached, second.uncached

    assert asyncio.run(run()) == (0, 8, 5)


@given(st.lists(st.integers(0, 5), min_size=0, max_size=40), st.lists(st.integers(0, 5), max_size=40))
def test_prefix_estimate_never_exceeds_the_true_common_prefix(sent, asked):
    estimator = PrefixEstimator(block_size=4, capacity_blocks=None)
    estimator.remember(estimator.block_hashes(sent))
    common = 0
    while common < min(len(sent), len(asked)) and sent[common] == asked[common]:
        common += 1
    cached = estimator.cached_tokens(estimator.block_hashes(asked))
    assert cached == common // 4 * 4  # whole blocks of the common prefix, never more


def _roofline(fixed: float, per_sequence: float, batch: int) -> float:
    """A decode step: the weights' read until the batch's compute takes longer."""
    return max(fixed, per_sequence * batch)


def _fitted(
    fixed: float, per_sequence: float, batches=(1, 2, 4, 8, 16, 32, 64), steps: int = 30
) -> StepModel:
    model = StepModel()
    for _ in range(steps):
        for batch in batches:  # every running request gets a token each step
            model.observe(batch, _roofline(fixed, per_sequence, batch), batch)
    return model


def test_the_knee_is_the_smallest_concurrency_with_nine_tenths_of_the_best_throughput():
    # 0.05 s a step until 25 sequences, then 2 ms a sequence: 500 sequences/s at best, from 25 on
    model = _fitted(fixed=0.05, per_sequence=0.002)
    rates = {round(batch): round(rate, 6) for batch, rate in model.throughput()}
    assert (rates[16], rates[32], rates[64]) == (320, 500, 500)
    assert model.knee() == 32  # 16 sequences make 320/s, below 450
    assert _fitted(fixed=0.05, per_sequence=0.002, batches=(1, 8, 24, 48)).knee() == 24  # 480/s of 500


def test_no_knee_before_two_concurrencies_are_known_or_while_throughput_still_grows():
    assert StepModel().knee() is None  # nothing seen
    assert _fitted(0.05, 0.002, batches=[8]).knee() is None  # one batch size
    assert _fitted(0.05, 0.002, batches=[8, 64], steps=5).knee() is None  # too few steps of each
    assert _fitted(0.05, 0.002, batches=(1, 2, 4, 8, 16)).knee() is None  # still growing at 16


def test_the_knee_follows_the_engine_as_its_steps_change():
    model = _fitted(fixed=0.05, per_sequence=0.002)
    for _ in range(100):  # contexts grew: each sequence now costs four times as much
        for batch in (1, 2, 4, 8, 16, 32, 64):
            model.observe(batch, _roofline(0.05, 0.008, batch), batch)
    assert model.knee() == 8  # 0.05 s until 6 sequences: 8 make 125/s of the best 125


def _proposal_order(gate: Admission, held: list[bool] | None = None) -> tuple[list[int], list[int]]:
    """Admits a running dialogue, then a proposal and a review behind it; returns the priorities in
    the order admitted while the dialogue runs and after it ends."""

    async def run():
        order: list[int] = []
        release, end = asyncio.Event(), asyncio.Event()
        running = asyncio.create_task(
            _hold(gate, gate.ticket(None, max_tokens=1, n=1, priority=Priority.DIALOGUE), order, end)
        )
        await asyncio.sleep(0)
        waiting = [
            asyncio.create_task(_hold(gate, gate.ticket(None, max_tokens=1, n=1, priority=p), order, release))
            for p in (Priority.PROPOSAL, Priority.REVIEW)
        ]
        await asyncio.sleep(0.01)
        during = list(order)
        if held is not None:
            held[0] = False
            gate.wake()
            await asyncio.sleep(0.01)
        end.set()
        release.set()
        await asyncio.gather(running, *waiting)
        return during, order

    return asyncio.run(run())


def test_new_proposals_wait_while_a_hold_says_phase_2_has_work_waiting():
    gate = _gate()
    held = [True]
    lift = gate.hold_proposals_while(lambda: held[0])
    during, order = _proposal_order(gate, held)
    assert during == [Priority.DIALOGUE, Priority.REVIEW]  # the review goes; the proposal is held
    assert order == [Priority.DIALOGUE, Priority.REVIEW, Priority.PROPOSAL]  # and goes once the hold ends
    lift()
    assert _proposal_order(gate)[0] == [Priority.DIALOGUE, Priority.PROPOSAL, Priority.REVIEW]


def test_a_held_proposal_still_runs_when_nothing_else_is_in_flight():
    async def run():
        gate = _gate()
        gate.hold_proposals_while(lambda: True)
        async with gate.slot(gate.ticket(None, max_tokens=1, n=1, priority=Priority.PROPOSAL)):
            return gate.in_flight

    assert asyncio.run(run()) == 1


def test_proposals_wait_while_the_sequences_in_flight_reach_the_engines_knee():
    gate = _gate()
    gate.steps = _fitted(fixed=0.01, per_sequence=0.01)  # compute-bound from one sequence on
    assert gate.knee() == 1
    during, order = _proposal_order(gate)
    assert during == [Priority.DIALOGUE, Priority.REVIEW]  # one sequence runs: the engine is at its knee
    assert order[-1] == Priority.PROPOSAL
    gate.steps = _fitted(fixed=0.05, per_sequence=0.002)  # knee 32: room for the proposal
    assert _proposal_order(gate)[0] == [Priority.DIALOGUE, Priority.PROPOSAL, Priority.REVIEW]


def test_the_knee_stays_within_the_engines_max_num_seqs():
    gate = _gate(seqs=16)
    gate.steps = _fitted(fixed=0.05, per_sequence=0.002)
    assert gate.knee() == 16


def test_steps_stalled_by_prefills_lower_the_knee():
    """On an engine that prefills whole prompts, more requests bring more prefills that stall every
    step: the tokens per second peak and fall long before decode batching would stop paying."""
    model = StepModel()
    for _ in range(30):
        for running in (1, 2, 4, 8, 16, 32):
            stalled = 0.05 * (running / 8) ** 2  # prefills of the requests that come and go
            model.observe(running, _roofline(0.05, 0.002, running) + stalled, running)
    rates = {round(r): round(rate) for r, rate in model.throughput()}
    assert rates == {1: 20, 2: 38, 4: 64, 8: 80, 16: 64, 32: 37}  # decode alone would reach 500/s
    assert model.knee() == 8
