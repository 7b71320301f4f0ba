"""Issue 14: ID-like values inside alert messages are masked for users without the grant.

An ``identity_conflict`` alert quotes the faulty value of an ID: full-width digits, 19 and
15 digits, and the birth date the ID embeds. None of it may reach a user without ``pii``
(inbox, alert page, person page, ``GET /api/v1/alerts``), while the holder of the grant who
asks to reveal the person still reads the message in full.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update

from benefits.web.format import mask_ids_in_text
from benefits.web.models import WebAlert
from benefits.web.services.alerts import mask_alert_id, mask_alert_message
from tests.web.conftest import Seeded

FULL_WIDTH = "３３０１０６１９５００３０８０２１４"
NINETEEN = "3301061950030802151"
FIFTEEN = "330106500308021"
BIRTH = "1950-03-09"
MESSAGE = (
    f"persons 第 3 行身份证号问题（id_format）：'{FULL_WIDTH}': resident ID must be 17 ASCII "
    f"digits; '{NINETEEN}': 18 characters; '{FIFTEEN}': old ID; birth_date '{BIRTH}' disagrees "
    f"with the ID's birth date 1950-03-08 / persons row 3: identity problem (id_format)"
)
SECRETS = (FULL_WIDTH, NINETEEN, FIFTEEN, BIRTH, "1950-03-08", "19500308", "１９５００３０８",
           "500308")


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_id_like_values_are_masked_in_text() -> None:
    masked = mask_alert_message("identity_conflict", MESSAGE)
    assert _leaks(masked) == []
    assert "persons row 3" in masked and "330106" in masked
    # any kind: full-width, 15 and 19 digits, account numbers
    for raw in (FULL_WIDTH, NINETEEN, FIFTEEN, "6222021234567890123"):
        assert raw not in mask_ids_in_text(f"value {raw} here")
    # numbers that are not IDs stay readable
    assert mask_ids_in_text("人均 1301.00 元, row 12345") == "人均 1301.00 元, row 12345"
    assert "500308" not in mask_alert_id(FIFTEEN) and mask_alert_id(FIFTEEN).startswith("330106")


@pytest.fixture
def conflict(seeded: Seeded) -> tuple[Seeded, WebAlert]:
    """One alert of the seeded month turned into an identity conflict quoting raw IDs."""
    ctx = seeded.ctx
    with ctx.db.transaction() as s:
        alert = s.execute(select(WebAlert).order_by(WebAlert.id).limit(1)).scalar_one()
        s.execute(update(WebAlert).where(WebAlert.id == alert.id).values(
            kind="identity_conflict", message=MESSAGE))  # fmt: skip
        s.flush()
        alert = s.get(WebAlert, alert.id)
        s.expunge(alert)
    return seeded, alert


@pytest.mark.parametrize("user", ["chief", "auditor", "officer"])
def test_alert_messages_reach_users_masked(conflict: tuple[Seeded, WebAlert], user: str) -> None:
    seeded, alert = conflict
    client = seeded.client(user)
    ref = seeded.ctx.directory.ref(alert.id_no)
    answers = {
        "inbox": client.get("/alerts?month=2025-01&kind=identity_conflict").text,
        "alert page": client.get(f"/alerts/{alert.id}").text,
        "person page": client.get(f"/persons/{ref}?month=2025-01").text,
        "api list": json.dumps(client.get("/api/v1/alerts?month=2025-01").json(),
                               ensure_ascii=False),
        "api alert": json.dumps(client.get(f"/api/v1/alerts/{alert.id}").json(),
                                ensure_ascii=False),
    }
    for where, text in answers.items():
        assert "330106" in text or where == "person page", where
        assert _leaks(text) == [], f"{user} sees {_leaks(text)} on the {where}"


def test_the_grant_holder_who_reveals_reads_the_message(
    conflict: tuple[Seeded, WebAlert],
) -> None:
    seeded, alert = conflict
    officer = seeded.client("officer")  # holds pii
    ref = seeded.ctx.directory.ref(alert.id_no)
    html = officer.get(f"/persons/{ref}?month=2025-01&reveal=true").text
    assert FULL_WIDTH in html and NINETEEN in html and BIRTH in html
