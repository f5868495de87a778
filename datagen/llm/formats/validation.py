"""Decoded calls against the offered tools: known names, arguments valid under each tool's schema."""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import Any

import jsonschema

from datagen.llm.formats.base import ParsedOutput
from datagen.llm.types import ParseError, ToolCall, ToolSchema

logger = logging.getLogger(__name__)


def tool_function(tool: ToolSchema) -> dict[str, Any]:
    """The ``function`` part of an OpenAI tool schema (bare function schemas are accepted too)."""
    return tool.get("function", tool)


def validate_calls(calls: list[ToolCall], tools: list[ToolSchema] | None) -> ParseError | None:
    """Check names against the offered tools and arguments against their JSON schemas."""
    if not tools:
        return None
    functions = {tool_function(tool)["name"]: tool_function(tool) for tool in tools}
    for call in calls:
        function = functions.get(call["name"])
        if function is None:
            return ParseError(
                "unknown_tool",
                f"the model called {call['name']!r}; expected one of {sorted(functions)}",
                json.dumps(call, ensure_ascii=False),
            )
        problem = _schema_problem(call["arguments"], function.get("parameters") or {"type": "object"})
        if problem:
            return ParseError(
                "bad_arguments", f"{call['name']}: {problem}", json.dumps(call, ensure_ascii=False)
            )
    return None


def with_validation(parsed: ParsedOutput, tools: list[ToolSchema] | None) -> ParsedOutput:
    """``parsed`` with the tool-fit error of its calls, when it was read in full."""
    if parsed.error is not None or not parsed.calls:
        return parsed
    return ParsedOutput(parsed.content, parsed.calls, validate_calls(parsed.calls, tools))


def _schema_problem(arguments: dict[str, Any], schema: dict[str, Any]) -> str | None:
    validator = _validator(json.dumps(schema, sort_keys=True))
    if validator is None:
        return None
    errors = sorted(validator.iter_errors(arguments), key=lambda error: list(error.path))
    if not errors:
        return None
    error = errors[0]
    where = "/".join(str(part) for part in error.path)
    return f"{error.message}" + (f" (at {where})" if where else "")


@lru_cache(maxsize=4096)
def _validator(schema_json: str) -> jsonschema.protocols.Validator | None:
    """A validator per distinct schema: checking a schema against its meta-schema costs far more than
    validating a call, and the same few tool schemas come back on every call of a run."""
    schema = json.loads(schema_json)
    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        # A broken tool schema is the caller's problem, not the model's: do not blame the output.
        logger.debug("skipping argument validation against an invalid schema: %s", exc.message)
        return None
    return validator_class(schema)
