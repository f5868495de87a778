"""The environment vLLM and its engine processes run with, decided once for every entry point.

vLLM reads its settings from environment variables when it is first imported, and its engine
processes (spawned on a CPU) inherit them. So this is applied by the command-line root before any
sub-command loads, and again where an engine is built (for library callers). Light on purpose:
``apigen-mt --help`` imports it.

- ``VLLM_LOGGING_STREAM=ext://sys.stderr``: vLLM logs to stdout unless told otherwise, and a
  command's stdout carries its own output (``--json`` summaries that programs parse).

A value the user already set wins.
"""

from __future__ import annotations

import os

ENGINE_ENV_DEFAULTS = {"VLLM_LOGGING_STREAM": "ext://sys.stderr"}


def apply_engine_env() -> None:
    """Set each default of :data:`ENGINE_ENV_DEFAULTS` the environment does not already have."""
    for key, value in ENGINE_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
