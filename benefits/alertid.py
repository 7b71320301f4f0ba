"""What an alert is about across months: its rule, party, subject and facts fingerprint.

The sweep (:mod:`benefits.alerting`) and the event path (:mod:`benefits.events.decide`) write
these next to the data contract's alert columns, so that a reader (the web inbox) needs not
guess them from the message:

- ``rule_id``: the ``id`` of the rule of ``rules/alerts.yaml`` that raised the alert;
- ``party``: who it is about — the person's ``id_no``, or for a rule raised once per group
  (``one_per: by: household_no``) the group's value, the ``household_no``;
- ``subject``: the due date for an alert about a dated event (a certificate's expiry, a
  birthday, a death, a review date), empty when the due date is derived from the month alone
  (``due: month_start``) — such an alert is due again every month for the same situation;
- ``fingerprint``: SHA-256 (hex) of the facts the alert reports — the values of its message's
  placeholders as the message shows them — in canonical JSON, without the due date (the
  subject, or the month) and a quarantined row's number (where, not what).

Example:
    >>> fingerprint({"account_issue": "closed"})[:12]
    'b454e19678dd'
    >>> reported_facts("账户问题（{account_issue}），{due_date} / row {row}")
    ['account_issue']
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping

from benefits.expr import names_in

PLACEHOLDER = re.compile(r"\{(\w+)\}")
# Placeholders that say when or where, not what: left out of the fingerprint.
NOT_FACTS = frozenset({"due_date", "row"})
# Names whose value is the month's, not the person's.
MONTH_NAMES = frozenset(
    {"month_start", "month_end", "prev_month_start", "prev_month_end", "month_number",
     "district_code"}
)  # fmt: skip
ALERT_ID_COLUMNS = ["rule_id", "party", "subject", "fingerprint"]


def fingerprint(values: Mapping[str, str]) -> str:
    """SHA-256 (hex) of the facts an alert reports, as canonical JSON (keys sorted, UTF-8).

    >>> fingerprint({"b": "1", "a": "2"}) == fingerprint({"a": "2", "b": "1"})
    True
    >>> fingerprint({"hh_pci": "1400.00"}) == fingerprint({"hh_pci": "1500.00"})
    False
    """
    text = json.dumps(dict(sorted(values.items())), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def reported_facts(message: str) -> list[str]:
    """The facts a message template reports (its placeholders but the due date and row),
    each once, sorted."""
    return sorted(set(PLACEHOLDER.findall(message)) - NOT_FACTS)


def due_from_month(due: str, parameters: Iterable[str] = ()) -> bool:
    """Whether a rule's ``due`` expression is derived from the month alone (reads no fact).

    >>> due_from_month("month_start"), due_from_month("death_date + days(60)")
    (True, False)
    """
    return set(names_in(due)) <= MONTH_NAMES | set(parameters)
