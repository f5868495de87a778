"""Every one-line error an `apigen-mt` command can print, read from the source (for the docs' error index).

A command validates its whole input before any engine starts and reports what it cannot run with as
one line on stderr (``datagen/cli_errors.py``). Those lines come from a few places, all found here
by reading the code (nothing is imported or run):

- ``raise`` of the errors a command prints as one line (:data:`ONE_LINE`), e.g. ``RecipeError``;
- ``raise ValueError`` inside a pydantic validator or a training arguments' ``__post_init__`` (a
  recipe value the loader reports as one line);
- ``parser.error(...)`` (argparse: usage, then the line; exit 2);
- ``print(..., file=sys.stderr)`` whose text says more than the exception it forwards (kind ``stderr``:
  some of these are notes rather than errors).

Placeholders show as ``{name}``: the value the message names at run time.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

PACKAGES = ("apigen_rules", "datagen", "evaluation", "training", "viewer")
# Exceptions a command turns into one line on stderr (datagen.cli_errors, datagen.cli, each CLI's own
# handler), with the exit code they get.
ONE_LINE = {
    "RecipeError": 2,
    "YamlError": 2,  # every recipe reader words its refusals through apigen_rules.yamlsafe
    "UsageError": 2,
    "DomainLoadError": 2,
    "ReferencesError": 2,
    "FileNotFoundError": 2,
    "FileExistsError": 2,
    "NotADirectoryError": 2,
    "EngineMemoryError": 1,
    "DecodeError": 0,
}
VALIDATORS = {"model_validator", "field_validator", "__post_init__"}
MIN_LITERAL_CHARS = 12  # a print that only forwards `{exc}` says nothing of its own


def _placeholder(node: ast.expr) -> str:
    text = ast.unparse(node)
    return "{" + (text if len(text) <= 28 else "…") + "}"


def message_text(node: ast.expr | None) -> str | None:
    """The message an expression builds, placeholders for what varies; None when it is not text."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            str(part.value) if isinstance(part, ast.Constant) else _placeholder(part.value)  # type: ignore[attr-defined]
            for part in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = message_text(node.left), message_text(node.right)
        if left is not None or right is not None:
            return (left if left is not None else _placeholder(node.left)) + (
                right if right is not None else _placeholder(node.right)
            )
    return None


def _literal_chars(text: str) -> int:
    depth, count = 0, 0
    for char in text:
        depth += char == "{"
        if depth == 0 and char.isalnum():
            count += 1
        depth -= char == "}" and depth > 0
    return count


def _decorators(node: ast.AST) -> set[str]:
    names: set[str] = set()
    for decorator in getattr(node, "decorator_list", []):
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        names.add(target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", ""))
    return names


class _Finder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []  # (how it is reported, message)
        self._in_validator = 0

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        inside = bool(_decorators(node) & VALIDATORS) or node.name == "__post_init__"
        self._in_validator += inside
        self.generic_visit(node)
        self._in_validator -= inside

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Raise(self, node: ast.Raise) -> None:
        call = node.exc
        if isinstance(call, ast.Call) and call.args:
            name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
            text = message_text(call.args[0])
            if text is not None and (name in ONE_LINE or (name == "ValueError" and self._in_validator)):
                kind = "recipe value" if name == "ValueError" else name
                self.found.append((kind, text))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "error" and node.args:
            owner = ast.unparse(func.value)
            text = message_text(node.args[0])
            if text is not None and "parser" in owner:
                self.found.append(("usage (argparse)", text))
        if isinstance(func, ast.Name) and func.id == "print" and node.args:
            to_stderr = any(k.arg == "file" and ast.unparse(k.value) == "sys.stderr" for k in node.keywords)
            text = message_text(node.args[0])
            if to_stderr and text is not None and _literal_chars(text) >= MIN_LITERAL_CHARS:
                self.found.append(("stderr", text))
        self.generic_visit(node)


def messages_of(path: Path) -> list[tuple[str, str]]:
    finder = _Finder()
    finder.visit(ast.parse(path.read_text(encoding="utf-8")))
    seen: set[str] = set()
    unique = []
    for kind, text in finder.found:
        if text not in seen and "DecodeError" not in kind:
            seen.add(text)
            unique.append((kind, " ".join(text.split())))
    return unique


def errors_page(root: Path, cell: Callable[[str], str]) -> str:
    """The error index page; ``cell`` makes a message safe inside a markdown table."""
    lines = [
        "<!-- Generated by scripts/docs_reference.py (scripts/docs_errors.py) from the package sources. "
        "Do not edit: change the message in the code, then run `make docs-reference`. -->",
        "",
        "# Error messages",
        "",
        "Every one-line error the commands print, as the code writes it: `{…}` stands for what the message "
        "names at run time (a path, a key, a value). Search this page for the words of the line you saw; "
        "[Troubleshooting](../troubleshooting.md) explains the kinds and what to do. The line is printed as "
        "`apigen-mt COMMAND: MESSAGE`; usage errors and recipe values exit with 2, a model that stays "
        "unreachable with 1.",
    ]
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            found = messages_of(path)
            if not found:
                continue
            relative = path.relative_to(root).as_posix()
            lines += ["", f"## {relative}", "", "| kind | message |", "| --- | --- |"]
            lines += [f"| {kind} | {cell(text)} |" for kind, text in found]
    return "\n".join(lines) + "\n"
