"""Display of values: facts, fen amounts and constants rendered as text, one way everywhere."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import polars as pl

from benefits.pipeline import text_rule


def display_expr(name: str, kind: str) -> pl.Expr:
    """A fact rendered for people, by the kind's :func:`benefits.pipeline.text_rule`."""
    c = pl.col(name)
    rule = text_rule(kind)
    if rule == "yuan":
        return yuan_expr(c)
    if rule == "iso":
        return c.dt.strftime("%Y-%m-%d")
    if rule == "true_false":
        return pl.when(c).then(pl.lit("true")).when(~c).then(pl.lit("false"))
    return c.cast(pl.String)


def yuan_expr(fen: pl.Expr) -> pl.Expr:
    """Integer fen → '459.00'."""
    sign = pl.when(fen < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    a = fen.abs()
    return pl.concat_str(
        [sign, (a // 100).cast(pl.String), pl.lit("."), (a % 100).cast(pl.String).str.zfill(2)]
    )


def fen_to_decimal(fen: int) -> Decimal:
    """Integer fen → Decimal yuan (for summaries)."""
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


def json_const(value: Any) -> str:
    """Deterministic JSON text of a constant (UTF-8, no ASCII escaping)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=False)
