"""The yearly-parameter alert: once a year, the admins learn that a parameter which changes
every year (``yearly: true`` in the pack) has no value for the coming year yet.

:func:`check_yearly` reads the pack in use (the approved release in force, else the
configured ``rules_dir``), lists the yearly parameters with no value for the coming year once
the configured day (ledger setting ``rules.yearly_due``, MM-DD, default 11-01) has come in the
cycle's time zone (:func:`benefits.paramcalendar.missing_yearly`), and raises one operator
alert (``rules.yearly_missing``, to the configured alert hooks) per parameter and year. Each
alert is written to the audit chain first; a parameter and year already there is not alerted
again. The scheduler runs the check at start and every day (``benefits serve``, ``benefits
scheduler``); ``benefits rules calendar`` prints the same and exits 1 when a value is missing.

Example:
    >>> check_yearly(settings, ledger, Notifier(settings), now)        # doctest: +SKIP
    [MissingYearly(name='prov_urban_income', label='…', year=2027, latest=…)]
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from sqlalchemy import select

from benefits.cycle.clock import as_utc
from benefits.cycle.notify import Notifier, OperatorAlert
from benefits.cycle.settings import CycleSettings
from benefits.ledger import Ledger, audit
from benefits.ledger.models import AuditEntry
from benefits.ledger.packs import current_release, materialize
from benefits.ledger.settings import get_setting
from benefits.paramcalendar import (
    DEFAULT_YEARLY_DUE,
    YEARLY_DUE_SETTING,
    MissingYearly,
    missing_yearly,
)
from benefits.rulebook import RulePack, load_pack

log = logging.getLogger("benefits.cycle")
EVENT = "rules.yearly_missing"


def pack_in_use(ledger: Ledger, configured: Path | None, cache: Path) -> RulePack:
    """The approved release in force, else the configured pack (None: the default)."""
    with ledger.db.snapshot() as s:
        cur = current_release(s)
    return load_pack(materialize(ledger.db, cur.id, cache) if cur else configured)


def missing_for(ledger: Ledger, pack: RulePack, today: dt.date) -> list[MissingYearly]:
    """The yearly parameters of `pack` missing a value, by the ledger's configured day."""
    due = get_setting(ledger.db, YEARLY_DUE_SETTING, DEFAULT_YEARLY_DUE) or DEFAULT_YEARLY_DUE
    return missing_yearly(pack, today, due)


def check_yearly(
    settings: CycleSettings, ledger: Ledger, notifier: Notifier, now: dt.datetime
) -> list[MissingYearly]:
    """Alert (once per parameter and year) every yearly parameter missing a value; returns
    the ones alerted now."""
    today = as_utc(now).astimezone(settings.zone).date()
    pack = pack_in_use(ledger, settings.rules_dir, Path(settings.store_dir) / "packs")
    raised = []
    for m in missing_for(ledger, pack, today):
        key = f"{m.name}:{m.year}"
        with ledger.db.transaction() as s:
            seen = s.execute(
                select(AuditEntry.seq).where(AuditEntry.action == EVENT,
                                             AuditEntry.object_id == key).limit(1)
            ).first()  # fmt: skip
            if seen is not None:
                continue
            audit.append(
                s, at=ledger.db.now(), actor=settings.actor, action=EVENT,
                object_type="parameter", object_id=key,
                after={"parameter": m.name, "year": m.year, "latest": m.latest,
                       "pack": pack.digest, "message": m.message},
            )  # fmt: skip
        raised.append(m)
        notifier.alert(OperatorAlert(
            EVENT, f"{today:%Y-%m}", "warning", m.message,
            details={"parameter": m.name, "year": m.year, "latest": m.latest.isoformat(),
                     "rule_pack": pack.digest},
        ))  # fmt: skip
    return raised
