"""What the model under test is shown: BFCL function docs as OpenAI tools or as prompt text."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from evaluation.bfcl.data import Entry, language_of

_TEMPLATES = Path(__file__).parent / "templates"

# BFCL's type names -> JSON-schema types.
_JSON_SCHEMA_TYPE = {
    "dict": "object",
    "object": "object",
    "float": "number",
    "number": "number",
    "double": "number",
    "integer": "integer",
    "long": "integer",
    "short": "integer",
    "byte": "integer",
    "Bigint": "integer",
    "string": "string",
    "String": "string",
    "char": "string",
    "any": "string",
    "Any": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "Boolean": "boolean",
    "array": "array",
    "list": "array",
    "tuple": "array",
    "ArrayList": "array",
    "Array": "array",
    "Queue": "array",
    "Stack": "array",
    "HashMap": "object",
    "Hashtable": "object",
}
_SOURCE_HINT = {
    "java": "Write every argument as Java 8 source text in a string (e.g. 5L for a long, new int[]{1, 2} for an array).",
    "javascript": "Write every argument as JavaScript source text in a string (e.g. 7n for a Bigint, [1, 2] for an array).",
}


@cache
def template(name: str) -> str:
    return (_TEMPLATES / name).read_text(encoding="utf-8")


def functions_for_model(entry: Entry) -> list[dict[str, Any]]:
    """The entry's function docs as the model sees them; Java/JS arguments become source-text strings."""
    functions = copy.deepcopy(entry.functions)
    language = language_of(entry.category)
    if language == "python":
        return functions
    for function in functions:
        function["description"] = f"{function.get('description', '')} {_SOURCE_HINT[language]}".strip()
        for schema in function["parameters"].get("properties", {}).values():
            declared = schema.get("type", "any")
            schema["description"] = (
                f"{schema.get('description', '')} ({language} type {declared}, as source text)".strip()
            )
            schema["type"] = "string"
            schema.pop("items", None)
            schema.pop("properties", None)
    return functions


def _to_json_schema(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _to_json_schema(v) for k, v in schema.items()}
        if isinstance(schema.get("type"), str):
            out["type"] = _JSON_SCHEMA_TYPE.get(schema["type"], "string")
        if "properties" in schema and isinstance(schema["properties"], dict):
            out["properties"] = {k: _to_json_schema(v) for k, v in schema["properties"].items()}
        return out
    if isinstance(schema, list):
        return [_to_json_schema(item) for item in schema]
    return schema


def openai_tools(functions: list[dict[str, Any]], underscore_names: bool = False) -> list[dict[str, Any]]:
    """OpenAI function tools; with ``underscore_names`` dots in names become underscores (API rule)."""
    tools = []
    for function in functions:
        name = function["name"].replace(".", "_") if underscore_names else function["name"]
        parameters = _to_json_schema(function.get("parameters", {"type": "dict", "properties": {}}))
        tools.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": function.get("description", ""),
                    "parameters": parameters,
                },
            }
        )
    return tools


def prompt_mode_system(functions: list[dict[str, Any]]) -> str:
    return template("prompt_mode_system.md").replace("{functions}", json.dumps(functions, indent=1))


def held_out_message(functions: list[dict[str, Any]]) -> str:
    return template("held_out_functions.md").replace("{functions}", json.dumps(functions, indent=1))


def with_system_prompt(messages: list[dict[str, Any]], system: str) -> list[dict[str, Any]]:
    """Prepend the system prompt, merging with a system message the question already has."""
    messages = copy.deepcopy(messages)
    if messages and messages[0].get("role") == "system":
        messages[0]["content"] = f"{system}\n\n{messages[0]['content']}"
        return messages
    return [{"role": "system", "content": system}, *messages]
