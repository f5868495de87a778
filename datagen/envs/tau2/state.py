"""A τ² database as our tables, and an episode's private copy of it.

``episode_copy`` gives each episode a copy-on-access view of the domain's database, so a reset costs
microseconds instead of a 3 MB copy; ``db_tables`` reads a database as our JSON tables
(``{table: {id: record}}``, dumping only the records an episode touched); ``tables_hash`` is our
canonical hash of them, re-hashing only what differs from the domain's base state.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from datagen.envs.store import _MOD, BaseState, Tables, _record_digest, state_hash_of


class _CopyOnAccess(dict):
    """One table of an episode's τ² database, sharing records with the domain's base database.

    τ² tools mutate the pydantic records they look up, so a record is deep-copied into the episode
    the first time it is read through this table (``[]``, ``get``, ``values``, ``items``, ``pop``);
    membership tests, ``len`` and key iteration copy nothing. pydantic's serializer reads the
    underlying dict directly, so ``model_dump`` sees the episode's copies and the shared base records
    exactly as a fully copied database would hold them.
    """

    __slots__ = ("_owned",)

    def __init__(self, base: dict[str, Any]):
        super().__init__(base)
        self._owned: set[str] = set()

    def _own(self, key: str) -> Any:
        value = dict.__getitem__(self, key)
        if key not in self._owned:
            value = value.model_copy(deep=True) if isinstance(value, BaseModel) else copy.deepcopy(value)
            dict.__setitem__(self, key, value)
            self._owned.add(key)
        return value

    @property
    def owned(self) -> set[str]:
        return self._owned

    def _own_all(self) -> None:
        for key in list(dict.keys(self)):
            self._own(key)

    def __getitem__(self, key: str) -> Any:
        return self._own(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self._own(key) if key in self else default

    def __setitem__(self, key: str, value: Any) -> None:
        dict.__setitem__(self, key, value)
        self._owned.add(key)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self._own(key)

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            self._own(key)
            self._owned.discard(key)
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:
        self._own_all()
        return dict.popitem(self)

    def values(self):  # type: ignore[override]
        self._own_all()
        return dict.values(self)

    def items(self):  # type: ignore[override]
        self._own_all()
        return dict.items(self)

    def copy(self) -> dict[str, Any]:
        self._own_all()
        return dict(dict.items(self))

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v, memo) for k, v in dict.items(self)}

    def __reduce__(self) -> Any:
        return (dict, (dict(dict.items(self)),))


def db_tables(db: BaseModel | None, prefix: str = "", base: Tables | None = None) -> Tables:
    """A τ² database as our tables.

    ``dict`` fields are tables as they are; ``list`` fields are keyed by the records' first unique
    ``*_id`` field (else by position); other fields go into one table (``db``/``user``) keyed by
    field name. Records that are not objects are wrapped as ``{"value": ...}``. With ``base`` (the
    domain's tables), a copy-on-access table dumps only the records the episode touched.
    """
    if db is None:
        return {}
    tables: Tables = {}
    singles: dict[str, Any] = {}
    for field in type(db).model_fields:
        name = f"{prefix}{field}"
        raw = getattr(db, field)
        if isinstance(raw, _CopyOnAccess) and base is not None and name in base:
            tables[name] = _touched_table(raw, base[name])
            continue
        value = db.model_dump(mode="json", include={field})[field]
        if isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
            tables[name] = value
        elif isinstance(value, list):
            tables[name] = _keyed_rows(value)
        else:
            singles[field] = value if isinstance(value, dict) else {"value": value}
    if singles:
        tables[prefix.rstrip(".") or "db"] = singles
    return tables


def _touched_table(table: _CopyOnAccess, base_rows: dict[str, Any]) -> dict[str, Any]:
    rows = {key: base_rows[key] for key in dict.keys(table) if key in base_rows and key not in table.owned}
    for key in table.owned:
        if dict.__contains__(table, key):
            rows[key] = dict.__getitem__(table, key).model_dump(mode="json")
    return rows


def _keyed_rows(rows: list[Any]) -> dict[str, Any]:
    records = [r if isinstance(r, dict) else {"value": r} for r in rows]
    if records:
        for field in records[0]:
            if not field.endswith("_id"):
                continue
            keys = [str(r.get(field)) for r in records]
            if all(field in r for r in records) and len(set(keys)) == len(keys):
                return dict(zip(keys, records, strict=True))
    return {str(i): r for i, r in enumerate(records)}


def tables_hash(tables: Tables, base: BaseState | None = None) -> str:
    """``state_hash_of(tables)``, re-hashing only the records that differ from ``base``."""
    if base is None:
        return state_hash_of(tables)
    total = base.total()
    for table in set(tables) | set(base.tables):
        now, then = tables.get(table, {}), base.tables.get(table, {})
        for key in set(now) | set(then):
            new, old = now.get(key), then.get(key)
            if new is old or new == old:
                continue
            if old is not None:
                total -= base.digest(table, key)
            if new is not None:
                total += _record_digest(table, key, new)
    return f"{total % _MOD:064x}"


def episode_copy(db: BaseModel) -> BaseModel:
    """A private copy of a τ² database for one episode: tables of records copy on access, the rest
    is deep-copied. Costs O(fields), not O(records)."""
    values: dict[str, Any] = {}
    for field in type(db).model_fields:
        value = getattr(db, field)
        is_table = isinstance(value, dict) and all(isinstance(v, BaseModel) for v in value.values())
        values[field] = _CopyOnAccess(value) if is_table else copy.deepcopy(value)
    return type(db).model_construct(_fields_set=set(db.model_fields_set), **values)
