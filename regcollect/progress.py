"""Progress bars on stderr, only for a person watching: a TTY, text output, not --quiet."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class Progress:
    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self._bar: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(console=Console(stderr=True), transient=True)
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def task(
        self, description: str, total: int | None = None, status: Callable[[], str] | None = None
    ) -> Callable[..., None] | None:
        """A callback that advances one step per call, or None when nothing is shown. `status`
        adds a live figure to the description (requests in flight)."""
        if self._bar is None:
            return None
        task_id = self._bar.add_task(description, total=total)
        bar = self._bar

        def advance(*_args: Any) -> None:
            if status is not None:
                bar.update(task_id, description=f"{description} ({status()})")
            bar.advance(task_id)

        return advance
