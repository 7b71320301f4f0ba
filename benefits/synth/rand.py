"""Seeded, counter-based random numbers as Polars expressions.

Every draw is a pure function of ``(seed, stream name, row index)`` (splitmix64), so columns
are built vectorised, in any order, and the same arguments always give the same values — no
global state, no wall clock, no dependence on Python's hash randomisation.

Example:
    >>> import polars as pl
    >>> rng = Rng(7)
    >>> df = pl.DataFrame({"_pk": [0, 1, 2]}).with_columns(u=rng.u("age"))
    >>> df["u"].is_between(0, 1).all()
    True
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import polars as pl

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix64(z: int) -> int:
    """The splitmix64 finaliser on a Python int (reference for :func:`mix_expr`).

    >>> mix64(0)
    0
    """
    z &= MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _u64(value: int) -> pl.Expr:
    return pl.lit(value, dtype=pl.UInt64)


def mix_expr(x: pl.Expr) -> pl.Expr:
    """The splitmix64 finaliser on a UInt64 expression (Polars integer arithmetic wraps)."""
    x = (x ^ (x // (1 << 30))) * _u64(0xBF58476D1CE4E5B9)
    x = (x ^ (x // (1 << 27))) * _u64(0x94D049BB133111EB)
    return x ^ (x // (1 << 31))


@dataclass(frozen=True)
class Rng:
    """Named random streams over a row index column (``_pk`` unless told otherwise)."""

    seed: int

    def key(self, stream: str) -> int:
        """The 64-bit key of one named stream."""
        return mix64(mix64(self.seed & MASK64) ^ zlib.crc32(stream.encode("utf-8")))

    def bits(self, stream: str, idx: str | pl.Expr = "_pk") -> pl.Expr:
        """64 random bits per row."""
        col = pl.col(idx) if isinstance(idx, str) else idx
        return mix_expr(col.cast(pl.UInt64) * _u64(GOLDEN) + _u64(self.key(stream)))

    def u(self, stream: str, idx: str | pl.Expr = "_pk") -> pl.Expr:
        """Uniform float in [0, 1)."""
        return (self.bits(stream, idx) // (1 << 11)).cast(pl.Float64) * (2.0**-53)

    def chance(self, stream: str, p: float | pl.Expr, idx: str | pl.Expr = "_pk") -> pl.Expr:
        """True with probability ``p``."""
        return self.u(stream, idx) < p

    def uniform(
        self, stream: str, lo: float | pl.Expr, hi: float | pl.Expr, idx: str | pl.Expr = "_pk"
    ) -> pl.Expr:
        """Uniform float in [lo, hi)."""
        lo_e = lo if isinstance(lo, pl.Expr) else pl.lit(float(lo))
        hi_e = hi if isinstance(hi, pl.Expr) else pl.lit(float(hi))
        return lo_e + self.u(stream, idx) * (hi_e - lo_e)

    def integer(
        self, stream: str, lo: int | pl.Expr, hi: int | pl.Expr, idx: str | pl.Expr = "_pk"
    ) -> pl.Expr:
        """Uniform integer in [lo, hi] (both included)."""
        hi_e = (hi if isinstance(hi, pl.Expr) else pl.lit(hi)) + 1
        return self.uniform(stream, lo, hi_e, idx).floor().cast(pl.Int64)

    def pick(
        self,
        stream: str,
        values: Sequence[object],
        weights: Sequence[float] | None = None,
        idx: str | pl.Expr = "_pk",
    ) -> pl.Expr:
        """One of ``values`` per row, with optional relative ``weights``."""
        w = list(weights) if weights is not None else [1.0] * len(values)
        total = float(sum(w))
        cum = [c / total for c in accumulate(w)][:-1]
        pos = pl.lit(pl.Series(cum, dtype=pl.Float64)).search_sorted(
            self.u(stream, idx), side="right"
        )
        return pl.lit(pl.Series(list(values))).gather(pos)

    def python(self, stream: str) -> random.Random:
        """A Python ``random.Random`` for small, hand-written parts (planted scenarios)."""
        return random.Random(self.key(stream))


def cases(pairs: Sequence[tuple[pl.Expr, Any]], otherwise: Any = None) -> pl.Expr:
    """``when c1 then v1 when c2 then v2 … otherwise o`` from a list of pairs.

    >>> df = pl.DataFrame({"x": [1, 5]})
    >>> df.select(cases([(pl.col("x") < 3, pl.lit("low"))], pl.lit("high")))["literal"].to_list()
    ['low', 'high']
    """
    cond, value = pairs[0]
    expr: Any = pl.when(cond).then(value)
    for cond, value in pairs[1:]:
        expr = expr.when(cond).then(value)
    return expr.otherwise(otherwise)
