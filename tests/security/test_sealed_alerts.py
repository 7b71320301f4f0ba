"""Issue 14: the alert inbox sealed at rest like the payment tables (migrations 0008, 0011).

``web_alerts.id_no`` and ``message`` are sealed with the ``data`` key, the person is found by
``id_index`` and an alert's ``party`` (part of its identity across months) is stored as its
keyed blind index; existing rows are sealed by the migration and opened by its downgrade.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, text, update

from benefits.keys import KeyRing
from benefits.ledger.models import SweepRun
from benefits.ledger.rotate import rotate_data
from benefits.ledger.sealed import fingerprint_index, id_index
from benefits.web.models import WebAlert, WebAlertImport
from benefits.web.services import alerts as alert_service
from tests.web.conftest import Seeded


def _raw(seeded: Seeded) -> list[Any]:
    with seeded.ctx.db.engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT id, id_no, message, party, id_index FROM web_alerts ORDER BY id"
        )).all())  # fmt: skip


def _clear(seeded: Seeded) -> dict[int, tuple[str, str]]:
    with seeded.ctx.db.snapshot() as s:
        return {a.id: (a.id_no, a.message) for a in s.execute(select(WebAlert)).scalars()}


def _assert_sealed(seeded: Seeded, clear: dict[int, tuple[str, str]]) -> None:
    keys = seeded.ctx.db.keys
    rows = _raw(seeded)
    assert len(rows) == len(clear) > 0
    for row in rows:
        id_no, message = clear[row.id]
        assert row.id_no.startswith("v1:dk-") and row.message.startswith("v1:dk-")
        assert id_no not in row.id_no and id_no not in row.message
        assert not message or message not in row.message
        assert row.id_index == id_index(keys, id_no)
        assert len(row.party) == 32 and id_no not in row.party


def test_the_inbox_is_sealed_and_found_through_the_blind_index(seeded: Seeded) -> None:
    clear = _clear(seeded)
    _assert_sealed(seeded, clear)
    id_no = next(iter(clear.values()))[0]
    found = alert_service.person_alerts(seeded.ctx, id_no)
    assert found and {a.id_no for a in found} == {id_no}
    assert {a.id for a in found} == {i for i, (n, _) in clear.items() if n == id_no}


def test_migration_0008_seals_existing_alerts_and_downgrade_opens_them(seeded: Seeded) -> None:
    db = seeded.ctx.db
    clear = _clear(seeded)
    db.downgrade("0007_exports")  # the inbox as before 0008: in clear
    rows = _raw_before(seeded)
    assert {r.id: (r.id_no, r.message) for r in rows} == clear
    db.migrate()
    _assert_sealed(seeded, clear)
    assert _clear(seeded) == clear


def _raw_before(seeded: Seeded) -> list[Any]:
    with seeded.ctx.db.engine.connect() as conn:
        return list(conn.execute(text("SELECT id, id_no, message FROM web_alerts")).all())


def test_a_run_imported_again_finds_its_alerts_by_the_party_index(seeded: Seeded) -> None:
    ctx = seeded.ctx
    before = _clear(seeded)
    with ctx.db.transaction() as s:  # forget the imports, and make every message stale
        s.execute(delete(WebAlertImport))
        s.execute(update(WebAlert).values(message="stale"))
    with ctx.db.snapshot() as s:
        runs = list(s.execute(select(SweepRun).order_by(SweepRun.id)).scalars())
        for r in runs:
            s.expunge(r)
    assert "stale" in {m for _, m in _clear(seeded).values()}
    for run in runs:
        alert_service.import_alerts(ctx, run)
    assert _clear(seeded) == before  # the same alerts matched and updated, none added


def test_keys_rotate_reseals_the_inbox(seeded: Seeded) -> None:
    db = seeded.ctx.db
    clear = _clear(seeded)
    ring = KeyRing({p: dict(t) for p, t in db.keys.keys.items()}, db.keys.currents, "test")
    old, _ = ring.current("data")
    new = ring.add("data")  # a new current data key; the old one stays in the ring
    db._keys = ring
    assert {r.id_no.split(":")[1] for r in _raw(seeded)} == {old}
    report = rotate_data(db, batch_size=7)
    assert report.remaining == 0 and report.resealed >= len(clear)
    rows = _raw(seeded)
    assert {r.id_no.split(":")[1] for r in rows} == {new}
    assert {r.message.split(":")[1] for r in rows if r.message} == {new}
    del ring.keys["data"][old]  # the old key can go: the inbox still opens
    assert _clear(seeded) == clear


def _fingerprints(seeded: Seeded) -> dict[int, str]:
    with seeded.ctx.db.engine.connect() as conn:
        return dict(conn.execute(text("SELECT id, fingerprint FROM web_alerts")).all())


def _plain_fingerprints(seeded: Seeded) -> set[str]:
    """The unkeyed fingerprints the sweep wrote into the seeded runs' alerts.csv."""
    with seeded.ctx.db.snapshot() as s:
        runs = list(s.execute(select(SweepRun)).scalars())
        frames = [alert_service._read_alerts(r) for r in runs]
    return {fp for f in frames for fp in f["fingerprint"].to_list() if fp}


def test_fingerprints_are_keyed_in_the_inbox(seeded: Seeded) -> None:
    keys = seeded.ctx.db.keys
    stored = _fingerprints(seeded)
    plain = _plain_fingerprints(seeded)
    assert stored and plain
    assert not set(stored.values()) & plain  # no unkeyed SHA-256 of facts in the ledger
    assert {fingerprint_index(keys, fp) for fp in plain} == set(stored.values())
    assert all(len(v) == 64 for v in stored.values())
    other = KeyRing.generate()  # without the blind_index key the value is not recomputed
    assert not {fingerprint_index(other, fp) for fp in plain} & set(stored.values())


def test_migration_0011_keys_existing_fingerprints_and_a_change_still_reopens(
    seeded: Seeded,
) -> None:
    db, ctx = seeded.ctx.db, seeded.ctx
    keyed = _fingerprints(seeded)
    by_keyed = {fingerprint_index(db.keys, p): p for p in _plain_fingerprints(seeded)}
    db.downgrade("0008_sealed_alerts")
    assert set(_fingerprints(seeded).values()) == {""}
    with db.engine.begin() as conn:  # as a ledger of 0008 held them: the sweep's SHA-256
        for alert_id, value in keyed.items():
            conn.execute(text("UPDATE web_alerts SET fingerprint = :f WHERE id = :i"),
                         {"f": by_keyed[value], "i": alert_id})  # fmt: skip
    db.migrate()
    assert _fingerprints(seeded) == keyed
    # a resolved alert whose facts changed reopens on the next import, as before keying
    alert_id = next(iter(keyed))
    with db.transaction() as s:
        s.execute(
            update(WebAlert)
            .where(WebAlert.id == alert_id)
            .values(status="resolved", fingerprint=fingerprint_index(db.keys, "other"))
        )
        s.execute(delete(WebAlertImport))  # fmt: skip
    with db.snapshot() as s:
        runs = list(s.execute(select(SweepRun).order_by(SweepRun.id)).scalars())
        for r in runs:
            s.expunge(r)
    for run in runs:
        alert_service.import_alerts(ctx, run)
    with db.snapshot() as s:
        alert = s.get(WebAlert, alert_id)
        assert alert is not None and alert.status == "open"
        assert alert.fingerprint == keyed[alert_id]
