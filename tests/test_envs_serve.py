"""`apigen-mt envs serve`: retail over MCP (stdio and HTTP) and over OpenEnv, run from a plain shell and
talked to with the protocols' own clients (the ``mcp`` SDK's ``Client``, openenv-core's
``GenericEnvClient``). What a client sees must be what an in-process episode sees: the same tools and
schemas, the same observations, the same state hashes, Phase 2's verdict as the reward."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from cli_runs import APIGEN_MT, ROOT
from servedrun import served

from datagen.envs.registry import get_domain

STUB = ROOT / "tests" / "openai_stub.py"


@pytest.fixture(scope="module")
def retail():
    return get_domain("retail")


def in_process(domain, task) -> tuple[list[str], str]:
    env = domain.env_for_task(task)
    observations = [o.content for o in env.replay(task.actions)]
    return observations, env.state_hash()


# -- MCP ---------------------------------------------------------------------------------------------


async def mcp_walk(server: Any, mode: str, task) -> dict[str, Any]:
    from mcp.client.client import Client

    async with Client(server, mode=mode) as client:
        tools = (await client.list_tools()).tools
        policy = (await client.get_prompt("policy")).messages[0].content.text
        start = (await client.read_resource("apigen://state-hash", cache_mode="bypass")).contents[0].text
        bad = await client.call_tool(task.actions[-1].name, {"no_such_argument": 1})
        after_bad = (await client.read_resource("apigen://state-hash", cache_mode="bypass")).contents[0].text
        results = [await client.call_tool(a.name, a.arguments) for a in task.actions]
        state = json.loads(
            (await client.read_resource("apigen://state", cache_mode="bypass")).contents[0].text
        )
        violations = (await client.read_resource("apigen://violations", cache_mode="bypass")).contents[0].text
    return {
        "tools": tools,
        "policy": policy,
        "start": start,
        "bad": bad,
        "after_bad": after_bad,
        "results": results,
        "state": state,
        "violations": json.loads(violations),
    }


def check_mcp_walk(walk: dict[str, Any], domain, task) -> None:
    from datagen.envs.store import state_hash_of

    by_name = {t.name: t for t in walk["tools"]}
    assert sorted(by_name) == sorted(domain.tool_names)
    for spec in domain.tools:
        tool = by_name[spec.name]
        assert tool.input_schema == spec.schema["function"]["parameters"]
        assert tool.description == spec.schema["function"]["description"]
        assert tool.annotations.read_only_hint is (spec.kind == "read")
    assert walk["policy"] == domain.policy
    # a failed call: a tool error carrying our text, and the state unchanged
    assert walk["bad"].is_error
    assert walk["bad"].content[0].text.startswith(f"Error: invalid arguments for {task.actions[-1].name}")
    assert walk["after_bad"] == walk["start"]
    observations, final_hash = in_process(domain, task)
    assert [r.content[0].text for r in walk["results"]] == observations
    assert not any(r.is_error for r in walk["results"])
    assert walk["results"][-1].meta["apigen-mt/state_hash"] == final_hash
    assert state_hash_of(walk["state"]) == final_hash
    assert walk["violations"] == []


def test_mcp_over_stdio_from_a_plain_shell(plain_env, retail):
    """`apigen-mt envs serve retail --protocol mcp --stdio` is a stdio MCP server the SDK's client starts
    (in its default protocol era and in the handshake era): the session starts from the task given on
    the command line."""
    from mcp.client.stdio import StdioServerParameters

    task = retail.gold_tasks[0]
    server = StdioServerParameters(
        command=APIGEN_MT,
        args=["envs", "serve", "retail", "--protocol", "mcp", "--stdio", "--task", task.id],
        env=plain_env,
        cwd=str(ROOT),
    )
    for mode in ("auto", "legacy"):
        check_mcp_walk(asyncio.run(mcp_walk(server, mode, task)), retail, task)


def test_mcp_over_http_one_environment_per_session(plain_env, retail, tmp_path: Path):
    """Over HTTP every handshake-era session has its own environment, started from the URL's task or
    seed; a 2026-07-28 request (no session) may read the policy but its tool call is refused."""
    from mcp.client.client import Client

    task = next(t for t in retail.gold_tasks if any(retail.tool(a.name).kind == "write" for a in t.actions))

    async def run(base: str) -> None:
        walk = await mcp_walk(f"{base}/mcp?task={task.id}", "legacy", task)
        check_mcp_walk(walk, retail, task)
        # a second session on the same server starts afresh: its state is the task's start, not the end
        async with Client(f"{base}/mcp?task={task.id}", mode="legacy") as other:
            hash_now = (
                (await other.read_resource("apigen://state-hash", cache_mode="bypass")).contents[0].text
            )
        assert hash_now == walk["start"] != walk["results"][-1].meta["apigen-mt/state_hash"]
        async with Client(f"{base}/mcp?seed=0", mode="legacy") as seeded:
            seed_hash = (
                (await seeded.read_resource("apigen://state-hash", cache_mode="bypass")).contents[0].text
            )
        assert seed_hash == retail.new_env(0).state_hash()
        async with Client(f"{base}/mcp", mode="auto") as modern:
            assert (await modern.get_prompt("policy")).messages[0].content.text == retail.policy
            refused = await modern.call_tool(task.actions[0].name, task.actions[0].arguments)
        assert refused.is_error and "handshake-era session" in refused.content[0].text

    with served(["retail", "--protocol", "mcp"], plain_env, tmp_path / "mcp.log") as base:
        asyncio.run(run(base))


def test_serve_refuses_bad_settings_in_one_line(plain_env):
    import subprocess

    for args, expected in (
        (["retail", "--protocol", "openenv", "--stdio"], "--stdio serves MCP only"),
        (["retail", "--protocol", "mcp", "--stdio", "--task", "no-such-task"], "has no task 'no-such-task'"),
        (["no-such-domain", "--protocol", "mcp"], "no domain named 'no-such-domain'"),
    ):
        done = subprocess.run(
            [APIGEN_MT, "envs", "serve", *args], capture_output=True, text=True, env=plain_env, timeout=120
        )
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


# -- OpenEnv -----------------------------------------------------------------------------------------


async def openenv_episode(base: str, reset: dict[str, Any], calls, answer: str) -> dict[str, Any]:
    from openenv.core import GenericEnvClient

    async with GenericEnvClient(base_url=base) as env:
        start = await env.reset(**reset)
        steps = [
            await env.step({"type": "call_tool", "tool_name": c.name, "arguments": c.arguments})
            for c in calls
        ]
        state = await env.state()
        end = await env.step({"type": "message", "content": answer})
        after = await env.step({"type": "call_tool", "tool_name": "x", "arguments": {}})
    return {"start": start, "steps": steps, "state": state, "end": end, "after": after}


def test_openenv_from_a_plain_shell_reward_is_the_verdict(plain_env, retail, tmp_path: Path):
    """reset(task_id) gives the policy, the tools and the user's first message; tool calls answer as
    in-process; the end's reward is Phase 2's verdict with its parts named; a do-nothing episode on a
    task that changes the state gets 0 for the state part; a blueprint record starts an episode too."""
    from datagen.envs.store import state_hash_of

    task = next(t for t in retail.gold_tasks if any(retail.tool(a.name).kind == "write" for a in t.actions))
    observations, final_hash = in_process(retail, task)
    answer = "All done. " + " ".join(task.outputs)
    blueprint = {
        "id": "bp-1",
        "env": "retail",
        "seed": retail.task_seed(task),
        "persona": task.persona,
        "instruction": task.instruction,
        "actions": [a.model_dump() for a in task.actions],
        "outputs": task.outputs,
    }

    async def run(base: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        gold = await openenv_episode(base, {"task_id": task.id}, task.actions, answer)
        idle = await openenv_episode(base, {"task_id": task.id}, [], answer)
        from_blueprint = await openenv_episode(base, {"blueprint": blueprint}, task.actions, answer)
        return gold, idle, from_blueprint

    with served(["retail", "--protocol", "openenv"], plain_env, tmp_path / "openenv.log") as base:
        gold, idle, from_blueprint = asyncio.run(run(base))

    opening = gold["start"].observation
    assert opening["content"] == task.instruction  # no user model: the task's own words
    assert opening["policy"] == retail.policy and task.id and opening["system_prompt"]
    assert [t["function"]["name"] for t in opening["tools"]] == retail.tool_names
    assert [s.observation["content"] for s in gold["steps"]] == observations
    assert gold["steps"][-1].observation["state_hash"] == final_hash
    assert state_hash_of(gold["state"]["tables"]) == gold["state"]["state_hash"] == final_hash
    assert gold["end"].done and gold["end"].reward == 1.0
    verdict = gold["end"].observation["verdict"]
    assert verdict["parts"] == {"state": True, "outputs": True, "policy": True, "provenance": True}
    assert verdict["checks"]["verification"] == "state"
    assert gold["after"].observation["kind"] == "error" and "over" in gold["after"].observation["content"]

    assert idle["end"].done and idle["end"].reward == 0.0
    assert idle["end"].observation["verdict"]["parts"]["state"] is False
    assert idle["end"].observation["verdict"]["failure"] == "state_mismatch"

    assert from_blueprint["end"].reward == 1.0


def test_openenv_simulated_user_from_a_recipe_alias(plain_env, retail, tmp_path: Path):
    """Given a recipe and a model alias, the user is the runner core's simulated user on that model (here
    the stub OpenAI server): its first message opens the episode and its ###STOP### ends it."""
    import subprocess

    task = retail.gold_tasks[0]
    stub = subprocess.Popen(
        [str(Path(APIGEN_MT).parent / "python"), str(STUB)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        url = stub.stdout.readline().strip()
        recipe = tmp_path / "serve.yaml"
        recipe.write_text(
            "models:\n"
            f"  human: {{model: stub, backend: openai, base_urls: ['{url}'], max_retries: 0}}\n"
            "simulate:\n  user: {model: human, best_of_n: 2}\n"
        )
        args = ["retail", "--protocol", "openenv", "--recipe", str(recipe), "--user", "human"]
        with served(args, plain_env, tmp_path / "openenv.log") as base:
            episode = asyncio.run(
                openenv_episode(base, {"task_id": task.id}, task.actions, "Done. " + " ".join(task.outputs))
            )
    finally:
        stub.terminate()
        stub.wait(timeout=10)
    assert episode["start"].observation["content"] == "Hello, I need help with my account."
    end = episode["end"]
    assert end.done and end.observation["verdict"]["checks"]["termination"] == "user_stop"
    assert end.observation["verdict"]["parts"]["state"] is True


def test_envs_serve_help_imports_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys\nfrom datagen.cli import main\n"
        "try:\n    main(['envs', 'serve', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'vllm', 'transformers', 'trl', 'datasets', 'mcp', 'openenv', 'fastmcp')"
        " if m in sys.modules)\nprint('HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0 and "HEAVY []" in done.stdout, done.stdout + done.stderr
