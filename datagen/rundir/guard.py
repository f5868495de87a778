"""What a command checks before it writes into a folder: that the folder can hold its output
(:func:`check_output_folder`) and, for a run it continues, that the settings given now make what the
run made (:func:`check_resume`, one rule for every kind of run)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from apigen_rules.errors import UsageError

# Recipe keys that change how a run goes, not what it makes, so a resumed run may change them:
# where and how fast jobs run, how a model server is reached, how many jobs of the same kind there
# are (done ones are kept), the dataset card's licence. Matched as the last part of a dotted key
# (`simulate.concurrency`, `models.teacher.base_urls`); `executor` covers its whole section.
RESUMABLE_KEYS = frozenset(
    {
        "concurrency",
        "executor",
        "max_concurrency",
        "timeout_s",
        "max_retries",
        "base_urls",
        "api_key_env",
        "out_dir",
        "num_tasks",
        "attempts",
        "license",
        "license_name",
        "license_link",
    }
)
# Sections a later command may add to a run that was started without them (Phase 2's `simulate:`
# after `apigen-mt blueprints`); given as null, the saved one is kept.
LATER_SECTIONS = frozenset({"simulate"})


def recipe_changes(saved: Any, given: Any, where: str = "") -> list[str]:
    """The changes from ``saved`` to ``given`` that change what a run makes, as ``key: old -> new``
    (keys present on one side only are an older or newer version's, not a change)."""
    if isinstance(saved, dict) and isinstance(given, dict):
        changes = []
        for key in saved:
            if key not in given or key in RESUMABLE_KEYS:
                continue
            if key in LATER_SECTIONS and not where and (saved[key] is None or given[key] is None):
                continue
            changes += recipe_changes(saved[key], given[key], f"{where}.{key}" if where else str(key))
        return changes
    if saved == given:
        return []
    return [f"{where or 'the recipe'}: {_short(saved)} -> {_short(given)}"]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_resume(
    saved: dict[str, Any] | None,
    resolved: dict[str, Any],
    root: Path,
    saved_file: Path,
    *,
    deciding: Collection[str] | None = None,
) -> None:
    """Refuses (one line naming the keys) to continue the run in ``root`` with a recipe that changes
    what it makes: the domain, seed, models, proposal, name... (everything but :data:`RESUMABLE_KEYS`;
    with ``deciding``, only those top-level keys). ``saved`` is the run's saved recipe (redacted),
    ``resolved`` the one given now."""
    from apigen_rules.redact import redact_config

    given = redact_config(resolved)
    if deciding is not None:
        saved = {key: value for key, value in (saved or {}).items() if key in deciding}
        given = {key: given.get(key) for key in saved}
    changes = recipe_changes(saved or {}, given)
    if changes:
        shown = "; ".join(changes[:6]) + (f"; and {len(changes) - 6} more" if len(changes) > 6 else "")
        raise UsageError(
            f"{root} was made with another recipe ({shown}); --resume continues a run with the recipe it "
            f"was made with (saved in {saved_file}): put those keys back, or start a new run with --out"
        )


def check_output_folder(out: Path, *, reads: Iterable[Path] = (), flag: str = "--out") -> Path:
    """``out`` when a command may write into it, else one :class:`UsageError` line: ``out`` (or a folder
    above it) is a file or a link to nothing, or ``out`` is (inside) a folder in ``reads``, the
    command's inputs, where what it writes would mix with what it reads. Every writer's ``--out``
    comes here before any work starts."""
    for path in (out, *out.parents):
        if (path.exists() or path.is_symlink()) and not path.is_dir():
            what = "a file" if path.exists() else "a link that leads nowhere"
            found = what if path == out else f"that {path} is {what}"
            raise UsageError(
                f"{flag} {out}: expected a folder to write into, found {found}; choose another {flag} or move it away"
            )
    target = out.resolve()
    for source in reads:
        if source.is_dir() and (target == source.resolve() or source.resolve() in target.parents):
            found = "the input itself" if target == source.resolve() else "one inside it"
            raise UsageError(
                f"{flag} {out}: expected a folder outside the input {source}, found {found} (what is "
                f"written there would mix with what is read); choose a folder elsewhere"
            )
    return out
