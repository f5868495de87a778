"""Which server a request goes to when one model is served from several base URLs.

**Prefix affinity.** Every turn of a conversation repeats the turns before it, and a vLLM server with
prefix caching keeps their KV blocks: sent to the same server, turn k+1 recomputes only what turn k
added. A conversation is recognised by its opening (:func:`affinity_key`: the messages up to and
including the first user message, i.e. the system prompt and the task, which every later turn
repeats unchanged), and its server is chosen by rendezvous hashing (the highest hash of key and URL),
so keys spread evenly and only the keys of a server that leaves move.

**Fall-back.** The conversation's own server is skipped while it is *down* (a request just exhausted
its retries there; it is tried again after ``down_for_s``) or *overloaded* (it has ``slack`` more
requests in flight than the least busy server); then the least busy server takes the request. The
order returned always holds every server, so a request tries each one before the model counts as
unavailable.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

DOWN_FOR_S = 30.0


def affinity_key(messages: Sequence[dict[str, Any]]) -> str:
    """A stable key for the conversation ``messages`` belong to: a hash of its opening (every message
    up to and including the first user message), which later turns of it repeat."""
    opening: list[dict[str, Any]] = []
    for message in messages:
        opening.append(message)
        if message.get("role") == "user":
            break
    text = json.dumps(opening, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _weight(key: str, url: str) -> int:
    digest = hashlib.blake2b(f"{key}\n{url}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class Router:
    """In-flight counts and health of a model's servers, and the order to try them in per request."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        slack: int,
        down_for_s: float = DOWN_FOR_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError("expected at least one server URL, found none")
        if slack < 1:
            raise ValueError(f"expected slack >= 1, found {slack}")
        self.urls = list(dict.fromkeys(urls))
        self.slack = slack
        self.down_for_s = down_for_s
        self._clock = clock
        self.in_flight = dict.fromkeys(self.urls, 0)
        self._down_until = dict.fromkeys(self.urls, 0.0)

    def home(self, key: str) -> str:
        """The server a conversation belongs to when every server is up and none is overloaded."""
        return max(self.urls, key=lambda url: _weight(key, url))

    def order(self, key: str) -> list[str]:
        """Every server, in the order a request with affinity ``key`` tries them (see the module doc)."""
        now = self._clock()
        ranked = sorted(self.urls, key=lambda url: _weight(key, url), reverse=True)
        up = [url for url in ranked if self._down_until[url] <= now]
        down = [url for url in ranked if url not in up]
        if not up:
            return down  # all recently failed: still try each, the conversation's own server first
        home = up[0]
        least = min(up, key=lambda url: self.in_flight[url])  # ties: the better-ranked server
        first = least if self.in_flight[home] - self.in_flight[least] >= self.slack else home
        rest = sorted((url for url in up if url != first), key=lambda url: self.in_flight[url])
        return [first, *rest, *down]

    @contextmanager
    def busy(self, url: str) -> Iterator[None]:
        """Counts a request in flight on ``url`` for as long as the block runs."""
        self.in_flight[url] += 1
        try:
            yield
        finally:
            self.in_flight[url] -= 1

    def mark_down(self, url: str) -> None:
        """``url`` failed after its retries: route around it for ``down_for_s``."""
        self._down_until[url] = self._clock() + self.down_for_s

    def mark_up(self, url: str) -> None:
        self._down_until[url] = 0.0

    def is_down(self, url: str) -> bool:
        return self._down_until[url] > self._clock()
