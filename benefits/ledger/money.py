"""Money: `Decimal` in Python, exact in every database, never float.

PostgreSQL stores `NUMERIC(14,2)`. SQLite has no decimal type (SQLAlchemy would go through
float), so there the same column holds integer fen (分); sums stay exact in SQL on both.

Example:
    >>> parse_amount("459.00")
    Decimal('459.00')
    >>> format_amount(Decimal("42"))
    '42.00'
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
_AMOUNT_RE = re.compile(r"^-?\d{1,12}\.\d{2}$")


def parse_amount(text: str) -> Decimal:
    """Parse a contract amount string with exactly two decimals ('459.00'); raise ValueError.

    >>> parse_amount("1224.00") + parse_amount("0.10")
    Decimal('1224.10')
    """
    s = text.strip()
    if not _AMOUNT_RE.match(s):
        raise ValueError(f"amount must have exactly two decimals like 459.00, got {text!r}")
    return Decimal(s)


def format_amount(value: Decimal | int) -> str:
    """Two-decimal string of an amount (bank file, audit content, CLI)."""
    return f"{Decimal(value).quantize(CENT):f}"


class Money(TypeDecorator[Decimal]):
    """An amount of yuan with 2 decimals: NUMERIC(14,2), or integer fen on SQLite."""

    impl = Numeric(14, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(14, 2, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = Decimal(value)
        if amount != amount.quantize(CENT):
            raise ValueError(f"amount {value!r} has more than two decimals")
        if dialect.name == "sqlite":
            return int(amount * 100)
        return amount.quantize(CENT)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) / 100).quantize(CENT)
        return Decimal(value).quantize(CENT)
