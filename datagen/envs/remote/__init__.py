"""Domains whose tools live elsewhere: an MCP server (a stdio command or a URL) or an OpenEnv server,
declared in a recipe's ``env:`` (:mod:`datagen.recipe.remote_env`) or in an env file, behind the
toolkit's one environment interface (:mod:`.domain`). ``load_remote`` starts or reaches the server
and reads its tools and policy; a server that cannot start or answer is one line, before any engine
starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from datagen.recipe.remote_env import McpEnv, OpenEnvEnv, RemoteEnv

RemoteSpec = McpEnv | OpenEnvEnv


class RemoteLoadError(RuntimeError):
    """A remote server that cannot start or answer; one line for people."""


def load_remote(spec: RemoteSpec) -> Any:
    """The domain of ``spec``: starts or reaches its server once and reads its tools and policy."""
    from datagen.envs.remote.domain import RemoteDomain
    from datagen.envs.remote.loop import RemoteError, background
    from datagen.envs.remote.servers import servers_for
    from datagen.envs.serve.sessions import StartState

    servers = servers_for(spec)

    async def describe() -> Any:
        lease = await servers.acquire(StartState())
        try:
            return await lease.connection.describe()
        finally:
            await lease.release()

    try:
        description = background().run(describe(), spec.start_timeout_s, servers.what)
    except RemoteError as exc:
        raise RemoteLoadError(f"env {spec.name!r}: {exc}; check that the server starts and answers") from None
    if not description.tools:
        raise RemoteLoadError(f"env {spec.name!r}: {servers.what} lists no tools")
    return RemoteDomain(spec, description, servers)


def parse_remote(data: Any, source: str) -> RemoteSpec:
    """An env declaration (the mapping under a recipe's ``env:``) as its typed spec."""
    from datagen.recipe import RecipeError, explain

    try:
        return TypeAdapter(RemoteEnv).validate_python(data)
    except ValidationError as exc:
        raise RecipeError(explain(exc, source)) from None


def read_env_file(path: Path) -> RemoteSpec:
    """A YAML file holding an env declaration, alone or as the ``env:`` of a whole recipe."""
    from datagen.recipe import RecipeError, read_recipe_data

    data = read_recipe_data(path)
    found = data.get("env", data) if "source" not in data else data
    if not isinstance(found, dict):
        raise RecipeError(
            f"{path}: expected an env declaration ({{source: mcp|openenv, ...}}), found {found!r}"
        )
    return parse_remote(found, str(path))
