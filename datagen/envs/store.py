"""Episode state for native environments: tables of JSON records over a shared, never-mutated base.

Many episodes run at once in one process, so each owns its state, and ``reset`` must be cheap: an
episode starts as a shallow copy of the base tables and copies a record only when a tool edits it
(copy-on-write). Record hashes of the base are computed once per base and combined additively, so
``state_hash`` costs O(records changed in this episode), not O(database).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

Record = dict[str, Any]
Tables = dict[str, dict[str, Record]]

_MOD = 1 << 256
_MISSING = object()


def canonical(value: Any) -> Any:
    """JSON value with integral floats as ints (10 == 10.0) and tuples as lists."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    raise TypeError(f"state must be JSON-able; found {type(value).__name__}: {value!r}")


def canonical_json(value: Any) -> str:
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _record_digest(table: str, key: str, record: Record) -> int:
    # surrogatepass: tools refuse text that is not valid Unicode, but a hash must never be the thing
    # that fails; valid text encodes exactly as UTF-8, so no hash changes.
    payload = f"{table}\x00{key}\x00{canonical_json(record)}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(payload).digest(), "big")


class BaseState:
    """An immutable database (tables of records) shared by every episode built on it."""

    def __init__(self, tables: Tables):
        self.tables: Tables = tables
        self._digests: dict[tuple[str, str], int] = {}
        self._total: int | None = None

    def digest(self, table: str, key: str) -> int:
        found = self._digests.get((table, key))
        if found is None:
            found = _record_digest(table, key, self.tables[table][key])
            self._digests[(table, key)] = found
        return found

    def total(self) -> int:
        if self._total is None:
            self._total = sum(self.digest(t, k) for t, rows in self.tables.items() for k in rows) % _MOD
        return self._total


class Store:
    """One episode's view of a database. Tools read with get/find/scan and change with edit/insert/delete.

    Records returned by ``get``/``find``/``scan`` are copies: changing them changes nothing. ``edit``
    returns the episode's own mutable record. Each tool call runs inside ``transaction()`` so a
    failing call leaves the state exactly as it was.
    """

    def __init__(self, base: BaseState):
        self._base = base
        self._tables: Tables = {name: dict(rows) for name, rows in base.tables.items()}
        self._owned: set[tuple[str, str]] = set()  # records this episode copied or created
        self._touched: set[tuple[str, str]] = set()  # keys whose value may differ from the base
        self._journal: dict[tuple[str, str], Any] | None = None

    # -- reading -----------------------------------------------------------------------------
    def table_names(self) -> list[str]:
        """The tables of the database."""
        return list(self._tables)

    def _rows(self, table: str) -> dict[str, Record]:
        try:
            return self._tables[table]
        except KeyError:
            raise KeyError(f"no table {table!r}; tables are {sorted(self._tables)}") from None

    def has(self, table: str, key: str) -> bool:
        """Whether ``table`` holds a record ``key``."""
        return key in self._rows(table)

    def get(self, table: str, key: str) -> Record | None:
        """A copy of record ``key`` of ``table``, or None."""
        record = self._rows(table).get(key)
        return copy.deepcopy(record) if record is not None else None

    def keys(self, table: str) -> list[str]:
        """The record keys of ``table``."""
        return list(self._rows(table))

    def scan(self, table: str, predicate: Callable[[Record], bool]) -> list[Record]:
        """Copies of the records for which ``predicate`` (given a read-only record) is true."""
        return [copy.deepcopy(r) for r in self._rows(table).values() if predicate(r)]

    def find(self, table: str, **equals: Any) -> list[Record]:
        """Copies of the records whose fields equal ``equals`` (``find("orders", user_id=u)``)."""
        return self.scan(table, lambda r: all(r.get(f) == v for f, v in equals.items()))

    def count(self, table: str) -> int:
        """How many records ``table`` holds."""
        return len(self._rows(table))

    # -- writing -----------------------------------------------------------------------------
    def _remember(self, table: str, key: str) -> None:
        if self._journal is None:
            raise RuntimeError("state changes must happen inside Store.transaction() (tools are run in one)")
        slot = (table, key)
        if slot in self._journal:
            return
        current = self._rows(table).get(key, _MISSING)
        owned = slot in self._owned
        # A base record is never mutated, so the reference itself is the backup.
        backup = copy.deepcopy(current) if owned and current is not _MISSING else current
        self._journal[slot] = (backup, owned, slot in self._touched)

    def edit(self, table: str, key: str) -> Record:
        """The episode's own, mutable copy of record ``key`` (changes to it are the episode's state);
        raises ``KeyError`` when there is none."""
        rows = self._rows(table)
        if key not in rows:
            raise KeyError(f"{table} has no record {key!r}")
        self._remember(table, key)
        slot = (table, key)
        if slot not in self._owned:
            rows[key] = copy.deepcopy(rows[key])
            self._owned.add(slot)
        self._touched.add(slot)
        return rows[key]

    def insert(self, table: str, key: str, record: Record) -> None:
        """Adds ``record`` under ``key``; raises ``KeyError`` when the key is taken."""
        rows = self._rows(table)
        if key in rows:
            raise KeyError(f"{table} already has a record {key!r}")
        self._remember(table, key)
        rows[key] = copy.deepcopy(record)
        self._owned.add((table, key))
        self._touched.add((table, key))

    def delete(self, table: str, key: str) -> None:
        """Removes record ``key``; raises ``KeyError`` when there is none."""
        rows = self._rows(table)
        if key not in rows:
            raise KeyError(f"{table} has no record {key!r}")
        self._remember(table, key)
        del rows[key]
        self._owned.discard((table, key))
        self._touched.add((table, key))

    def transaction(self) -> _Transaction:
        """A context in which every change is undone if the block raises (one tool call runs in one)."""
        return _Transaction(self)

    def _rollback(self) -> None:
        assert self._journal is not None
        for (table, key), (backup, owned, touched) in self._journal.items():
            rows = self._tables[table]
            if backup is _MISSING:
                rows.pop(key, None)
            else:
                rows[key] = backup
            (self._owned.add if owned else self._owned.discard)((table, key))
            (self._touched.add if touched else self._touched.discard)((table, key))

    # -- whole-state views ---------------------------------------------------------------------
    def state_hash(self) -> str:
        """The canonical hash of the whole state, computed from the base's and the changed records'."""
        total = self._base.total()
        for table, key in self._touched:
            if key in self._base.tables.get(table, {}):
                total -= self._base.digest(table, key)
            record = self._tables[table].get(key)
            if record is not None:
                total += _record_digest(table, key, record)
        return f"{total % _MOD:064x}"

    def snapshot(self) -> Tables:
        """The whole state now, sharing unchanged records with the base (treat it as read-only)."""
        snap = {name: dict(rows) for name, rows in self._tables.items()}
        for table, key in self._owned:
            snap[table][key] = copy.deepcopy(self._tables[table][key])
        return snap

    def iter_records(self) -> Iterator[tuple[str, str, Record]]:
        """Every (table, key, record), read-only."""
        for table, rows in self._tables.items():
            for key, record in rows.items():
                yield table, key, record


