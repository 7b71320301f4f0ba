"""The rule expression language as the sweep uses it: text → checked nodes → Polars.

Rule files write conditions and amounts as short Python-syntax expressions over facts and
parameters (``age >= 80``, ``dibao_std - hh_pci``, ``min(ta_rate * (oop_12m - ta_deductible),
ta_cap)``). :mod:`benefits.lang` parses and type-checks them once (a whitelist of node types,
nothing is executed) and lowers them to Polars with exact money: ``0.30 * 1301`` is 390.30
exactly and ``74997 / 12`` is never rounded before the final half-up rounding to the cent.

Example:
    >>> import polars as pl
    >>> scope = Scope(facts={"hh_pci": "money"}, params={"dibao_std": Fraction(1301)})
    >>> v = compile_expr("dibao_std - hh_pci", scope)
    >>> pl.DataFrame({"hh_pci": [80000]}).select(to_fen(v)).item()
    50100
"""

from __future__ import annotations

from fractions import Fraction

from benefits.lang.check import Scope, check, names_in, parse
from benefits.lang.nodes import ExprError, Months
from benefits.lang.polars import FACT_VALUE, Value, fen_value, to_fen, to_polars


def compile_expr(text: str, scope: Scope) -> Value:
    """Check an expression in a scope and lower it to Polars (see module doc)."""
    return to_polars(check(text, scope), scope)


__all__ = [
    "FACT_VALUE",
    "ExprError",
    "Fraction",
    "Months",
    "Scope",
    "Value",
    "compile_expr",
    "fen_value",
    "names_in",
    "parse",
    "to_fen",
]
