"""One attempt at a month's cycle: what it works with, and how it records its progress."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from benefits.cycle.clock import Clock, as_utc
from benefits.cycle.landing import Landing
from benefits.cycle.lock import LeaseLock
from benefits.cycle.models import CycleMonth
from benefits.cycle.notify import Notifier, OperatorAlert
from benefits.cycle.settings import CycleSettings
from benefits.cycle.store import CycleStore, Finish
from benefits.ledger import Ledger


@dataclass
class Attempt:
    """Everything one attempt works with."""

    settings: CycleSettings
    ledger: Ledger
    store: CycleStore
    notifier: Notifier
    clock: Clock
    month: str
    actor: str
    lock: LeaseLock
    prior: CycleMonth | None
    attempt_id: int
    number: int
    accept_gate: str | None
    landing: Landing | None = None
    stage: str = "start"
    details: dict[str, Any] = field(default_factory=dict)
    month_values: dict[str, Any] = field(default_factory=dict)
    late: list[str] = field(default_factory=list)
    snapshot: str | None = None
    alerts: list[OperatorAlert] = field(default_factory=list)
    extra_audit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def now(self) -> dt.datetime:
        """The clock's time, as an aware UTC datetime."""
        return as_utc(self.clock())

    def enter(self, stage: str) -> None:
        """Move to `stage` (checks the lock is still ours; notes the stage for the record)."""
        self.lock.check()
        self.stage = stage
        self.store.set_attempt_stage(self.attempt_id, stage)

    def record(self, **values: Any) -> None:
        """Save progress on the month's row at once (what a resumed attempt reads)."""
        self.month_values.update(values)
        self.store.update_month(self.month, self.now(), **values)

    def finish(self, outcome: str, reason: str, **kw: Any) -> Finish:
        """The attempt's end: `outcome` and `reason` at the current stage, with its details."""
        return Finish(
            outcome=outcome,
            stage=self.stage,
            reason=reason,
            details={**self.details, "late_tables": self.late or None},
            month=kw.pop("month", {}),
            snapshot=self.snapshot,
            extra_audit=self.extra_audit,
            **kw,
        )
