"""Any OpenAI-compatible chat server (`vllm serve`, SGLang, a hosted API), through the ``openai`` SDK.

**Routing.** With several base URLs, every request of one conversation goes to the same server (prefix
affinity, so its earlier turns are still in that server's prefix cache), falling back to the least
busy server while that one is down or overloaded: :mod:`datagen.llm.routing`.

**Retries.** Each server is reached through its own ``AsyncOpenAI`` client, which retries connection
errors, timeouts, 408/409/429 and 5xx ``max_retries`` times with jittered exponential backoff and
honours ``Retry-After``. A server that still fails is routed around for a while and the request
moves to the next one; once every server has failed, the model is unavailable
(:class:`ModelUnavailableError`: runs stop and resume later). Other 4xx fail at once, except a
prompt longer than the server's context, which becomes the same ``context_overflow`` result the
in-process backend gives (an ended episode, not an error).

**Credentials.** A ``user:password@`` in a base URL travels as basic auth and never in a request URL,
a log line or an error; an API key comes from the environment variable the spec names, and without
one no ``Authorization`` header is sent (the SDK's own ``OPENAI_API_KEY`` is never picked up).

With ``tool_format: openai`` tools and tool calls travel as the API's structured fields and the
server's tool parser reads the calls (``--enable-auto-tool-choice --tool-call-parser NAME``; see
:mod:`datagen.llm.server_parsers`); with any other format the tools block and calls are written into
the messages and the reply text is parsed here, which works against any server.
"""

from __future__ import annotations

import logging
import math
import os
import re
from typing import Any, NamedTuple

from apigen_rules.redact import redact_text, redact_url
from datagen.llm.admission import current_priority
from datagen.llm.base import (
    BaseChatModel,
    LLMRequestError,
    ModelUnavailableError,
    choice_from_text,
    context_overflow_result,
)
from datagen.llm.config import ModelSpec
from datagen.llm.formats import OpenAIFormat, ToolFormat, get_format
from datagen.llm.prompting import inline_messages, structured_messages
from datagen.llm.routing import Router, affinity_key
from datagen.llm.types import ChatResult, Choice, Message, ToolSchema, Usage

logger = logging.getLogger(__name__)

PATH = "/chat/completions"
# A request's priority travels as vLLM's header rather than its `priority` body field: servers that do
# not know the field (hosted APIs) reject unknown body fields but ignore unknown headers.
PRIORITY_HEADER = "X-Vllm-Priority"
# Statuses the SDK retries; a server still answering one after its retries is skipped for a while.
SERVER_TROUBLE = frozenset({408, 409, 429})
# A conversation leaves its own server once that has this many more requests in flight than the least
# busy one: at least 4, else a quarter of a server's fair share of the model's concurrency.
AFFINITY_MIN_SLACK = 4


class Overflow(NamedTuple):
    prompt_tokens: int
    max_model_len: int
    at_least: bool  # the server stopped counting (or counted characters): prompt_tokens is a lower bound


# A server's words for "the prompt does not fit the context", with the numbers they give.
_OVERFLOW_TEXTS = (
    # vLLM 0.32 (renderers/params.py), and OpenAI's hosted API ("your messages resulted in N tokens").
    re.compile(
        r"maximum context length is (?P<limit>\d+) tokens\. However, (?:your prompt contains|your messages "
        r"resulted in) (?P<least>at least )?(?P<prompt>\d+) (?:input )?tokens"
    ),
    # vLLM's cheap check before tokenizing: it counted characters, not tokens.
    re.compile(
        r"maximum context length is (?P<limit>\d+) tokens\. However, your prompt contains \d+ characters"
    ),
    # vLLM's entry point when the prompt alone fills the context.
    re.compile(r"Input length \((?P<prompt>\d+)\) exceeds model's maximum context length \((?P<limit>\d+)\)"),
    # SGLang.
    re.compile(
        r"input \((?P<prompt>\d+) tokens\) is longer than the model's context length \((?P<limit>\d+) tokens\)"
    ),
)


def context_overflow(message: str) -> Overflow | None:
    """The numbers of a server's "prompt longer than the context" error, or None for any other error."""
    for pattern in _OVERFLOW_TEXTS:
        match = pattern.search(message)
        if match is None:
            continue
        limit = int(match["limit"])
        prompt = match.groupdict().get("prompt")
        if prompt is None:
            return Overflow(limit + 1, limit, at_least=True)
        return Overflow(int(prompt), limit, at_least=bool(match.groupdict().get("least")))
    return None


