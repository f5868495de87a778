"""The one progress display of every batch: a status line on stderr, never on stdout (which carries
only a command's own output, such as its JSON summary).

On a terminal the line is redrawn in place; elsewhere (CI logs, ``nohup``) it is logged every
``log_every_s`` seconds; ``enabled=False`` (``--quiet``, ``--json``) shows nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class ProgressLine:
    """The status line of one batch: ``render()`` is drawn on stderr in place on a terminal, or logged
    every ``log_every_s`` seconds elsewhere; nothing at all when ``enabled`` is false."""

    def __init__(self, render: Callable[[], str], *, enabled: bool = True, log_every_s: float = 30.0):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.render = render
        self.enabled = enabled
        self.terminal = self.console.is_terminal
        self.log_every_s = log_every_s
        self._last = 0.0
        self._shown = False

    def update(self, *_: Any) -> None:
        """Redraws the line if it is time to (a batch's ``on_progress`` can be this method)."""
        now = time.monotonic()
        if not self.enabled or now - self._last < (0.5 if self.terminal else self.log_every_s):
            return
        self._last = now
        self._shown = True
        if self.terminal:
            self.console.print(self.render(), end="\r", highlight=False, soft_wrap=True, markup=False)
        else:
            log.info("%s", self.render())

    def finish(self) -> None:
        """Ends the line (a terminal gets its newline; logs get the final state once)."""
        if not self.enabled:
            return
        if self.terminal:
            self.console.print(self.render(), highlight=False, soft_wrap=True, markup=False)
        elif self._shown:
            log.info("%s", self.render())
