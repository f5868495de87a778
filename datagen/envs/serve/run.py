"""`apigen-mt envs serve NAME --protocol mcp|openenv`: the command's settings and the server loop.

Everything a flag can get wrong (a domain that does not load, a task it does not have, a recipe or a
model alias that does not exist, ``--stdio`` with OpenEnv) is one line before anything listens.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from apigen_rules.errors import UsageError
from datagen.envs.base import Domain
from datagen.envs.serve.sessions import StartError, StartState, find_task

log = logging.getLogger(__name__)

Protocol = Literal["mcp", "openenv"]


@dataclass(frozen=True)
class ServeSettings:
    protocol: Protocol
    host: str = "127.0.0.1"
    port: int = 8000
    stdio: bool = False
    start: StartState = StartState()
    recipe: Path | None = None  # models by alias, and the simulated user's settings (`simulate.user`)
    user: str | None = None  # the alias of the simulated user's model (OpenEnv)
    max_sessions: int = 64


def check_settings(domain: Domain, settings: ServeSettings) -> None:
    """Raises UsageError for settings the server cannot run with (before it listens)."""
    if settings.stdio and settings.protocol != "mcp":
        raise UsageError("--stdio serves MCP only; OpenEnv is served over HTTP (--host/--port)")
    if settings.start.task_id is not None:
        try:
            find_task(domain, settings.start.task_id)
        except StartError as exc:
            raise UsageError(str(exc)) from None
    if settings.user is not None and settings.protocol != "openenv":
        raise UsageError(
            "--user (a simulated user model) is for --protocol openenv; an MCP client is only an agent"
        )
    if settings.user is not None and settings.recipe is None:
        raise UsageError("--user names a model alias; pass the recipe that declares it with --recipe")


def serve(domain: Domain, settings: ServeSettings) -> int:
    """Runs the server until it is stopped (Ctrl-C, SIGTERM, or the stdio client closing)."""
    check_settings(domain, settings)
    if settings.protocol == "mcp":
        from datagen.envs.serve import mcp

        if settings.stdio:
            asyncio.run(mcp.serve_stdio(domain, settings.start))
            return 0
        return run_http(mcp.http_app(domain, settings.start, settings.host), settings)
    from datagen.envs.serve.openenv import openenv_app, served_models

    models = served_models(settings.recipe, settings.user) if settings.recipe else None
    return run_http(openenv_app(domain, settings.start, models, settings.max_sessions), settings)


def run_http(app: Any, settings: ServeSettings) -> int:
    import uvicorn

    log.info("serving on http://%s:%d (%s)", settings.host, settings.port, settings.protocol)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", ws="websockets-sansio")
    return 0