class _Transaction:
    def __init__(self, store: Store):
        self._store = store

    def __enter__(self) -> Store:
        if self._store._journal is not None:
            raise RuntimeError("transactions do not nest")
        self._store._journal = {}
        return self._store

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is not None:
            self._store._rollback()
        self._store._journal = None
        return False


def state_hash_of(tables: Tables) -> str:
    """The same hash ``Store.state_hash`` gives, computed from scratch over plain tables."""
    total = sum(_record_digest(t, k, r) for t, rows in tables.items() for k, r in rows.items())
    return f"{total % _MOD:064x}"


def diff_tables(before: Tables, after: Tables) -> list[str]:
    """A readable patch: one line per changed field, ``+``/``-`` for added/removed records."""
    lines: list[str] = []
    for table in sorted(set(before) | set(after)):
        old_rows, new_rows = before.get(table, {}), after.get(table, {})
        for key in sorted(set(old_rows) | set(new_rows)):
            old, new = old_rows.get(key), new_rows.get(key)
            if old is new:
                continue
            if old is None:
                lines.append(f"+ {table}/{key}: {canonical_json(new)}")
            elif new is None:
                lines.append(f"- {table}/{key}: {canonical_json(old)}")
            else:
                lines.extend(_diff_values(f"{table}/{key}", canonical(old), canonical(new)))
    return lines


def _diff_values(path: str, old: Any, new: Any) -> list[str]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            if k not in old:
                out.append(f"+ {path}.{k}: {canonical_json(new[k])}")
            elif k not in new:
                out.append(f"- {path}.{k}: {canonical_json(old[k])}")
            else:
                out.extend(_diff_values(f"{path}.{k}", old[k], new[k]))
        return out
    return [f"~ {path}: {canonical_json(old)} -> {canonical_json(new)}"]
