"""`ModelSpec`: which model to talk to and how, as it appears in recipes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from datagen.llm.formats import FORMAT_NAMES

EMBEDDED = "embedded"


class ModelSpec(BaseModel):
    """One model behind the chat interface.

    ``model`` is ``"embedded"`` (the bundled SmolLM2-135M-Instruct), a local directory, or a Hub id
    (for the openai backend: the model name the server serves).
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # values may be credentials

    model: str = Field(
        EMBEDDED,
        description="`embedded` (the bundled SmolLM2-135M-Instruct), a local model directory or a Hub id; "
        "for the openai backend, the model name the server serves",
    )
    backend: Literal["vllm", "openai", "transformers"] = Field(
        "vllm",
        description="vllm: an in-process vLLM engine; openai: any OpenAI-compatible server (`base_urls`); "
        "transformers: plain transformers generation (the slow fallback)",
    )
    tool_format: Literal["auto", "openai", "hermes", "xlam", "llama3", "python"] = Field(
        "auto",
        description="how tool calls are written and read: openai (the server's native tool calls) or a text "
        "format; auto: the format recorded in the model directory (apigen_mt.json), else hermes",
    )
    base_urls: list[str] = Field(
        default_factory=list, description="openai backend: servers to spread load over"
    )
    api_key_env: str | None = Field(
        default=None, description="openai backend: env var that holds the API key"
    )
    max_concurrency: int = Field(default=64, ge=1, description="requests in flight to this model at once")
    max_model_len: int = Field(
        default=8192,
        ge=256,
        description="context length in tokens; a longer prompt ends its dialogue as an error",
    )
    timeout_s: float = Field(default=600.0, gt=0, description="seconds one request may take before it fails")
    max_retries: int = Field(
        default=4,
        ge=0,
        description="openai backend: retries of a failed request (backoff with jitter) per server",
    )
    engine_args: dict[str, Any] = Field(
        default_factory=dict, description="vllm backend: extra AsyncEngineArgs"
    )
    name: str | None = Field(default=None, description="label used in logs and records; defaults to model")

    @field_validator("base_urls")
    @classmethod
    def _strip_slashes(cls, urls: list[str]) -> list[str]:
        return [url.rstrip("/") for url in urls]

    @property
    def label(self) -> str:
        """The name logs and records use: ``name``, else ``model``."""
        return self.name or self.model

    def resolved_model(self) -> str:
        """The model path or id a backend loads (prepares the embedded model if it is named)."""
        if self.model == EMBEDDED:
            from datagen.llm.embedded import embedded_model_path

            return str(embedded_model_path())
        return self.model

    def resolved_tool_format(self, model_path: str | None = None) -> str:
        """The tool-call format to use: explicit, or the model directory's marker, else hermes."""
        if self.tool_format != "auto":
            return self.tool_format
        from datagen.llm.embedded import read_tool_format

        path = model_path or (self.resolved_model() if self.backend != "openai" else self.model)
        recorded = read_tool_format(path) if Path(path).is_dir() else None
        if recorded is not None and recorded not in FORMAT_NAMES:
            raise ValueError(
                f"{path}/apigen_mt.json names tool format {recorded!r}; expected one of {list(FORMAT_NAMES)}"
            )
        return recorded or "hermes"
