"""Where each episode's connection comes from, so that every episode starts from the same declared state.

- an MCP URL server keeping its state per session (``start: session``): a fresh session per episode;
- an MCP stdio server: one process per concurrent episode (a stdio server serves one client), kept
  for later episodes and brought back to the initial state before each one: by a restore ``command``
  (run for that process's slot, e.g. copying a database file), by a reset ``call``, or by starting
  it anew (``restart``, and ``session``: a stdio server's session is its process);
- a URL server with one global state (``command``/``call``): one episode at a time;
- an OpenEnv server: a WebSocket session per episode, started by its ``reset``.

Everything here runs on the background loop (:mod:`datagen.envs.remote.loop`).
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from datagen.envs.remote.connections import McpConnection, OpenEnvConnection, http_target, stdio_target
from datagen.envs.remote.loop import RemoteError
from datagen.envs.serve.sessions import StartState
from datagen.recipe.remote_env import McpEnv, OpenEnvEnv, ResetCall, Restart, RestoreCommand

log = logging.getLogger(__name__)


@dataclass
class Lease:
    """One episode's hold on a connection; ``release`` hands it back (or closes it)."""

    connection: Any
    pool: Any
    slot: Any = None
    broken: bool = False  # a request of the episode failed or timed out: never hand this server on

    async def release(self) -> None:
        await self.pool.release(self)


def _with_query(url: str, start: StartState) -> str:
    query = {k: v for k, v in (("seed", start.seed), ("task", start.task_id)) if v is not None}
    if not query:
        return url
    parts = urlsplit(url)
    joined = "&".join(p for p in (parts.query, urlencode(query)) if p)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))


@dataclass
class Slot:
    index: int
    folder: Path
    connection: McpConnection | None = None
    dirty: bool = False
    busy: bool = False
    log: Any = None
    start: StartState | None = None  # what the server was started for (with seeds: its seed/task)


@dataclass
class McpServers:
    spec: McpEnv
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="apigen-mcp-")))
    slots: list[Slot] = field(default_factory=list)
    seeds: bool = False  # pass each episode's seed/task to the server (set once the server is known)
    _http: Any = None  # one HTTP client for every session of a URL server (made on the loop)

    def _url_target(self, url: str) -> Any:
        if self._http is None:
            import httpx2

            self._http = httpx2.AsyncClient(timeout=self.spec.timeout_s)
        return http_target(url, self._http)

    @property
    def what(self) -> str:
        return f"MCP server {self.spec.url or ' '.join(self.spec.command or [])!r}"

    def _format(self, words: list[str], slot: Slot) -> list[str]:
        return [w.replace("{slot_dir}", str(slot.folder)).replace("{slot}", str(slot.index)) for w in words]

    async def acquire(self, start: StartState) -> Lease:
        spec = self.spec
        if spec.url is not None and not isinstance(spec.start, (RestoreCommand, ResetCall)):
            url = _with_query(spec.url, start) if self.seeds else spec.url
            return Lease(await McpConnection(self._url_target(url), self.what).open(), self)
        slot = next((s for s in self.slots if not s.busy), None)
        if slot is None:
            if spec.url is not None and self.slots:
                raise RemoteError(
                    f"{self.what} keeps one global state and another episode holds it; declare the server by "
                    "`command:` so that every concurrent episode gets its own process, or run one at a time"
                )
            if len(self.slots) >= spec.max_processes:
                raise RemoteError(
                    f"all {spec.max_processes} processes of {self.what} are busy (env.max_processes)"
                )
            slot = Slot(len(self.slots), self.workdir / f"slot{len(self.slots)}")
            slot.folder.mkdir(parents=True, exist_ok=True)
            self.slots.append(slot)
        slot.busy = True
        try:
            await self._prepare(slot, start)
        except BaseException:
            slot.busy = False
            raise
        return Lease(slot.connection, self, slot)

    async def _prepare(self, slot: Slot, start: StartState) -> None:
        """Brings the slot's server to the initial state (starting it if needed)."""
        spec = self.spec
        fresh = isinstance(spec.start, Restart) or spec.start.type == "session"
        if slot.connection is not None and (fresh or (self.seeds and start != slot.start)):
            await slot.connection.close()
            slot.connection = None
        if isinstance(spec.start, RestoreCommand) and (slot.connection is None or slot.dirty):
            await self._restore(slot)
        if slot.connection is None:
            slot.connection = await self._open(slot, start)
            slot.start = start
        elif slot.dirty and isinstance(spec.start, ResetCall):
            answer = await slot.connection.call(spec.start.tool, spec.start.arguments)
            if not answer.ok:
                raise RemoteError(
                    f"{self.what}: the reset call {spec.start.tool} failed: {answer.text[:300]}"
                )
        slot.dirty = False

    async def _open(self, slot: Slot, start: StartState) -> McpConnection:
        spec = self.spec
        if spec.url is not None:
            return await McpConnection(self._url_target(spec.url), self.what).open()
        command = self._format(list(spec.command or []), slot)
        if self.seeds:
            command += [
                w
                for k, v in (("--seed", start.seed), ("--task", start.task_id))
                if v is not None
                for w in (k, str(v))
            ]
        if slot.log is None:
            slot.log = (slot.folder / "server.log").open("a")
        target = stdio_target(command, spec.cwd, spec.environment, slot.log)
        return await McpConnection(target, self.what).open()

    async def _restore(self, slot: Slot) -> None:
        assert isinstance(self.spec.start, RestoreCommand)
        command = self._format(self.spec.start.command, slot)
        done = await asyncio.to_thread(
            subprocess.run,
            command,
            cwd=self.spec.cwd,
            capture_output=True,
            text=True,
            timeout=self.spec.timeout_s,
        )
        if done.returncode != 0:
            raise RemoteError(
                f"the restore command {command} exited with {done.returncode}: {done.stderr.strip()[-300:]}"
            )

    async def release(self, lease: Lease) -> None:
        slot: Slot | None = lease.slot
        if slot is None:
            await lease.connection.close()
            return
        if slot.connection is not None and (lease.broken or slot.connection.client is None):
            await slot.connection.close()  # died, or still busy with a request that timed out: start anew
            slot.connection = None
        slot.dirty, slot.busy = True, False

    async def close(self) -> None:
        for slot in self.slots:
            if slot.connection is not None:
                await slot.connection.close()
                slot.connection = None
            if slot.log is not None:
                slot.log.close()
        if self._http is not None:
            await self._http.aclose()
            self._http = None


@dataclass
class OpenEnvServers:
    spec: OpenEnvEnv
    seeds: bool = False

    @property
    def what(self) -> str:
        return f"OpenEnv server {self.spec.url!r}"

    async def acquire(self, start: StartState) -> Lease:
        reset: dict[str, Any] = {}
        if self.seeds:
            if start.task_id is not None:
                reset = {"task_id": start.task_id, "sandbox": True}
            elif start.seed is not None:
                reset = {"seed": start.seed}
        connection = OpenEnvConnection(self.spec.url, self.what, self.spec.timeout_s)
        return Lease(await connection.open(reset), self)

    async def release(self, lease: Lease) -> None:
        await lease.connection.close()

    async def close(self) -> None:
        pass


def servers_for(spec: McpEnv | OpenEnvEnv) -> McpServers | OpenEnvServers:
    return McpServers(spec) if isinstance(spec, McpEnv) else OpenEnvServers(spec)
