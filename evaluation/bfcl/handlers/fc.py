"""Results stored as lists by FC handlers: OpenAI-style ``{name: arguments-json}`` entries, and
lists the handler already decoded at generation time.

* ``json`` — the API FC handlers (``api_inference/openai_completion.py``,
  ``openai_response.py``, ``claude.py``, ``mistral.py`` and the OpenAI-compatible ones that inherit
  from them: Qwen, DeepSeek, Grok, ...) store ``[{name: arguments}]`` with ``arguments`` the API's
  JSON string, or the reply's text when it made no call. ``decode_ast`` takes each entry's first
  key and ``json.loads`` its value: arguments that are already a dict fail the item, an empty
  string decodes to no calls. ``decode_execute`` is ``convert_to_function_call``, which takes a
  dict as it is.
* ``decoded`` — handlers that decode while generating and store ``[{name: {param: value}}]``
  (``local_inference/phi_fc.py``, ``granite_3.py``, ``arch.py``, ``mistral_fc.py``): the stored
  list is checked for being a list of dicts and used as it is.
"""

from __future__ import annotations

import json
from typing import Any

from evaluation.bfcl.handlers.base import Decoded, DecodeError, failures_are_decode_errors
from evaluation.bfcl.handlers.execution import fc_strings


@failures_are_decode_errors
def decode_ast_json(raw: Any, language: str = "python") -> Decoded:
    decoded = []
    for call in raw:
        name = list(call.keys())[0]
        decoded.append({name: json.loads(call[name])})
    return decoded


@failures_are_decode_errors
def decode_execute_json(raw: Any) -> list[str]:
    return fc_strings(raw)


def _list_of_dicts(raw: Any) -> list[dict]:
    if type(raw) is not list or any(type(item) is not dict for item in raw):
        raise DecodeError(f"expected the stored list of decoded calls, found {type(raw).__name__}")
    return raw


@failures_are_decode_errors
def decode_ast_decoded(raw: Any, language: str = "python") -> Decoded:
    return _list_of_dicts(raw)


@failures_are_decode_errors
def decode_execute_decoded(raw: Any) -> list[str]:
    return fc_strings(_list_of_dicts(raw))
