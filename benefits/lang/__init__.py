"""The rule expression language: parsed and type-checked once, run by two backends.

- :mod:`benefits.lang.nodes` — the typed intermediate form (:class:`Node`);
- :mod:`benefits.lang.check` — text → nodes, with names resolved in a :class:`Scope`;
- :mod:`benefits.lang.polars` — nodes → a Polars expression (the sweep);
- :mod:`benefits.lang.python` — nodes → a Python closure over one person (the event path).
"""

from benefits.lang.check import Scope, check, check_amount, check_condition, names_in, parse
from benefits.lang.nodes import MONEY, ColumnType, ExprError, Months, Node

__all__ = [
    "MONEY",
    "ColumnType",
    "ExprError",
    "Months",
    "Node",
    "Scope",
    "check",
    "check_amount",
    "check_condition",
    "names_in",
    "parse",
]
