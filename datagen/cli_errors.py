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

from apigen_rules.errors import InputError
from apigen_rules.redact import redact_logs, redact_text

log = logging.getLogger(__name__)

# Every error a user fixes by changing what they typed: the recipe's, the flags' and the environment
# names' (all :class:`~apigen_rules.errors.InputError`), and a path that is not what the command needs.
USAGE_ERRORS: tuple[type[BaseException], ...] = (
    InputError,
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
    except USAGE_ERRORS as exc:
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
