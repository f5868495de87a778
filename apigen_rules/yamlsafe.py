"""The one reader of YAML a person or another tool wrote (a recipe, a saved run config, a card's
header): plain data only, and bounded in what it may expand to.

YAML aliases let a few hundred bytes stand for billions of values (the "billion laughs" file): the
parser keeps them shared, but the first walk over the data (validation, redaction, a dump) expands
them and hangs or exhausts memory. So the composed node graph is measured before any Python object
is built: at most :data:`MAX_ALIASES` aliases, nesting at most :data:`MAX_DEPTH` deep, no alias that
contains itself, and aliases adding at most :data:`MAX_ALIAS_GROWTH` nodes and characters to what the
file spells out. Tags that build Python objects (``!!python/...``) stay refused, as ``safe_load``
refuses them. Every refusal is one :class:`YamlError` line naming the file.

Every package reads YAML through this one module (training too, without loading datagen).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_ALIASES = 10_000
MAX_DEPTH = 100
MAX_ALIAS_GROWTH = 1_000_000  # nodes + scalar characters that aliases may add to the file's own

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlError(ValueError):
    """A YAML file that cannot be read as plain, bounded data; its text is one line for people."""


def load_yaml(text: str, source: str) -> Any:
    """``text`` (the content of ``source``) as plain data; a :class:`YamlError` for bad syntax, a
    Python tag, or a file whose aliases expand past the bounds above."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, source, len(text))
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise YamlError(_syntax_line(exc, source)) from None
    except RecursionError:
        raise YamlError(
            f"{source}: nested too deeply to read; a config nests a few levels, flatten it"
        ) from None
    finally:
        loader.dispose()


def read_yaml_mapping(
    path: str | Path, *, missing_hint: str, example: str = "", empty_ok: bool = False
) -> dict[str, Any]:
    """The mapping of keys in the YAML file ``path`` (a recipe). Every problem is one :class:`YamlError`
    line naming the file: missing (``missing_hint`` says what to pass instead), unreadable, bad or
    unbounded YAML, or not a mapping (``example``, a key and value, shows the shape). An empty file is
    ``{}`` where ``empty_ok``, and refused otherwise."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise YamlError(f"no recipe at {path}; {missing_hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlError(f"cannot read the recipe {path}: {exc}") from None
    data = load_yaml(text, str(path))
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        shape = f" (e.g. `{example}`)" if example else ""
        raise YamlError(f"{path}: expected a YAML mapping of recipe keys{shape}, found {found}")
    return data


def _syntax_line(exc: yaml.YAMLError, source: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if "could not determine a constructor for the tag" in problem:
        tag = problem.split("'")[1] if problem.count("'") >= 2 else "?"
        tag = tag.replace("tag:yaml.org,2002:", "!!")
        return (
            f"{source}{where}: the tag {tag} is refused: a config holds plain data (mappings, lists, "
            "strings, numbers); remove the tag"
        )
    return f"{source}: not valid YAML{where}: {problem}; fix the syntax"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, source: str, length: int) -> None:
    """Walks the node graph once (each node once, iteratively): counts aliases (a node met again),
    depth, cycles, and the size of the data once every alias is expanded."""
    limit = 2 * length + 2 + MAX_ALIAS_GROWTH  # a file without aliases stays far below 2 x its length
    sizes: dict[int, int] = {}  # node -> expanded size, once known
    open_: set[int] = set()  # nodes on the current path (a cycle returns to one)
    aliases = 0
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, finished = stack.pop()
        key = id(node)
        if finished:
            open_.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > limit:
                raise YamlError(
                    f"{source}: its aliases (*name) expand past {MAX_ALIAS_GROWTH:,} values and characters "
                    "beyond what the file spells out (a 'billion laughs' file?); write the values out"
                )
            continue
        if key in sizes or key in open_:
            aliases += 1
            if key in open_:
                raise YamlError(
                    f"{source}: an alias (*name) at line {node.start_mark.line + 1} refers to a mapping or "
                    "list that contains it; a config cannot hold itself"
                )
            if aliases > MAX_ALIASES:
                raise YamlError(
                    f"{source}: more than {MAX_ALIASES:,} aliases (*name); a config needs a few, "
                    "write the values out"
                )
            continue
        if depth > MAX_DEPTH:
            raise YamlError(
                f"{source}: nested more than {MAX_DEPTH} levels deep at line {node.start_mark.line + 1}; "
                "a config nests a few levels, flatten it"
            )
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = 1 + len(node.value)
            continue
        open_.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in reversed(_children(node)))
