"""One event loop on a daemon thread that owns every remote connection of the process.

The environment interface is synchronous (Phase 1's validators, ``envs check``), the episode loop is
asynchronous (``Environment.acall``), and the protocol clients (``mcp``, ``openenv-core``) are asyncio
code whose connections must stay on the loop that opened them. So they all live here: synchronous
callers wait on :meth:`BackgroundLoop.run`, asynchronous ones await :meth:`BackgroundLoop.arun`
without holding up their own loop. Every request has a deadline; one that passes it raises
:class:`RemoteError`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


class RemoteError(RuntimeError):
    """A remote server that did not answer, answered late or answered nonsense. It fails the job that
    made the request (one error row), never the run."""


class BackgroundLoop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="apigen-remote-envs", daemon=True)
        self._thread.start()

    def _submit(self, coro: Coroutine[Any, Any, T], timeout_s: float | None, what: str):
        async def bounded() -> T:
            try:
                return await asyncio.wait_for(coro, timeout_s)
            except TimeoutError:
                raise RemoteError(f"{what} did not answer within {timeout_s:g}s") from None

        return asyncio.run_coroutine_threadsafe(bounded(), self.loop)

    def run(
        self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None, what: str = "the server"
    ) -> T:
        """Runs ``coro`` on the loop and waits for it (from any thread but the loop's own)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("BackgroundLoop.run was called from its own loop; await the coroutine instead")
        return self._submit(coro, timeout_s, what).result()

    async def arun(
        self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None, what: str = "the server"
    ) -> T:
        """Awaits ``coro`` run on the loop, from another event loop."""
        return await asyncio.wrap_future(self._submit(coro, timeout_s, what))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Starts ``coro`` on the loop and does not wait (closing a connection)."""
        if not self.loop.is_closed():
            asyncio.run_coroutine_threadsafe(coro, self.loop)


@cache
def background() -> BackgroundLoop:
    """The process's one background loop, started on first use."""
    return BackgroundLoop()
