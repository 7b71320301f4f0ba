"""A small progress display for long sweeps (rich), silent when disabled.

Example:
    >>> with stage_progress(None, enabled=False) as progress:
    ...     progress("ingest")
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

Progress = Callable[[str], None]


def no_progress(stage: str) -> None:
    """A progress callback that shows nothing."""


@contextmanager
def stage_progress(console: Console | None, enabled: bool = True) -> Iterator[Progress]:
    """Yield a callback that shows the current sweep stage with a spinner."""
    if not enabled or console is None:
        yield no_progress
        return
    with console.status("starting sweep…") as status:

        def show(stage: str) -> None:
            status.update(f"[bold]sweep[/]: {stage}…")

        yield show
