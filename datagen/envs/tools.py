"""Tools: plain typed Python functions whose JSON schema and argument validation are derived from them.

A tool is ``def name(db: Store, arg: type, ...) -> result`` with a Google-style docstring, marked
``@tool("read")`` or ``@tool("write")``. The first parameter is the episode's state; the others are
what the model supplies. The schema (OpenAI function-tool format) and a strict pydantic model for
the arguments are both built from the signature, so they cannot drift apart.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal, get_type_hints

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model

ToolKind = Literal["read", "write"]

MAX_MONEY = 1_000_000_000  # dollars; domains set their own, lower limits as tool rules


class ToolError(Exception):
    """A failure the agent should read (unknown id, wrong state, rule refused); the call changes nothing."""


def whole_cents(amount: float) -> float:
    """``amount`` if it is a finite number of dollars with at most two decimals; ValueError otherwise.

    Decided on the number as written (its shortest repr), so 12.34 passes and 12.345, 0.001 and 1e-9
    do not: a tolerance on ``amount * 100`` let 1e-9 through as a $0.00 transfer."""
    if not math.isfinite(amount):
        raise ValueError(f"expected a finite number of dollars, found {amount!r}")
    exponent = Decimal(repr(float(amount))).as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError(f"expected at most two decimal places (whole cents), found {amount!r}")
    return amount


#: A tool parameter that is an amount of money: positive, finite, whole cents, bounded. The argument
#: model refuses anything else with a clean tool error before the tool runs.
Money = Annotated[float, Field(gt=0, le=MAX_MONEY, allow_inf_nan=False), AfterValidator(whole_cents)]


def text_problem(value: Any) -> str | None:
    """Why ``value`` (JSON-like arguments) cannot be stored, hashed or written as UTF-8, or None.

    A lone surrogate (``"\\ud800"`` is valid JSON) decodes into a Python str that no UTF-8 writer
    accepts; such text is refused at the tool boundary so it never reaches the state."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # inf/nan: refused per field by the model
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end].encode("unicode_escape").decode("ascii")
        return f"holds text that is not valid Unicode ({bad}, a lone surrogate); send plain text"
    except (TypeError, ValueError, RecursionError) as exc:
        return f"is not plain JSON ({type(exc).__name__}: {str(exc)[:200]})"
    return None


@dataclass(frozen=True)
class ToolSpec:
    """One tool as the toolkit uses it: the function, whether it reads or writes, the JSON schema the
    model is shown and the strict argument model calls are validated with (see :func:`build_tool_spec`)."""

    name: str
    kind: ToolKind
    fn: Callable[..., Any]
    description: str
    schema: dict[str, Any]  # {"type": "function", "function": {"name", "description", "parameters"}}
    args_model: type[BaseModel]
    params: tuple[str, ...]
    produces: frozenset[str] = field(default_factory=frozenset)

    def validate_arguments(self, arguments: Any) -> dict[str, Any]:
        """The arguments as typed Python values; raises ToolError naming every problem."""
        check_plain_arguments(self.name, arguments)
        try:
            parsed = self.args_model.model_validate(arguments)
        except ValidationError as exc:
            raise invalid_arguments(self.name, exc) from exc
        return {name: getattr(parsed, name) for name in self.params}


def invalid_arguments(name: str, exc: ValidationError) -> ToolError:
    """The tool error the agent reads for arguments that fail ``name``'s argument model: every problem,
    each as ``field: message``."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}" for err in exc.errors()
    )
    return ToolError(f"invalid arguments for {name}: {problems}")


def check_plain_arguments(name: str, arguments: Any) -> None:
    """Raises ToolError unless ``arguments`` is a JSON object of plain, UTF-8-writable values."""
    if not isinstance(arguments, dict):
        raise ToolError(f"arguments for {name} must be a JSON object, got {type(arguments).__name__}")
    problem = text_problem(arguments)
    if problem:
        raise ToolError(f"arguments for {name}: the call {problem}")


def tool(
    kind: ToolKind, *, produces: set[str] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Marks a function as a tool. ``produces`` names output fields that can feed other tools'
    parameters, for the dependency graph; by default they are read from the return annotation."""
    if kind not in ("read", "write"):
        raise ValueError(f"tool kind must be 'read' or 'write', got {kind!r}")

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__apigen_tool__ = (kind, frozenset(produces or ()))  # type: ignore[attr-defined]
        return fn

    return mark


