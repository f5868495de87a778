"""One job's failure is one error row, never a dead run.

A batch loop (Phase 2's attempts, τ trials) runs every step of one job (building its agent and user,
the episode, the verdict, the row) inside one ``try``, and turns an exception into the fields of
:func:`error_outcome` in that job's row: ``success`` false, ``reward`` 0, ``failure`` ``"error"`` and
the message under ``checks.error``. The row is written like any other, so the other jobs go on and
``--resume`` counts the job as done instead of running it, and failing, again.
"""

from __future__ import annotations

import logging
from typing import Any

from apigen_rules.redact import redact_text

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2000  # a message is for people; a 1 MB exception text is not


def error_message(exc: BaseException) -> str:
    """``Type: message`` of an exception on one line, credentials redacted, at most MAX_ERROR_CHARS."""
    try:
        text = str(exc)
    except Exception:  # an exception whose __str__ fails must still be reported
        text = object.__repr__(exc)
    message = redact_text(" ".join(f"{type(exc).__name__}: {text}".split()))
    return message if len(message) <= MAX_ERROR_CHARS else message[: MAX_ERROR_CHARS - 3] + "..."


def error_outcome(exc: BaseException, job: str) -> dict[str, Any]:
    """The verdict fields of a job that raised (logged once, with its traceback at debug level)."""
    message = error_message(exc)
    log.warning("%s failed (%s); recorded as an error row, the run goes on", job, message)
    log.debug("%s traceback", job, exc_info=exc)
    return {"success": False, "reward": 0.0, "failure": "error", "checks": {"error": message}}
