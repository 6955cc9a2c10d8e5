"""The CLI's output: one console for results, one for errors and progress, and the typed refusal."""

from __future__ import annotations

import sys

from rich.console import Console

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


class CommandError(Exception):
    """A command refused or failed for a reason the operator can act on; `main` prints it and exits `code`."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code
