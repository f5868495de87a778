"""Task drafts: the prompts (rendered from ``prompts/*.md``), the messages of each proposal mode
(chosen by ``datagen.blueprint.proposers``) and the one model call every Phase 1 request goes through.

The system message (guidelines, the whole policy, the tool schemas) is identical for every request
of a run, so an engine with prefix caching (vLLM) computes it once; everything that varies per task
goes in the user message after it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2

from datagen.blueprint.samplers import PROMPTS, SamplerDraw
from datagen.envs.base import Domain
from datagen.llm.base import ModelUnavailableError
from datagen.llm.types import ChatModel, Message, Usage
from datagen.recipe.datagen import ModelConfig

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _jinja() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(PROMPTS)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - prompts are plain text, not HTML
    )


def render_prompt(name: str, **values: Any) -> str:
    return _jinja().get_template(f"{name}.md").render(**values).strip()


def render_tools(domain: Domain) -> str:
    """One compact JSON line per tool, tagged read/write, in the domain's order (stable across calls)."""
    lines = []
    for spec in domain.tools:
        fn = spec.schema["function"]
        lines.append(
            f"[{spec.kind}] "
            + json.dumps(
                {"name": fn["name"], "description": fn["description"], "parameters": fn["parameters"]},
                ensure_ascii=False,
            )
        )
    return "\n".join(lines)


def generator_system_prompt(domain: Domain) -> str:
    return render_prompt(
        "generator_system", domain=domain.name, policy=domain.policy.strip(), tools=render_tools(domain)
    )


def judge_system_prompt(domain: Domain) -> str:
    return render_prompt(
        "judge_system", domain=domain.name, policy=domain.policy.strip(), tools=render_tools(domain)
    )


class ModelCallError(ModelUnavailableError):
    """A model call failed after the runtime's own retries (server down, engine dead). It ends the run
    instead of rejecting the task, so no task is recorded as done because of an outage: the tasks in
    flight run again on ``--resume``."""


@dataclass
class ModelReply:
    text: str
    usage: Usage


async def ask(
    model: ChatModel,
    messages: list[Message],
    config: ModelConfig,
    *,
    json_schema: dict[str, Any] | None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    seed: int | None = None,
) -> ModelReply:
    """One completion. Malformed output is the caller's to judge; a failed call raises ModelCallError."""
    try:
        result = await model.chat(
            messages,
            n=1,
            temperature=config.temperature if temperature is None else temperature,
            max_tokens=max_tokens or config.max_tokens,
            seed=seed,
            json_schema=json_schema,
        )
    except Exception as exc:
        raise ModelCallError(
            f"the call to model {getattr(model, 'name', '?')!r} failed: {type(exc).__name__}: {exc}. "
            "Finished tasks are saved; fix the model server and rerun with --resume."
        ) from exc
    choice = result.choices[0] if result.choices else None
    text = (choice.raw or choice.content) if choice is not None else ""
    return ModelReply(text or "", result.usage)


def llm_messages(domain: Domain, draw: SamplerDraw, system: str) -> list[Message]:
    user = render_prompt(
        "generator_task",
        persona=draw.persona,
        records=draw.records_text,
        excerpts=draw.policy_excerpts,
        write_tools=draw.write_tools,
        fewshot=draw.fewshot,
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def grounded_messages(
    draw: SamplerDraw,
    system: str,
    actions: list[dict[str, Any]],
    observations: list[str],
    with_outputs: bool = True,
) -> list[Message]:
    shown = [{"call": a, "result": o[:400]} for a, o in zip(actions, observations, strict=True)]
    # Without outputs the examples must not show any either, or the model is taught to write them.
    fewshot = (
        draw.fewshot
        if with_outputs
        else [{k: v for k, v in e.items() if k != "outputs"} for e in draw.fewshot]
    )
    user = render_prompt(
        "grounded_task",
        persona=draw.persona,
        records=draw.records_text,
        excerpts=draw.policy_excerpts,
        actions=shown,
        fewshot=fewshot,
        with_outputs=with_outputs,
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def grounded_json_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "thought": {"type": "string", "maxLength": 600},
            "instruction": {"type": "string", "maxLength": 1200},
            "outputs": {"type": "array", "items": {"type": "string", "maxLength": 200}, "maxItems": 6},
        },
        "required": ["thought", "instruction", "outputs"],
    }


def instruction_json_schema() -> dict[str, Any]:
    """Recombination: the actions and outputs are the parents'; only the instruction is new."""
    schema = grounded_json_schema()
    del schema["properties"]["outputs"]
    schema["required"] = ["thought", "instruction"]
    return schema


def revision_messages(
    previous: list[Message], reply_text: str, feedback: str, grounded: bool, with_outputs: bool = True
) -> list[Message]:
    """The same conversation plus the rejected draft and the feedback, so the shared prefix still caches."""
    return [
        *previous,
        {"role": "assistant", "content": reply_text},
        {
            "role": "user",
            "content": render_prompt(
                "revise", feedback=feedback, grounded=grounded, with_outputs=with_outputs
            ),
        },
    ]
