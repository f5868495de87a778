"""Prompt-mode Java and JavaScript calls, read as BFCL reads them: with tree-sitter grammars.

BFCL (``model_handler/parser/java_parser.py``, ``js_parser.py``) drops the first and last
character of the bracketed text, parses the rest with the tree-sitter Java or JavaScript grammar,
fails on any syntax error node, and takes the first call it finds, each keyword argument's value as
source text. We do the same with the same grammars (``tree-sitter-java``, ``tree-sitter-javascript``):

* Java: the first ``method_invocation`` in the tree, depth first (``obj.name`` when it has an
  object); arguments ``name=value`` give ``{name: text}`` (a string or char literal unquoted; an
  array or object creation rewritten as ``new T[]{...}`` / ``new T(a, b)``; other compound values
  as their tokens run together); a bare identifier, class literal or set is kept under the key
  ``None``; a name given twice fails. No call at all decodes to ``{}``.
* JavaScript: the first ``call_expression`` directly in a top-level expression statement; each
  ``name=value`` argument's source text, quotes trimmed; bare identifiers and ``true`` under
  ``None``. No call decodes to ``None``.

Bounded, where BFCL is not: a text longer than :data:`MAX_SOURCE_CHARS` or bracketed deeper than
:data:`MAX_DEPTH` fails before tree-sitter sees it, and a tree deeper than :data:`MAX_DEPTH` (a long
``a.b.c...`` chain, an operator chain) fails before anything recursive walks it. BFCL's own check
for error nodes, ``"ERROR" in root.sexp()``, recurses in C and kills the process (SIGSEGV) on deep
input; here the tree is walked with a cursor, which keeps no stack.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from evaluation.bfcl.handlers.base import DecodeError


@cache
def _parser(language: str) -> Any:
    from tree_sitter import Language, Parser

    if language == "java":
        import tree_sitter_java as grammar
    else:
        import tree_sitter_javascript as grammar
    parser = Parser()
    parser.set_language(Language(grammar.language(), language))
    return parser


# Far above any call a model answers with (BFCL's longest gold answers are a few hundred characters);
# past it tree-sitter's error recovery on junk takes seconds.
MAX_SOURCE_CHARS = 65_536
# The deepest nesting read, in brackets or tree levels; the decoders below recurse once per level.
MAX_DEPTH = 200


def _bracket_depth(source: str) -> int:
    depth = deepest = 0
    for char in source:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    return deepest


def _check_tree(root: Any, language: str) -> None:
    """BFCL's rule (an ERROR node anywhere fails; a MISSING token is fine) and the depth bound, in one
    walk with a tree cursor: no recursion in C or in Python, whatever the tree's depth."""
    cursor = root.walk()
    depth = 0
    while True:
        if cursor.node.type == "ERROR":
            raise DecodeError(f"not {language} call syntax")
        if depth > MAX_DEPTH:
            raise DecodeError(f"{language} nested more than {MAX_DEPTH} levels deep; no call is read from it")
        if cursor.goto_first_child():
            depth += 1
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return
            depth -= 1


def _tree(source: str, language: str) -> Any:
    if len(source) > MAX_SOURCE_CHARS:
        raise DecodeError(
            f"{len(source)} characters of {language}, more than the {MAX_SOURCE_CHARS} a call is read from"
        )
    if _bracket_depth(source) > MAX_DEPTH:
        raise DecodeError(f"{language} nested more than {MAX_DEPTH} brackets deep; no call is read from it")
    root = _parser(language).parse(source.encode("utf-8")).root_node
    _check_tree(root, language)
    return root


def _text(node: Any) -> str:
    return node.text.decode("utf-8")


def _add(arguments: dict[Any, Any], name: Any, value: str) -> None:
    if name in arguments:
        raise DecodeError(f"argument {name!r} given more than once")
    arguments[name] = value


# ---------------------------------------------------------------- Java

_JAVA_AS_WRITTEN = ("identifier", "class_literal", "type_identifier", "method_invocation")
_JAVA_PUNCTUATION = (",", "(", ")")


def _java_value(node: Any, nested: bool = False) -> str:
    """One argument value as BFCL's Java reader writes it back."""
    if node is None:
        raise DecodeError("incomplete Java expression in an argument")
    if node.type in ("string_literal", "character_literal"):
        return _text(node) if nested else _text(node)[1:-1]
    if node.type in _JAVA_AS_WRITTEN:
        return _text(node)
    if node.type == "array_creation_expression":
        element = _java_value(node.child_by_field_name("type"), True)
        return f"new {element}[]{_java_value(node.child_by_field_name('value'), True)}"
    if node.type == "object_creation_expression":
        class_name = _java_value(node.child_by_field_name("type"), True)
        arguments = node.child_by_field_name("arguments")
        if not arguments:
            return f"new {class_name}()"
        values = [_java_value(c, True) for c in arguments.children if c.type not in _JAVA_PUNCTUATION]
        return f"new {class_name}({', '.join(values)})"
    if node.type == "set":
        return (
            "{" + ", ".join(_java_value(c, True) for c in node.children if c.type not in (",", "set")) + "}"
        )
    if node.child_count:
        return "".join(_java_value(child, True) for child in node.children)
    return _text(node)


def _java_arguments(node: Any) -> dict[Any, str]:
    arguments: dict[Any, str] = {}
    for child in node.children:
        if child.type == "assignment_expression":
            _add(arguments, _text(child.children[0]), _java_value(child.children[2]))
        elif child.type in ("identifier", "class_literal", "set"):
            _add(arguments, None, _java_value(child))
    return arguments


def _first_java_call(node: Any) -> list[dict[str, Any]] | None:
    if node.type == "method_invocation":
        name = _text(node.child_by_field_name("name"))
        owner = node.child_by_field_name("object")
        arguments = node.child_by_field_name("arguments")
        if arguments:
            return [{f"{_text(owner)}.{name}" if owner else name: _java_arguments(arguments)}]
        return None
    for child in node.children:
        found = _first_java_call(child)
        if found:
            return found
    return None


def decode_java(source: str) -> Any:
    """``[{name: {param: source text}}]`` for the first Java call, ``{}`` when there is none."""
    return _first_java_call(_tree(source, "java")) or {}


# ---------------------------------------------------------------- JavaScript


def _unquoted(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _js_arguments(node: Any) -> dict[Any, str]:
    arguments: dict[Any, str] = {}
    for child in node.children:
        if child.type == "assignment_expression":
            _add(arguments, _text(child.children[0]), _unquoted(_text(child.children[2])))
        elif child.type in ("identifier", "true"):
            _add(arguments, None, _text(child))
    return arguments


def decode_javascript(source: str) -> Any:
    """``[{name: {param: source text}}]`` for the first top-level JS call, None when there is none."""
    root = _tree(source, "javascript")
    if root.type != "program":
        return None
    for statement in root.children:
        if statement.type != "expression_statement":
            continue
        for node in statement.children:
            if node.type == "call_expression":
                return [{_text(node.children[0]): _js_arguments(node.children[1])}]
    return None
