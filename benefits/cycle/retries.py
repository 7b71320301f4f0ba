"""Retries: a cycle attempt that failed for a transient reason is repeated with backoff, and
the operator is alerted when retries run out.

Example:
    >>> from benefits.cycle.settings import load_settings
    >>> run_with_retries(load_settings("benefits.toml"), "2025-01").status  # doctest: +SKIP
    'done'
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from benefits.cycle.clock import Clock, as_utc, resolve_month, utc_now
from benefits.cycle.models import FAILED
from benefits.cycle.notify import Notifier, OperatorAlert
from benefits.cycle.outcome import CycleOutcome
from benefits.cycle.runner import run_cycle
from benefits.cycle.settings import CycleSettings

log = logging.getLogger("benefits.cycle")


def backoff_delays(settings: CycleSettings) -> list[float]:
    """The waits before each retry: doubling from the first, capped.

    >>> backoff_delays(CycleSettings(retry_attempts=4, retry_backoff_seconds=30,
    ...                              retry_backoff_max_seconds=100))
    [30.0, 60.0, 100.0, 100.0]
    """
    first, cap = settings.retry_backoff_seconds, settings.retry_backoff_max_seconds
    return [float(min(first * 2**i, cap)) for i in range(settings.retry_attempts)]


def run_with_retries(
    settings: CycleSettings,
    month: str = "auto",
    *,
    sleep: Callable[[float], Any] = time.sleep,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
    trigger: str = "cli",
    **kwargs: Any,
) -> CycleOutcome:
    """:func:`run_cycle`, retried with backoff while it fails for a transient reason.

    `sleep` waits between attempts (a ``threading.Event.wait`` stops early when it returns
    True). Other keyword arguments go to :func:`run_cycle`.

    Example:
        >>> run_with_retries(settings, "auto", trigger="schedule").exit_code   # doctest: +SKIP
        0
    """
    clock = clock or utc_now
    notifier = notifier or Notifier(settings)
    label = resolve_month(month, as_utc(clock()), settings.zone, rules=settings.rules_dir,
                          check=True)
    delays = backoff_delays(settings)
    outcome = run_cycle(settings, label, clock=clock, notifier=notifier, trigger=trigger, **kwargs)
    for delay in delays:
        if outcome.status != FAILED or not outcome.transient:
            return outcome
        log.warning("cycle %s: %s — retrying in %.0f s", label, outcome.message, delay)
        if sleep(delay) is True:
            return outcome
        outcome = run_cycle(
            settings, label, clock=clock, notifier=notifier, trigger="retry", **kwargs
        )
    if outcome.status == FAILED and outcome.transient:
        notifier.alert(
            OperatorAlert(
                "cycle.failed",
                label,
                "error",
                f"gave up after {len(delays) + 1} attempt(s): {outcome.message}",
                attempt=outcome.attempt,
                details={"transient": True},
            )
        )
    return outcome
