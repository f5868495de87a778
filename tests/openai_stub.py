"""An OpenAI-compatible chat server on loopback that answers at once with valid replies: a stand-in for
an infinitely fast engine, so what is measured or compared is the toolkit's own work.

    python tests/openai_stub.py [--delay-s S] [--tasks TASKS.json]   # prints its base URL, serves until killed

Replies are chosen by the request's structure, never by its prose:

- a ``response_format`` JSON schema: an instance of that schema, every score at its maximum (the
  committee and the Best-of-N judge pass everything); a string property named ``instruction`` gets a
  text that differs per request (a digest of the messages);
- ``tools`` in the request (the agent, ``tool_format: openai``): the next action of its task, as a
  native tool call, while actions remain; then one line of text that says the task's ``outputs``. The
  task is named by the tag the simulated user puts in its first line (``[task ID]``); without
  ``--tasks`` the agent only talks;
- otherwise (the simulated user): a first line (with the tag of the task whose ``match`` text, else
  its instruction, its system prompt holds, when ``--tasks`` lists it), then ``###STOP###``. Any
  harness whose user prompt holds the task's text and whose agent gets the tools plays the same
  dialogue (``tau2 run`` included: benchmarks/tau_speed.py).

``GET /stats`` says how many requests were answered. ``--delay-s`` holds every reply that long (jobs then stay in flight: tests kill workers under them).
Every reply to one request body is the same, so two runs of one recipe get the same replies.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

TAG = re.compile(r"\[task ([^\]\s]+)\]")
STOP = "###STOP###"


class Responder:
    def __init__(self, tasks: list[dict[str, Any]] | None = None) -> None:
        self.tasks = {t["id"]: t for t in tasks or []}
        self.requests = 0

    def reply(self, body: dict[str, Any]) -> dict[str, Any]:
        self.requests += 1
        messages = body.get("messages") or []
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
        if schema is not None:
            digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:10]
            message = {"role": "assistant", "content": json.dumps(_instance(schema, digest))}
        elif body.get("tools"):
            message = self._agent(messages)
        else:
            message = {"role": "assistant", "content": self._user(messages)}
        n = int(body.get("n") or 1)
        content = message.get("content") or json.dumps(message.get("tool_calls"))
        return {
            "id": "stub",
            "object": "chat.completion",
            "model": body.get("model", "stub"),
            "choices": [
                {
                    "index": i,
                    "message": message,
                    "finish_reason": "tool_calls" if "tool_calls" in message else "stop",
                }
                for i in range(n)
            ],
            "usage": {
                "prompt_tokens": len(json.dumps(messages)) // 4,
                "completion_tokens": max(1, len(content) // 4) * n,
            },
        }

    def _agent(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        first = next((m for m in messages if m.get("role") == "user"), {})
        found = TAG.search(str(first.get("content") or ""))
        task = self.tasks.get(found.group(1)) if found else None
        done = sum(len(m.get("tool_calls") or []) for m in messages if m.get("role") == "assistant")
        if task is not None and done < len(task["actions"]):
            action = task["actions"][done]
            call = {
                "id": f"call_{done}",
                "type": "function",
                "function": {"name": action["name"], "arguments": json.dumps(action["arguments"])},
            }
            return {"role": "assistant", "content": None, "tool_calls": [call]}
        outputs = (task or {}).get("outputs") or []
        said = f" {', '.join(str(output) for output in outputs)}." if outputs else ""
        return {"role": "assistant", "content": f"That is done.{said} Is there anything else?"}

    def _user(self, messages: list[dict[str, Any]]) -> str:
        if any(m.get("role") == "assistant" for m in messages):  # the user's own earlier turns
            return f"Thank you, that is all. {STOP}"
        system = str(messages[0].get("content") or "") if messages else ""
        for task_id, task in self.tasks.items():
            if (task.get("match") or task["instruction"]) in system:
                return f"Hello, I need help. [task {task_id}] {task['instruction']}"
        return "Hello, I need help with my account."


def _instance(schema: dict[str, Any], digest: str, name: str = "") -> Any:
    kind = schema.get("type")
    if "enum" in schema:
        return (
            max(schema["enum"])
            if all(isinstance(v, int | float) for v in schema["enum"])
            else schema["enum"][0]
        )
    if kind == "object":
        props = schema.get("properties", {})
        return {key: _instance(sub, digest, key) for key, sub in props.items()}
    if kind == "array":
        return [_instance(schema.get("items", {}), digest, name) for _ in range(schema.get("minItems", 0))]
    if kind in ("integer", "number"):
        return schema.get("maximum", 1)
    if kind == "boolean":
        return True
    if name == "instruction":
        return f"Please make these changes to my account (request {digest})."
    return "ok"


async def serve(host: str, port: int, responder: Responder, delay_s: float = 0.0) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                raw = await reader.readexactly(length) if length else b""
                if method == "POST" and path.endswith("/chat/completions"):
                    if delay_s:
                        await asyncio.sleep(delay_s)
                    payload = json.dumps(responder.reply(json.loads(raw))).encode()
                    status = b"200 OK"
                elif path.endswith("/health"):
                    payload, status = b"{}", b"200 OK"
                elif path.endswith("/stats"):  # requests answered so far
                    payload, status = json.dumps({"requests": responder.requests}).encode(), b"200 OK"
                else:
                    payload, status = b'{"error": "not found"}', b"404 Not Found"
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(payload)).encode() + b"\r\n\r\n" + payload
                )  # fmt: skip
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port, backlog=4096)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-s", type=float, default=0.0)
    parser.add_argument(
        "--tasks", type=Path, default=None, help="JSON list of {id, instruction, actions[, outputs, match]}"
    )
    args = parser.parse_args()
    tasks = json.loads(args.tasks.read_text()) if args.tasks else None

    async def run() -> None:
        server = await serve("127.0.0.1", args.port, Responder(tasks), args.delay_s)
        port = server.sockets[0].getsockname()[1]
        print(f"http://127.0.0.1:{port}/v1", flush=True)
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
