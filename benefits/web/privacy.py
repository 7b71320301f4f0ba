"""Privacy: masking, which facts are health or disability details, person references, PII log.

What is masked and how comes from the data classes declared in :mod:`benefits.classes`.
Lists always show a masked name (张*明) and ID (first 6 + last 4, handbook §6). Full values —
the name, the ID, the birth date, parents' IDs, bank accounts, and every health, disability,
care or parental-situation detail — are shown only to a user with the ``pii`` grant who asks
to reveal them, and each such view is written to the ledger's audit chain (action
``pii.view``, the person identified by a masked ID and a keyed blind index, never the full
ID nor an unkeyed hash of it).

URLs never carry a resident ID: a person is addressed by a *reference*, a keyed BLAKE2b hash
of the ID (:func:`person_ref`), which the app resolves through its person directory.

Example:
    >>> mask_value("father_id_no", "330106194501011233", reveal=False)
    '330106********1233'
    >>> mask_value("cert_grade", 2, reveal=False)
    '（受限 / restricted）'
    >>> mask_value("age", 81, reveal=False)
    81
"""

from __future__ import annotations

import hashlib
from typing import Any

from benefits import classes
from benefits.idcard import mask_id, mask_name
from benefits.ledger import audit
from benefits.ledger.db import Database

RESTRICTED = "（受限 / restricted）"

# What is masked, and how, is read from the one declaration of data classes
# (benefits.classes): tables whose details are health, disability, care or family situation
# (handbook §6) have every column but the ID restricted.
SENSITIVE_TABLES = frozenset(
    table for table, columns in classes.INPUTS.items()
    if all(d.mask == "restricted" for n, d in columns.items() if n != "id_no")
)  # fmt: skip
ID_FIELDS = classes.masked_as("id")
NAME_FIELDS = classes.masked_as("name")
ACCOUNT_FIELDS = classes.masked_as("account")
DATE_OF_BIRTH_FIELDS = classes.masked_as("birth")
# Facts that disclose health, disability or family situation (derived ones too).
SENSITIVE_FACTS = classes.masked_as("restricted")

DEPARTMENTS: dict[str, str] = {
    "persons": "公安·户籍 / police hukou registry",
    "deaths": "公安·卫健·殡葬 / police, health, funeral",
    "assistance": "民政·社会救助 / civil affairs, social assistance",
    "household_finance": "民政·核对中心 / civil affairs, means-test centre",
    "disability_certificates": "残联 / disabled persons' federation",
    "pensions": "人社 / human resources and social security",
    "care_assessments": "民政·卫健 能力评估 / care ability assessment",
    "parent_situations": "司法·公安·法院·卫健 / justice, police, courts, health",
    "health_conditions": "卫健·医保 / health, medical insurance",
    "medical_expenses": "医保 / medical insurance",
    "bank_accounts": "社保卡·合作银行 / social security card, partner bank",
    "derived": "由以上数据计算 / derived",
}


def mask_account(value: str | None) -> str:
    """A bank account with only its last four digits.

    >>> mask_account("6222021234567890")
    '************7890'
    """
    if not value:
        return ""
    return "*" * max(0, len(value) - 4) + value[-4:]


def fact_source(name: str) -> str:
    """The table a fact is read from ('derived' when it is computed)."""
    from benefits.merge import FACTS

    fact = FACTS.get(name)
    return fact.source if fact else "derived"


def is_sensitive(name: str) -> bool:
    """True for health, disability, care and family-situation facts."""
    return name in SENSITIVE_FACTS or fact_source(name) in SENSITIVE_TABLES


def mask_value(name: str, value: Any, *, reveal: bool) -> Any:
    """A fact value as the viewer may see it."""
    if reveal or value is None:
        return value
    if name in ID_FIELDS:
        return mask_id(str(value))
    if name in NAME_FIELDS:
        return mask_name(str(value))
    if name in ACCOUNT_FIELDS:
        return mask_account(str(value))
    if name in DATE_OF_BIRTH_FIELDS and isinstance(value, str) and len(value) == 10:
        return value[:4] + "-**-**"
    if is_sensitive(name):
        return RESTRICTED
    return value


def person_ref(secret: str, id_no: str) -> str:
    """The URL reference of a person: a keyed hash of the ID (not reversible without a list).

    >>> person_ref("k", "330106194501011233") == person_ref("k", "330106194501011233")
    True
    >>> len(person_ref("k", "330106194501011233"))
    24
    """
    key = hashlib.sha256(secret.encode("utf-8")).digest()
    return hashlib.blake2b(id_no.encode("utf-8"), key=key, digest_size=12).hexdigest()


def id_index(db: Database, id_no: str) -> dict[str, str]:
    """The keyed blind index of an ID for the audit log, with its key ID.

    HMAC-SHA256 under the ``blind_index`` key, 32 hex characters: an auditor holding the key
    file can match an ID they know; without the key, trying every birth date behind a masked
    ID recovers nothing (an unkeyed hash of the ID could be reversed in under a second).
    """
    key_id, index = db.keys.blind_index(id_no)
    return {"id_index": index, "index_key": key_id}


def log_pii_view(db: Database, *, actor: str, id_no: str, what: str, month: str | None) -> None:
    """Write one unmasked view of a person's data to the audit chain.

    Example:
        >>> log_pii_view(db, actor="wang", id_no="3301…", what="explanation", month="2025-01")
        ...                                                   # doctest: +SKIP
    """
    with db.transaction() as s:
        audit.append(
            s,
            at=db.now(),
            actor=actor,
            action="pii.view",
            object_type="person",
            object_id=mask_id(id_no),
            after={"what": what, "month": month, **id_index(db, id_no)},
        )
