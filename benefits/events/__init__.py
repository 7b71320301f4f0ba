"""Instant re-evaluation: departmental change events through the same rules as the sweep.

A death, a birth, a move out of the district, a disability certificate issued or cancelled, a
低保/低边/特困 status approved or ended, a means test, a care assessment, a parent's situation,
a new bank account: each is a typed, versioned event (:mod:`benefits.events.schema`). The
:class:`EventService` applies it to the month's facts held in memory, re-decides the
households concerned with the rule pack in ``rules/`` (the sweep's checked expressions, run
in Python: :mod:`benefits.lang`), and returns what changed — entitlements started, stopped or
changed, alerts raised or cleared, with the sweep's traces — holding the ledger items a stop
concerns. See ``docs/events.md``.

Example:
    >>> from benefits.events import EventService
    >>> with EventService("datasets/sample", "2025-02") as service:     # doctest: +SKIP
    ...     result = service.apply(line)
    ...     for change in result.changes:
    ...         print(change.describe())
"""

from __future__ import annotations

from typing import Any

# Imported on first use: importing a submodule does not load the service's dependencies.
_EXPORTS = {
    "EVENT_TYPES": "benefits.events.schema",
    "SCHEMA_VERSION": "benefits.events.schema",
    "EventError": "benefits.events.schema",
    "parse_event": "benefits.events.schema",
    "Change": "benefits.events.changes",
    "ApplyResult": "benefits.events.service",
    "EventService": "benefits.events.service",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'benefits.events' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
