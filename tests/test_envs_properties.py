"""Bad input, for every tool of every registered native domain: random argument dicts (wrong types,
missing and extra keys, huge strings, real ids of other users) never raise out of ``call``, and an
error observation leaves the state exactly as it was.

Parametrised by the registry, so a domain is covered as soon as its entry point loads. A domain
whose package has not landed yet (no ``load_domain`` in its module) is skipped; any other loading
error fails.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datagen.envs.base import Domain
from datagen.envs.registry import DomainLoadError, get_domain, installed_domains

NATIVE_PREFIX = "datagen.envs."
ADAPTERS = ("datagen.envs.tau2",)


def _native_names() -> list[str]:
    return sorted(
        name
        for name, ep in installed_domains().items()
        if ep.value.startswith(NATIVE_PREFIX) and not ep.value.startswith(ADAPTERS)
    )


def _load_or_skip(name: str) -> Domain:
    ep = installed_domains()[name]
    module_name, _, attr = ep.value.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            pytest.skip(f"domain {name} has not landed yet ({module_name} does not exist)")
        raise
    if not hasattr(module, attr):
        pytest.skip(f"domain {name} has not landed yet ({module_name} has no {attr})")
    try:
        return get_domain(name)
    except DomainLoadError as exc:
        pytest.fail(str(exc))


def _sample_ids(domain: Domain) -> list[str]:
    """Real keys and string values of the evaluation database, so some calls hit real records."""
    env = domain.new_env()
    picked: list[str] = []
    for _, rows in env.snapshot().items():
        for key, record in list(rows.items())[:15]:
            picked.append(key)
            picked.extend(v for v in record.values() if isinstance(v, str) and len(v) < 60)
    return sorted(set(picked))


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.just("x" * 5000),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _arguments(param_names: tuple[str, ...], ids: list[str]) -> st.SearchStrategy[Any]:
    value = st.one_of(_values, st.sampled_from(ids), st.lists(st.sampled_from(ids), min_size=1, max_size=3))
    keys = (
        st.one_of(st.sampled_from(param_names), st.text(max_size=10)) if param_names else st.text(max_size=10)
    )
    as_dict = st.dictionaries(keys, value, max_size=len(param_names) + 2)
    complete = st.fixed_dictionaries({p: value for p in param_names}) if param_names else st.just({})
    return st.one_of(complete, complete, as_dict, _values)


def _check_tool(env: Any, spec: Any, ids: list[str]) -> None:
    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(arguments=_arguments(spec.params, ids))
    def property_holds(arguments: Any) -> None:
        before = env.state_hash()
        calls = len(env.trace)
        observation = env.call({"name": spec.name, "arguments": arguments})
        assert len(env.trace) == calls + 1
        assert isinstance(observation.content, str)
        if not observation.ok:
            assert observation.content.startswith("Error:"), observation.content
            assert env.state_hash() == before, f"{spec.name} failed but changed the state: {arguments!r}"
        elif spec.kind == "read":
            assert env.state_hash() == before, f"read tool {spec.name} changed the state"
        if env.state_hash() != before:
            env.reset()

    property_holds()


@pytest.mark.parametrize("name", _native_names())
def test_random_arguments_never_raise_and_errors_change_nothing(name: str):
    domain = _load_or_skip(name)
    ids = _sample_ids(domain)
    env = domain.new_env()
    for spec in domain.tools:
        _check_tool(env, spec, ids)


@pytest.mark.parametrize("name", _native_names())
def test_malformed_calls_are_error_observations(name: str):
    domain = _load_or_skip(name)
    env = domain.new_env()
    before = env.state_hash()
    for call in (
        {"name": "no_such_tool", "arguments": {}},
        {"name": None, "arguments": {}},
        {"name": domain.tools[0].name, "arguments": "not an object"},
        {"name": domain.tools[0].name, "arguments": [1, 2]},
        "not a dict",
    ):
        observation = env.call(call)  # type: ignore[arg-type]
        assert not observation.ok and observation.content.startswith("Error:")
    assert env.state_hash() == before
