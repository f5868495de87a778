"""The errors a command prints as one line: one base class, so the command layer catches them all.

A problem the user can fix by changing what they typed (a recipe, a flag, a path, an environment
name) is raised as a subclass of :class:`InputError`; ``datagen.cli_errors.run_command`` prints its
text as the one line on stderr and exits with 2, with no traceback. The text says what was expected,
what was found and what to do.

The subclasses keep the built-in base they always had (``RecipeError`` is a ``ValueError``,
``DomainLoadError`` a ``RuntimeError``), so existing ``except`` clauses catch what they caught before.
"""

from __future__ import annotations


class InputError(Exception):
    """Input a command cannot run with; its text is the one line to print (exit code 2)."""


class UsageError(InputError, ValueError):
    """A flag, path or argument a command cannot run with (outside a recipe)."""
