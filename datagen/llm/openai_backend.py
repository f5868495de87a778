"""Any OpenAI-compatible chat server (`vllm serve`, SGLang, a hosted API) over async HTTP.

Load is spread over several base URLs by sending each request to the one with the fewest requests
in flight (ties go round-robin). Transport errors, timeouts, 429 and 5xx are retried with
exponential backoff and jitter, on the next server when there are several; other 4xx fail at once.

With ``tool_format: openai`` tools and tool calls travel as the API's structured fields (the server
must run a tool parser, e.g. ``--enable-auto-tool-choice --tool-call-parser hermes``); with any
other format the tools block and calls are written into the messages and the reply text is parsed
here, which works against any server.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
from typing import Any

import httpx

from datagen.llm.base import BaseChatModel, LLMRequestError, ModelUnavailableError, choice_from_text
from datagen.llm.config import ModelSpec
from datagen.llm.formats import OpenAIFormat, get_format
from datagen.llm.prompting import inline_messages, structured_messages
from datagen.llm.types import ChatResult, Choice, Message, ToolSchema, Usage
from datagen.redact import redact_text, redact_url

logger = logging.getLogger(__name__)

RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}
MAX_BACKOFF_S = 30.0


class OpenAIChatModel(BaseChatModel):
    def __init__(self, spec: ModelSpec) -> None:
        if not spec.base_urls:
            raise ValueError(
                "expected base_urls for the openai backend (e.g. ['http://127.0.0.1:8000/v1']), found none"
            )
        super().__init__(spec, get_format(spec.resolved_tool_format()))
        headers = {"Content-Type": "application/json"}
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise ValueError(f"expected the API key in ${spec.api_key_env}, found it unset or empty")
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(spec.timeout_s, connect=min(30.0, spec.timeout_s)),
            limits=httpx.Limits(
                max_connections=spec.max_concurrency, max_keepalive_connections=spec.max_concurrency
            ),
        )
        self._in_flight = dict.fromkeys(spec.base_urls, 0)
        self._rotation = itertools.cycle(range(len(spec.base_urls)))
        # A password in a base URL travels as basic auth, never in the request URL, which httpx logs.
        self._targets = {url: _without_userinfo(url) for url in spec.base_urls}

    def _pick_url(self, avoid: str | None = None) -> str:
        urls = self.spec.base_urls
        start = next(self._rotation)
        ordered = urls[start:] + urls[:start]
        candidates = [url for url in ordered if url != avoid] or ordered
        return min(candidates, key=lambda url: self._in_flight[url])

    def _request_body(
        self,
        messages: list[Message],
        tools: list[ToolSchema] | None,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seed: int | None,
        json_schema: dict[str, Any] | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.spec.model,
            "n": n,
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
        }
        if self.format.structured:
            body["messages"] = structured_messages(messages)
            if tools:
                body["tools"] = tools
        else:
            body["messages"] = inline_messages(messages, tools, self.format)
        if seed is not None:
            body["seed"] = seed
        if json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": json_schema},
            }
        return body

    async def _chat(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSchema] | None,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seed: int | None,
        json_schema: dict[str, Any] | None,
    ) -> ChatResult:
        body = self._request_body(messages, tools, n, temperature, top_p, max_tokens, seed, json_schema)
        data = await self._post_with_retries("/chat/completions", body)
        choices = [self._choice(raw, tools) for raw in data.get("choices", [])]
        if not choices:
            raise LLMRequestError(f"expected choices in the server's reply, found {str(data)[:500]}")
        usage_data = data.get("usage") or {}
        details = usage_data.get("prompt_tokens_details") or {}
        usage = Usage(
            prompt_tokens=int(usage_data.get("prompt_tokens") or 0),
            completion_tokens=int(usage_data.get("completion_tokens") or 0),
            cached_prompt_tokens=int(details.get("cached_tokens") or 0),
        )
        return ChatResult(choices=choices, usage=usage, model=self.name)

    def _choice(self, raw: dict[str, Any], tools: list[ToolSchema] | None) -> Choice:
        message = raw.get("message") or {}
        content = message.get("content") or ""
        finish = raw.get("finish_reason")
        if isinstance(self.format, OpenAIFormat) and message.get("tool_calls"):
            parsed = self.format.parse_native(content, message["tool_calls"], tools)
            return Choice(
                content=parsed.content,
                tool_calls=parsed.calls,
                raw=content,
                finish_reason="tool_calls" if parsed.error is None else "stop",
                parse_error=parsed.error,
            )
        return choice_from_text(content, finish, self.format, tools)

    async def _post_with_retries(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        last_problem = ""
        url: str | None = None
        for attempt in range(self.spec.max_retries + 1):
            url = self._pick_url(avoid=url if len(self.spec.base_urls) > 1 else None)
            self._in_flight[url] += 1
            retry_after: float | None = None
            target, auth = self._targets[url]
            try:
                response = await self._client.post(target + path, json=body, **auth)
            except httpx.TransportError as exc:  # connect errors, resets and timeouts
                last_problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    return response.json()
                last_problem = f"HTTP {response.status_code}: {response.text[:500]}"
                if response.status_code not in RETRY_STATUSES:
                    raise LLMRequestError(
                        redact_text(f"{url}{path} rejected the request with {last_problem}")
                    )
                retry_after = _retry_after_s(response)
            finally:
                self._in_flight[url] -= 1
            if attempt < self.spec.max_retries:
                delay = retry_after if retry_after is not None else _backoff_s(attempt)
                logger.warning(
                    "%s%s failed (%s); retry %d/%d in %.1fs",
                    redact_url(url),
                    path,
                    redact_text(last_problem),
                    attempt + 1,
                    self.spec.max_retries,
                    delay,
                )
                await asyncio.sleep(delay)
        raise ModelUnavailableError(
            redact_text(
                f"{path} failed after {self.spec.max_retries + 1} attempts on {self.spec.base_urls}; "
                f"last: {last_problem}"
            )
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def _without_userinfo(url: str) -> tuple[str, dict[str, Any]]:
    """(the URL without ``user:password@``, the request's ``auth`` keyword for it, if any)."""
    parsed = httpx.URL(url)
    if not parsed.userinfo:
        return url, {}
    auth = httpx.BasicAuth(parsed.username, parsed.password)
    return str(parsed.copy_with(username=None, password=None)).rstrip("/"), {"auth": auth}


def _backoff_s(attempt: int) -> float:
    return min(MAX_BACKOFF_S, 0.5 * 2**attempt) * (0.5 + random.random())


def _retry_after_s(response: httpx.Response) -> float | None:
    header = response.headers.get("retry-after")
    try:
        return min(MAX_BACKOFF_S * 2, float(header)) if header else None
    except ValueError:
        return None