def tools_in(module: Any) -> list[ToolSpec]:
    """Every function marked with @tool in a module, in definition order."""
    functions = [
        obj for obj in vars(module).values() if inspect.isfunction(obj) and hasattr(obj, "__apigen_tool__")
    ]
    functions.sort(key=lambda fn: fn.__code__.co_firstlineno)
    return [build_tool_spec(fn) for fn in functions]


_ARG_LINE = re.compile(r"^\s{2,}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(summary, {param: description}) from a Google-style docstring."""
    lines = inspect.cleandoc(doc or "").splitlines()
    summary_lines: list[str] = []
    params: dict[str, str] = {}
    section = "summary"
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        if stripped in {"Args:", "Arguments:", "Parameters:"}:
            section, current = "args", None
            continue
        if stripped.endswith(":") and stripped[:-1] in {"Returns", "Raises", "Yields", "Example", "Examples"}:
            section, current = "other", None
            continue
        if section == "summary":
            summary_lines.append(stripped)
        elif section == "args":
            match = _ARG_LINE.match("  " + line if not line.startswith(" ") else line)
            if match and (current is None or len(line) - len(line.lstrip()) <= 4):
                current = match.group(1)
                params[current] = match.group(2).strip()
            elif current and stripped:
                params[current] = f"{params[current]} {stripped}"
    summary = " ".join(s for s in summary_lines if s).strip()
    return summary, params


def output_fields(annotation: Any) -> set[str]:
    """Field names of a return annotation (pydantic model / TypedDict), recursively: what a tool's
    result can feed into other tools' parameters (the dependency graph)."""
    names: set[str] = set()
    seen: set[int] = set()

    def walk(tp: Any) -> None:
        if id(tp) in seen:
            return
        seen.add(id(tp))
        for arg in typing.get_args(tp):
            walk(arg)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            for fname, finfo in tp.model_fields.items():
                names.add(fname)
                walk(finfo.annotation)
        elif typing.is_typeddict(tp):
            for fname, ftype in get_type_hints(tp).items():
                names.add(fname)
                walk(ftype)

    walk(annotation)
    return names


def build_tool_spec(fn: Callable[..., Any]) -> ToolSpec:
    """The :class:`ToolSpec` of a function marked with :func:`tool`: its schema and argument model come
    from the type hints (``Annotated`` constraints kept) and the docstring's summary and ``Args:``."""
    kind, produces = fn.__apigen_tool__  # type: ignore[attr-defined]
    signature = inspect.signature(fn)
    hints = get_type_hints(fn, include_extras=True)  # keep Annotated constraints (Money)
    parameters = list(signature.parameters.values())
    if not parameters:
        raise TypeError(f"tool {fn.__name__} must take the episode state as its first parameter")
    summary, param_docs = parse_docstring(fn.__doc__ or "")
    if not summary:
        raise TypeError(f"tool {fn.__name__} needs a docstring: it becomes the tool description")
    fields: dict[str, Any] = {}
    for param in parameters[1:]:
        if param.name not in hints:
            raise TypeError(f"tool {fn.__name__}: parameter {param.name!r} needs a type hint")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (hints[param.name], default)
    args_model = create_model(  # type: ignore[call-overload]
        f"{fn.__name__}_arguments",
        # NaN/inf are never a plausible amount or count, and would poison state and hashes.
        __config__=ConfigDict(extra="forbid", strict=True, allow_inf_nan=False),
        **fields,
    )
    json_schema = args_model.model_json_schema()
    json_schema.pop("title", None)
    for name, prop in json_schema.get("properties", {}).items():
        prop.pop("title", None)
        if name in param_docs:
            prop["description"] = param_docs[name]
    json_schema.setdefault("required", [])
    schema = {
        "type": "function",
        "function": {"name": fn.__name__, "description": summary, "parameters": json_schema},
    }
    derived = output_fields(hints.get("return"))
    return ToolSpec(
        name=fn.__name__,
        kind=kind,
        fn=fn,
        description=summary,
        schema=schema,
        args_model=args_model,
        params=tuple(fields),
        produces=frozenset(produces | derived),
    )


def dependency_graph(tools: list[ToolSpec]) -> dict[str, list[str]]:
    """Edges A -> B where an output field of A can feed a parameter of B (A != B)."""
    graph: dict[str, list[str]] = {}
    for a in tools:
        graph[a.name] = [b.name for b in tools if b.name != a.name and a.produces & set(b.params)]
    return graph
