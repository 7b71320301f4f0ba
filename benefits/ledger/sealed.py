"""Sensitive ledger columns sealed at rest, and the blind index that finds a person.

A :class:`Sealed` column holds ``v1:<key id>:<base64>`` — AES-256-GCM under the ledger's
``data`` key (see :mod:`benefits.keys`) — and gives the clear value back when read, through
the key ring of the engine it was read with (:func:`attach_keys`). Encryption uses a random
nonce, so equal values differ in the database: never filter, join, group or count on a sealed
column. Filter on the ``id_index`` column beside it instead: :func:`id_index` is an
HMAC-SHA256 of the normalised resident ID under the ``blind_index`` key (hex, 32 digits),
equal for equal IDs and useless without the key.

On SQLite the column keeps its declared ``VARCHAR(n)`` (SQLite does not enforce lengths);
elsewhere, and for a column declared without a length, it is ``TEXT``.

Example:
    >>> from benefits.keys import KeyRing
    >>> ring = KeyRing.generate()
    >>> id_index(ring, "330106194501011233") == id_index(ring, " 330106194501011233 ")
    True
    >>> len(id_index(ring, "330106194501011233"))
    32
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator, TypeEngine

if TYPE_CHECKING:
    from benefits.keys import KeyRing

REFUSED = {
    operators.eq, operators.ne, operators.in_op, operators.not_in_op, operators.like_op,
    operators.ilike_op, operators.startswith_op, operators.contains_op, operators.lt,
    operators.gt, operators.le, operators.ge,
}  # fmt: skip
ATTR = "benefits_keys"  # the attribute of an engine's dialect that gives its key ring
INDEX_LENGTH = 32


def attach_keys(dialect: Dialect, keys: Callable[[], KeyRing]) -> None:
    """Make `keys` (called on first use) the key ring of every connection of this dialect."""
    setattr(dialect, ATTR, keys)


def keys_of(dialect: Dialect) -> KeyRing:
    """The key ring attached to `dialect`, else the environment's (``$BENEFITS_KEY_FILE``)."""
    source = getattr(dialect, ATTR, None)
    if source is not None:
        return source()
    from benefits.keys import KeyRing

    return KeyRing.from_env()


def id_index(keys: KeyRing, id_no: str) -> str:
    """The keyed blind index of a resident ID (stripped, upper case)."""
    return keys.blind_index(id_no.strip().upper(), INDEX_LENGTH)[1]


def party_index(keys: KeyRing, party: str) -> str:
    """The keyed blind index of an alert's party (a person's ID or a household), exactly as
    given: the alert inbox keys alerts by it instead of the value (``web_alerts.party``)."""
    return keys.blind_index(party, INDEX_LENGTH)[1]


FINGERPRINT_LENGTH = 64


def fingerprint_index(keys: KeyRing, fingerprint: str) -> str:
    """An alert's facts fingerprint as the inbox stores it: keyed with the ``blind_index``
    key (``web_alerts.fingerprint``, 64 hex digits), since the unkeyed SHA-256 of a few facts
    (an amount, a date, a status) is found again by trying the likely values. Empty stays
    empty (an alert stored before fingerprints)."""
    if not fingerprint:
        return ""
    return keys.blind_index("fingerprint:" + fingerprint, FINGERPRINT_LENGTH)[1]


class Sealed(TypeDecorator[str]):
    """A text column sealed with the ``data`` key; `context` names its kind (``id_no``,
    ``account_no``), authenticated with each value. Empty strings and NULL stay as they are
    (an empty account says only that there is none)."""

    impl = Text
    cache_ok = True

    class comparator_factory(TypeDecorator.Comparator[str]):
        """Refuse comparisons with values: a sealed value never equals another (random
        nonce). Column against column stays allowed (SQLAlchemy compares columns itself)."""

        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            if op in REFUSED and not all(isinstance(o, ColumnElement) for o in other):
                raise TypeError(
                    f"{self.expr} is sealed: compare its blind index (id_index) instead"
                )
            return super().operate(op, *other, **kwargs)

    def __init__(self, context: str, length: int | None) -> None:
        super().__init__()
        self.context = context
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return String(self.length) if dialect.name == "sqlite" and self.length else Text()

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or value == "":
            return value
        return keys_of(dialect).seal(str(value), self.context)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or value == "":
            return value
        return keys_of(dialect).unseal(value, self.context)
