"""Every prompt template puts what its calls share first and what varies last, so the engine's prefix
cache serves the shared part to every call after the first (the Best-of-N judge's candidates of one
turn, the dialogues of one domain, the committee's seats, the tasks of one run).

Each case renders one template twice, with the same shared values and two different values of what
varies between two calls of one turn; the two prompts must be identical up to the first varying
value, and after it the template may add headings only, never its rules or instructions."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from datagen.blueprint.proposal import render_prompt
from datagen.simulate.agent import agent_system_prompt
from datagen.simulate.user import user_judge_prompt, user_system_prompt

ROOT = Path(__file__).resolve().parents[1]
HEADING_CHARS = 60  # a longer line of the template's own text after the varying part is a rule


def jinja(name: str) -> Callable[..., str]:
    return lambda **values: render_prompt(name, **values)


def vary(tag: str) -> dict[str, object]:
    """Two distinct values for every kind of field, long enough to dominate any heading."""
    text = f"varying text {tag} " * 6
    return {
        "text": text,
        "list": [f"item {tag} one " * 4, f"item {tag} two " * 4],
        "calls": [{"name": f"tool_{tag}", "arguments": {"id": f"{tag}-1"}}],
        "grounded_calls": [
            {"call": {"name": f"tool_{tag}", "arguments": {}}, "result": f"result {tag} " * 4}
        ],
        "records": [{"task": f"example {tag} " * 4}],
    }


def values(kind: dict[str, str], tag: str) -> dict[str, object]:
    pool = vary(tag)
    return {field: pool[shape] for field, shape in kind.items()}


# template -> (renderer, shared values, what varies between two calls of one turn -> its shape)
CASES: dict[str, tuple[Callable[..., str], dict[str, object], dict[str, str]]] = {
    "simulate/user_judge.md": (
        user_judge_prompt,
        {"instruction": "You want to return order #W1.", "history": "Customer: hi\nAgent: hello"},
        {"candidate": "text"},
    ),
    "simulate/user_system.md": (
        lambda **v: user_system_prompt(v["persona"], v["instruction"], device=True),
        {},
        {"persona": "text", "instruction": "text"},
    ),
    "simulate/user_device.md": (
        lambda **v: user_system_prompt(v["persona"], v["instruction"], device=True),
        {},
        {"persona": "text", "instruction": "text"},
    ),
    "simulate/agent_system.md": (lambda **v: agent_system_prompt(v["policy"]), {}, {"policy": "text"}),
    "blueprint/generator_system.md": (
        jinja("generator_system"),
        {"domain": "retail", "policy": "policy " * 50, "tools": "tools " * 50},
        {},
    ),
    "blueprint/judge_system.md": (
        jinja("judge_system"),
        {"domain": "retail", "policy": "policy " * 50, "tools": "tools " * 50},
        {},
    ),
    "blueprint/generator_task.md": (
        jinja("generator_task"),
        {},
        {
            "persona": "text",
            "records": "text",
            "excerpts": "list",
            "write_tools": "list",
            "fewshot": "records",
        },
    ),
    "blueprint/grounded_task.md": (
        jinja("grounded_task"),
        {"with_outputs": False},
        {
            "persona": "text",
            "records": "text",
            "excerpts": "list",
            "actions": "grounded_calls",
            "fewshot": "records",
        },
    ),
    "blueprint/judge_task.md": (
        jinja("judge_task"),
        {},
        {"persona": "text", "instruction": "text", "actions": "calls", "outputs": "list", "diff": "list"},
    ),
    "blueprint/feedback.md": (jinja("feedback"), {}, {"task": "text", "stage": "text", "reasons": "list"}),
    "blueprint/revise.md": (jinja("revise"), {"grounded": True, "with_outputs": True}, {"feedback": "text"}),
    "blueprint/recombine.md": (
        jinja("recombine"),
        {},
        {"persona": "text", "tasks": "list", "actions": "calls"},
    ),
}
NOT_PROMPTS = {"blueprint/persona_traits.md"}  # data the persona sampler draws from


def test_every_prompt_template_has_a_layout_case():
    found = {
        str(path.relative_to(ROOT / "datagen")).replace("/prompts/", "/")
        for path in (ROOT / "datagen").glob("**/prompts/*.md")
    }
    assert found == set(CASES) | NOT_PROMPTS


def _shown(value: object) -> list[str]:
    """The strings a value puts into a rendered prompt (whole, or item by item)."""
    if isinstance(value, str):
        return [value.strip()]
    if isinstance(value, list):
        return [s for item in value for s in _shown(item)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _shown(v)]
    return [str(value)]


@pytest.mark.parametrize("template", sorted(CASES))
def test_two_calls_of_one_turn_share_their_prefix_up_to_the_varying_part(template):
    render, shared, varying = CASES[template]
    first_values, second_values = values(varying, "A"), values(varying, "B")
    first = render(**shared, **first_values)
    second = render(**shared, **second_values)
    if not varying:  # every call of a run sends the same text
        assert first == second
        return
    prefix = os.path.commonprefix([first, second])
    shown = [s for value in first_values.values() for s in _shown(value) if s and s in first]
    start = min(first.index(s) for s in shown)
    assert len(prefix) >= start, f"{template}: the two calls differ before the varying part"
    tail = first[start:]
    for s in sorted(shown, key=len, reverse=True):
        tail = tail.replace(s, "\n")
    rules_after = [line.strip() for line in tail.splitlines() if len(line.strip()) > HEADING_CHARS]
    assert not rules_after, f"{template}: fixed text after the varying part: {rules_after}"
