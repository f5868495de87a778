"""An evaluation's ``--parse``: who reads the agent's tool calls, our parser of its reply text
(``toolkit``) or its OpenAI-compatible server's tool-call parser (``server``;
``datagen.llm.server_parsers`` says which of vLLM's parsers reads each of our formats)."""

from __future__ import annotations

from typing import Any

from apigen_rules.errors import UsageError

#: who reads the agent's tool calls in an evaluation (``--parse``): our parser of its text, or its server's
PARSE_MODES = ("toolkit", "server")


def set_parse_mode(parse: str | None, agent_spec: dict[str, Any]) -> None:
    """Applies an evaluation's ``--parse`` to the agent's model spec (plain recipe data):
    ``server`` reads its calls from the server's ``tool_calls`` (tool_format openai, which needs the
    openai backend); ``toolkit`` from its text, with our parser of its format. A combination that
    cannot work is a UsageError before anything starts."""
    if parse is None:
        return
    tool_format = agent_spec.get("tool_format", "auto")
    if parse == "toolkit":
        if tool_format == "openai":
            raise UsageError(
                "--parse toolkit reads the agent's reply text with our parser, but its tool_format is openai "
                "(the server parses); pass --tool-format hermes|xlam|llama3|python or --parse server"
            )
        return
    if tool_format not in ("auto", "openai"):
        raise UsageError(
            f"--parse server reads the agent's calls from the server's tool_calls, but --tool-format/tool_format "
            f"is {tool_format!r}, which our parser reads from text; drop --tool-format or use --parse toolkit"
        )
    backend = agent_spec.get("backend", "vllm")
    if backend != "openai":
        raise UsageError(
            f"--parse server needs the agent behind an OpenAI-compatible server started with a tool parser "
            f"(scripts/serve_vllm.sh MODEL); found backend {backend!r}: pass --backend openai --base-url URL"
        )
    agent_spec["tool_format"] = "openai"
