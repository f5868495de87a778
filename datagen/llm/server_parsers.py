"""Which of vLLM's ``--tool-call-parser`` parsers reads a model's tool calls.

Two questions, answered here once:

- which parser a server should run for a model (:func:`vllm_tool_parser`, used by
  ``scripts/serve_vllm.sh`` unless ``TOOL_PARSER`` is set): the tool-call format a model directory
  records (``apigen_mt.json``, written by our trainers) wins, else the model family by name;
- which of vLLM's parsers reads the same syntax as each of our text formats
  (:data:`VLLM_PARSER_FOR_FORMAT`; ``tests/test_parser_conformance.py`` checks the two agree); which
  of the two an evaluation scores through is its ``--parse`` flag (``evaluation.parse_mode``).

The server's parser matters only where tools travel as API fields (``tool_format: openai``, or
``eval tau --parse server``): with a text format the tools block is in the prompt, the request has
no ``tools`` and the server returns the text untouched for our parser to read.

    python -m datagen.llm.server_parsers MODEL      # prints the parser name; exit 1 if unknown
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

#: our text format -> the vLLM parser that reads the same syntax (``openai`` is the server's parser itself)
VLLM_PARSER_FOR_FORMAT = {"hermes": "hermes", "llama3": "llama3_json", "python": "pythonic", "xlam": "xlam"}


@dataclass(frozen=True)
class Family:
    pattern: str  # searched in the lowercased model name (Hub id or path)
    parser: str
    note: str = ""  # what else the server needs, for people


# First match wins, so a name that contains another family's (Llama-xLAM, FunctionGemma) comes first.
FAMILIES: tuple[Family, ...] = (
    Family(r"xlam", "xlam", "Salesforce xLAM: JSON list of calls"),
    Family(r"qwen3-coder", "qwen3_xml", "Qwen3-Coder's XML calls"),
    Family(r"qwen|qwq", "hermes", "Qwen2.5/QwQ/Qwen3: <tool_call> JSON blocks"),
    Family(r"hermes", "hermes", "NousResearch Hermes: <tool_call> JSON blocks"),
    Family(r"smollm|^embedded$", "hermes", "our prepared SmolLM2 template writes <tool_call> blocks"),
    Family(r"llama-?4", "llama4_pythonic", "Llama 4: vLLM recommends its pythonic form"),
    Family(r"llama-?3", "llama3_json", "Llama 3.x JSON calls ({'name', 'parameters'})"),
    Family(r"functiongemma", "functiongemma", "FunctionGemma's call tags"),
    Family(r"gemma-?4", "gemma4", "Gemma 4's call tokens"),
    Family(
        r"gemma",
        "pythonic",
        "Gemma 3 writes Python-call lists when prompted to, but its own chat template renders no "
        "tools: add a tool-aware --chat-template for tool_format: openai",
    ),
    Family(r"mistral|mixtral|ministral|magistral|devstral", "mistral", "Mistral's [TOOL_CALLS]"),
    Family(r"gpt-oss", "openai", "gpt-oss harmony channels"),
    Family(r"granite-?4", "granite4", "Granite 4"),
    Family(r"granite", "granite", "Granite 3.x"),
)


def family_of(model: str) -> Family | None:
    """The family whose pattern the model's name matches first (None for an unknown family)."""
    name = model.lower()
    return next((family for family in FAMILIES if re.search(family.pattern, name)), None)


def vllm_tool_parser(model: str) -> str | None:
    """The ``--tool-call-parser`` for ``model``: the recorded format of a model directory, else the
    family's parser; None when neither is known (the caller must ask the user)."""
    path = Path(model)
    if path.is_dir():
        from datagen.llm.embedded import read_tool_format

        recorded = read_tool_format(path)
        if recorded in VLLM_PARSER_FOR_FORMAT:
            return VLLM_PARSER_FOR_FORMAT[recorded]
    family = family_of(model)
    return family.parser if family else None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m datagen.llm.server_parsers MODEL", file=sys.stderr)
        return 2
    parser = vllm_tool_parser(argv[0])
    if parser is None:
        known = ", ".join(sorted({f.parser for f in FAMILIES}))
        print(
            f"no tool-call parser known for {argv[0]!r} (expected a family such as Qwen, Llama 3, Gemma, "
            f"Mistral, xLAM, or a directory with apigen_mt.json); set TOOL_PARSER to one of vLLM's "
            f"parsers (e.g. {known})",
            file=sys.stderr,
        )
        return 1
    print(parser)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
