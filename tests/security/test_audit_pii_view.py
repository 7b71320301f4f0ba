"""A pii.view entry does not give the ID back: a keyed blind index, not a plain hash.

The masked ID (first 6 and last 4 digits) hides 8 digits that are a birth date. With an
unkeyed SHA-256 of the ID in the entry, trying every date of the last 130 years finds the ID
in well under a second. With an HMAC under the ``blind_index`` key nothing matches — yet an
auditor holding the key file can still tell whether an entry is about a given person.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Iterator

from benefits.idcard import make_id
from benefits.ledger import Ledger
from benefits.web.privacy import log_pii_view

ID_NO = make_id("330106", dt.date(1961, 7, 23), 35)


def candidates(masked: str) -> Iterator[str]:
    """Every ID the masked one could be: its prefix and suffix around every birth date."""
    day = dt.date(1900, 1, 1)
    while day <= dt.date(2030, 12, 31):
        yield masked[:6] + day.strftime("%Y%m%d") + masked[-4:]
        day += dt.timedelta(days=1)


def hexes(content: str) -> set[str]:
    """Every hex string of 8 or more characters in an entry."""
    return set(re.findall(r"[0-9a-f]{8,}", content))


def brute_force(masked: str, content: str) -> str | None:
    """The attack: an unkeyed SHA-256 (any prefix length) of each candidate ID."""
    found = hexes(content)
    for candidate in candidates(masked):
        digest = hashlib.sha256(candidate.encode()).hexdigest()
        if any(digest.startswith(h) for h in found):
            return candidate
    return None


def test_the_birth_date_brute_force_no_longer_recovers_the_id(ledger: Ledger) -> None:
    log_pii_view(ledger.db, actor="wang", id_no=ID_NO, what="explanation", month="2025-01")
    entry = ledger.audit_entries(1)[0]
    assert entry.action == "pii.view" and ID_NO not in entry.content
    masked = entry.object_id
    assert masked == ID_NO[:6] + "*" * 8 + ID_NO[-4:]
    assert sum(1 for _ in candidates(masked)) > 47000
    assert brute_force(masked, entry.content) is None

    after = json.loads(entry.content)["after"]
    assert set(after) == {"what", "month", "id_index", "index_key"}
    # The auditor with the key file matches the entry to the person they ask about …
    key = ledger.db.keys.get("blind_index", after["index_key"])
    assert hmac.new(key, ID_NO.encode(), hashlib.sha256).hexdigest()[:32] == after["id_index"]
    # … and only with the key does the same search over birth dates succeed.
    with_key = [c for c in candidates(masked)
                if hmac.new(key, c.encode(), hashlib.sha256).hexdigest()[:32]
                == after["id_index"]]  # fmt: skip
    assert with_key == [ID_NO]
    assert ledger.verify_audit().ok