class _Server:
    """One base URL: its SDK client (with the SDK's retries) and how it is named in logs and errors.

    The client's transport is the SDK's aiohttp one (``openai.DefaultAioHttpClient``): httpx's own
    connection pool rescans every open connection twice per request (to assign and to release it),
    so with a thousand requests in flight each request paid for a thousand connections
    (benchmarks/orchestration_scaling.py: 5.7 CPU ms per dialogue step at concurrency 1, 11 at 256,
    and connections timing out at 1024); aiohttp's pool hands an idle connection over in constant time.
    """

    def __init__(self, url: str, spec: ModelSpec, api_key: str | None) -> None:
        import httpx2
        import openai

        self.shown = redact_url(url)
        base, auth = _without_userinfo(url)
        # The HTTP client logs every request at INFO (a line per request under `generate`'s INFO logging,
        # thousands a second against a fast server); failures are ours to report. A level set on purpose
        # is kept.
        http_log = logging.getLogger("httpx2")
        if http_log.level == logging.NOTSET:
            http_log.setLevel(logging.WARNING)
        timeout = httpx2.Timeout(spec.timeout_s, connect=min(30.0, spec.timeout_s))
        http_client = openai.DefaultAioHttpClient(
            auth=auth,  # basic auth from the URL's userinfo; it replaces any bearer header
            timeout=timeout,
            limits=httpx2.Limits(
                max_connections=spec.max_concurrency, max_keepalive_connections=spec.max_concurrency
            ),
        )
        # The SDK insists on a key; without one, requests omit the Authorization header (see _options).
        self.client = openai.AsyncOpenAI(
            base_url=base,
            api_key=api_key or "unused",
            max_retries=spec.max_retries,
            timeout=timeout,
            http_client=http_client,
        )


