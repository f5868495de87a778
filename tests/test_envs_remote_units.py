"""The small rules of remote environments, without a server: how a recipe's `env:` is read, where an
episode starts, how a URL carries it, how a server's answers are read, and how a served tool becomes
the method TRL builds its schema from (property tests: any schema of the shapes tools use)."""

from __future__ import annotations

import keyword
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datagen.envs.remote.connections import _mcp_observation
from datagen.envs.remote.loop import RemoteError
from datagen.envs.remote.servers import _with_query
from datagen.envs.serve.sessions import StartError, StartState
from datagen.recipe import RecipeError, validate_recipe


def config(env: Any) -> Any:
    from datagen.recipe.datagen import DatagenRecipe

    return validate_recipe({"name": "x", "env": env}, DatagenRecipe, "r.yaml")


def test_a_recipe_env_is_a_name_or_a_typed_remote_declaration():
    from datagen.recipe.remote_env import McpEnv, OpenEnvEnv, Restart, ServerReset

    assert config("retail").env == "retail"
    mcp = config({"source": "mcp", "name": "n", "command": ["srv"], "start": {"type": "restart"}}).env
    assert isinstance(mcp, McpEnv) and isinstance(mcp.start, Restart)
    openenv = config({"source": "openenv", "name": "n", "url": "http://h:1"}).env
    assert isinstance(openenv, OpenEnvEnv) and isinstance(openenv.start, ServerReset)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"source": "mcp", "name": "n"}, "exactly one of `command` (stdio) or `url`"),
        ({"source": "mcp", "name": "n", "command": ["a"], "url": "u"}, "exactly one of `command`"),
        (
            {"source": "mcp", "name": "n", "url": "u", "start": {"type": "restart"}},
            "restart needs a `command`",
        ),
        ({"source": "mcp", "name": "n", "url": "u", "bogus": 1}, "unknown key `env.remote.mcp.bogus`"),
        ({"source": "grpc", "name": "n"}, "does not match any of the expected tags: 'mcp', 'openenv'"),
        ({"source": "openenv", "name": "n", "url": "u", "start": {"type": "session"}}, "its own reset"),
        (
            {"source": "openenv", "name": "n", "url": "u", "state": {"type": "resource", "uri": "x"}},
            "state()",
        ),
        (5, "`env.name`: Input should be a valid string"),
    ],
)
def test_a_bad_env_declaration_is_one_line(env: Any, expected: str):
    with pytest.raises(RecipeError) as caught:
        config(env)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_phase2_on_ray_with_a_remote_env_is_refused_in_one_line():
    from datagen.recipe.datagen import DatagenRecipe

    data = {"name": "x", "env": {"source": "mcp", "name": "n", "url": "u"}, "simulate": {}}
    with pytest.raises(RecipeError, match="`executor: ray` with a remote `env:` .mcp. is not supported yet"):
        validate_recipe({**data, "executor": {"type": "ray", "workers": 2}}, DatagenRecipe, "r.yaml")
    assert validate_recipe(data, DatagenRecipe, "r.yaml").executor.type == "local"


def test_start_states_from_untyped_input():
    assert StartState.parse("3", None) == StartState(seed=3)
    assert StartState.parse(None, "t1") == StartState(task_id="t1")
    with pytest.raises(StartError, match="expected an integer seed, found 'x'"):
        StartState.parse("x", None)
    with pytest.raises(StartError, match="expected a task id"):
        StartState.parse(None, "")


@settings(max_examples=80, deadline=None)
@given(
    base=st.sampled_from(["http://h:1/mcp", "http://h:1/mcp?token=a", "https://h/p?x=1&y=2"]),
    seed=st.none() | st.integers(0, 10**9),
    task=st.none()
    | st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20),
)
def test_the_url_carries_the_start_and_keeps_its_own_query(base: str, seed: int | None, task: str | None):
    url = _with_query(base, StartState(seed=seed, task_id=task))
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    for key, values in parse_qs(urlsplit(base).query).items():
        assert query[key] == values
    assert query.get("seed") == ([str(seed)] if seed is not None else None)
    assert query.get("task") == ([task] if task is not None else None)


def test_openenv_mcp_observations_are_read_or_refused():
    result = {"content": [{"type": "text", "text": '{"a": 1}'}], "is_error": False}
    assert _mcp_observation({"tool_name": "t", "result": result}, "s").text == '{"a": 1}'
    failed = _mcp_observation(
        {"tool_name": "t", "result": {"content": [{"type": "text", "text": "no"}], "isError": True}}, "s"
    )
    assert not failed.ok and failed.text == "Error: no"
    framework = _mcp_observation(
        {"tool_name": "t", "error": {"error_type": "timeout", "message": "late"}}, "s"
    )
    assert not framework.ok and framework.text == "Error: late"
    with pytest.raises(RemoteError, match="expected a call_tool observation with a result"):
        _mcp_observation({"tool_name": "t", "result": "garbage"}, "s")


_LEAF = st.sampled_from(
    [{"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}, {"type": "object"}]
)
_PROPERTY = st.one_of(
    _LEAF,
    _LEAF.map(lambda leaf: {"type": "array", "items": leaf}),
    st.lists(st.sampled_from(["a", "b", "c d"]), min_size=1, max_size=3, unique=True).map(
        lambda values: {"type": "string", "enum": values}
    ),
)
_NAMES = st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True).filter(
    lambda n: not keyword.iskeyword(n) and n not in {"self", "return"}
)


@settings(max_examples=60, deadline=None)
@given(
    properties=st.dictionaries(_NAMES, _PROPERTY, max_size=4),
    required=st.data(),
    description=st.text(st.characters(codec="ascii", categories=["L", "N", "Zs"]), min_size=1, max_size=40),
)
def test_a_served_tool_becomes_a_method_with_its_schema(
    properties: dict[str, Any], required: Any, description: str
):
    """What transformers reads back from the generated method is the tool's schema: names, descriptions,
    types (enums, arrays of a type), and which parameters are required."""
    from transformers.utils import get_json_schema

    from training.rl.served import tool_method

    needed = required.draw(st.lists(st.sampled_from(sorted(properties)), unique=True)) if properties else []
    params = {name: {**prop, "description": f"the {name}"} for name, prop in properties.items()}
    schema = {
        "type": "function",
        "function": {
            "name": "some_tool",
            "description": description,
            "parameters": {"type": "object", "properties": params, "required": needed},
        },
    }
    back = get_json_schema(tool_method(schema))["function"]
    # A blank description is no docstring for transformers: the method says "A tool." instead.
    assert back["name"] == "some_tool" and back["description"] == (description.strip() or "A tool.")
    assert sorted(back["parameters"].get("required", [])) == sorted(needed)
    for name, prop in params.items():
        got = back["parameters"]["properties"][name]
        assert got["description"] == prop["description"]
        assert got["type"] == prop["type"]
        if "enum" in prop:
            assert got["enum"] == prop["enum"]
        if prop["type"] == "array":
            assert got["items"]["type"] == prop["items"]["type"]


def test_a_parameter_python_cannot_name_is_refused_in_one_line():
    from training.rl.served import tool_method

    schema = {"type": "function", "function": {"name": "route", "description": "d", "parameters": {
        "type": "object", "properties": {"from": {"type": "string"}, "to": {"type": "string"}}}}}  # fmt: skip
    with pytest.raises(ValueError, match=r"tool 'route' has parameters \['from'\] that cannot be Python"):
        tool_method(schema)
