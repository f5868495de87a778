"""How every `apigen-mt` command reports a failure: one line on stderr and an exit code, no traceback.

Errors people can fix by changing what they typed (a recipe, a flag, a path, an environment name)
exit with 2; a model that stays unreachable exits with 1 and says how to continue; Ctrl-C exits with
130. Everything else is a bug and keeps its traceback. Commands validate their whole input first, so
these lines come before any engine starts.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from datagen.redact import redact_logs, redact_text

log = logging.getLogger(__name__)


class UsageError(ValueError):
    """Input a command cannot run with (outside a recipe): its text is the one line to print."""


def _usage_errors() -> tuple[type[BaseException], ...]:
    from datagen.envs.references import ReferencesError
    from datagen.envs.registry import DomainLoadError
    from datagen.recipe import RecipeError

    return (
        UsageError,
        RecipeError,
        DomainLoadError,
        ReferencesError,
        FileExistsError,
        FileNotFoundError,
        NotADirectoryError,
    )


def run_command(name: str, body: Callable[[], int]) -> int:
    """Runs a command's body, turning the errors above into their one line and exit code."""
    from datagen.llm.base import ModelUnavailableError

    redact_logs(*logging.getLogger().handlers)  # no log line of the command carries a credential
    try:
        return body()
    except _usage_errors() as exc:
        print(f"apigen-mt {name}: {redact_text(str(exc))}", file=sys.stderr)
        return 2
    except ModelUnavailableError as exc:
        print(
            f"apigen-mt {name}: stopped because a model is unreachable: {redact_text(str(exc))}. Finished work "
            "is saved; bring the model back and rerun with --resume.",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(f"apigen-mt {name}: interrupted; finished work is saved, rerun with --resume", file=sys.stderr)
        return 130