class OpenAIChatModel(BaseChatModel):
    def __init__(self, spec: ModelSpec) -> None:
        if not spec.base_urls:
            raise ValueError(
                "expected base_urls for the openai backend (e.g. ['http://127.0.0.1:8000/v1']), found none"
            )
        super().__init__(spec, get_format(spec.resolved_tool_format()))
        self._api_key: str | None = None
        if spec.api_key_env:
            self._api_key = os.environ.get(spec.api_key_env)
            if not self._api_key:
                raise ValueError(f"expected the API key in ${spec.api_key_env}, found it unset or empty")
        urls = list(dict.fromkeys(spec.base_urls))
        self._servers = {url: _Server(url, spec, self._api_key) for url in urls}
        fair_share = spec.max_concurrency / len(urls)
        self._router = Router(urls, slack=max(AFFINITY_MIN_SLACK, math.ceil(fair_share / 4)))

    def _request_extras(self) -> dict[str, Any]:
        """Fields outside the OpenAI schema that the server takes in the request body (vLLM's own
        sampling and scheduling parameters): the one place they are assembled."""
        return {}

    def _request(
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
        """The JSON body of one chat completion request."""
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
        body.update(self._request_extras())
        return body

    def _options(self) -> dict[str, Any]:
        """The SDK's request options (``openai.RequestOptions``): headers, and the key where there is one."""
        headers: dict[str, Any] = {}
        if self._api_key is None:
            import openai

            headers["Authorization"] = openai.omit
        priority = current_priority()
        if priority:  # vLLM's priority scheduling (`--scheduling-policy priority`); ignored elsewhere
            headers[PRIORITY_HEADER] = str(priority)
        options: dict[str, Any] = {"headers": headers}
        if self._api_key is not None:
            options["security"] = {"bearer_auth": True}
        return options

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
        body = self._request(messages, tools, n, temperature, top_p, max_tokens, seed, json_schema)
        # One server needs no affinity (the key hashes the whole opening of the conversation).
        key = affinity_key(messages) if len(self._servers) > 1 else ""
        completion = await self._create(key, body)
        if isinstance(completion, Overflow):
            return self._overflow_result(completion, n)
        raw_choices = completion.get("choices") if isinstance(completion, dict) else None
        choices = [self._choice(raw, tools) for raw in raw_choices or [] if isinstance(raw, dict)]
        if not choices:
            raise LLMRequestError(f"expected choices in the server's reply, found {str(completion)[:500]}")
        usage = completion.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        return ChatResult(
            choices=choices,
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                cached_prompt_tokens=int(details.get("cached_tokens") or 0),
            ),
            model=self.name,
        )

    async def _create(self, key: str, body: dict[str, Any]) -> Any:
        """The completion (the server's JSON) from the first server that gives one (in the router's
        order for ``key``), or the numbers of a context overflow.

        The body goes through the SDK's generic ``post`` (its documented way to send any request),
        with its retries, auth and typed errors, and comes back as parsed JSON: ``chat.completions.create``
        would walk every parameter against its typed schema on the way out (~0.5 ms a request) and
        build a pydantic model of the reply on the way back (as much again), for data that is plain
        JSON at both ends."""
        import openai

        options = self._options()
        order = self._router.order(key)
        problem = ""
        for position, url in enumerate(order):
            server = self._servers[url]
            try:
                with self._router.busy(url):
                    completion = await server.client.post(PATH, body=body, cast_to=object, options=options)
            except openai.APIStatusError as exc:
                text = _error_text(exc)
                if exc.status_code == 400 and (overflow := context_overflow(text)) is not None:
                    return overflow
                if exc.status_code < 500 and exc.status_code not in SERVER_TROUBLE:
                    raise LLMRequestError(
                        redact_text(
                            f"{server.shown}{PATH} rejected the request with HTTP {exc.status_code}: {text}"
                        )
                    ) from exc
                problem = f"HTTP {exc.status_code}: {text}"
            except openai.APIConnectionError as exc:  # refused, reset, timed out
                cause = exc.__cause__
                problem = f"{type(exc).__name__}" + (f" ({type(cause).__name__}: {cause})" if cause else "")
            except openai.APIError as exc:  # an answer that is not a chat completion
                raise LLMRequestError(redact_text(f"{server.shown}{PATH}: {exc}")) from exc
            else:
                self._router.mark_up(url)
                return completion
            self._router.mark_down(url)
            if position + 1 < len(order):
                logger.warning(
                    "%s%s failed after %d attempts (%s); moving to %s",
                    server.shown,
                    PATH,
                    self.spec.max_retries + 1,
                    redact_text(problem),
                    self._servers[order[position + 1]].shown,
                )
        shown = [self._servers[url].shown for url in order]
        raise ModelUnavailableError(
            redact_text(
                f"{self.name}: {PATH} failed after {self.spec.max_retries + 1} attempts on each of {shown}; "
                f"last: {problem}"
            )
        )

    def _overflow_result(self, overflow: Overflow, n: int) -> ChatResult:
        result = context_overflow_result(overflow.prompt_tokens, overflow.max_model_len, n, self.name)
        error = result.first.parse_error
        if overflow.at_least and error is not None:  # every choice shares this one error
            error.message = error.message.replace(" has ", " has at least ", 1)
        return result

    def _choice(self, raw: dict[str, Any], tools: list[ToolSchema] | None) -> Choice:
        message = raw.get("message") or {}
        tool_calls = [call for call in message.get("tool_calls") or [] if isinstance(call, dict)]
        return reply_choice(self.format, message.get("content"), tool_calls, raw.get("finish_reason"), tools)

    async def aclose(self) -> None:
        for server in self._servers.values():
            await server.client.close()


def reply_choice(
    fmt: ToolFormat,
    content: str | None,
    tool_calls: list[dict[str, Any]],
    finish_reason: str | None,
    tools: list[ToolSchema] | None,
) -> Choice:
    """One reply of a server as a Choice: with ``tool_format: openai`` the calls are the server's
    ``tool_calls`` (its tool parser read them), otherwise our format reads the text."""
    text = content or ""
    if isinstance(fmt, OpenAIFormat) and tool_calls:
        parsed = fmt.parse_native(text, tool_calls, tools)
        return Choice(
            content=parsed.content,
            tool_calls=parsed.calls,
            raw=text,
            finish_reason="tool_calls" if parsed.error is None else "stop",
            parse_error=parsed.error,
        )
    return choice_from_text(text, finish_reason, fmt, tools)


def _error_text(exc: Any) -> str:
    """The server's own words for an error status (``{"error": {"message": ...}}`` or plain text)."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message)[:1000]
    text = exc.response.text if exc.response is not None else ""
    return (text or exc.message)[:1000]


def _without_userinfo(url: str) -> tuple[str, Any]:
    """(the URL without ``user:password@``, basic auth for it or None)."""
    import httpx2

    parsed = httpx2.URL(url)
    if not parsed.userinfo:
        return url, None
    auth = httpx2.BasicAuth(parsed.username, parsed.password)
    return str(parsed.copy_with(username=None, password=None)).rstrip("/"), auth
