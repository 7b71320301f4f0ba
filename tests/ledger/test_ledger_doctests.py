"""The examples in the ledger's docstrings run and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "benefits.ledger.adjustments",
    "benefits.ledger.audit",
    "benefits.ledger.bankfile",
    "benefits.ledger.clock",
    "benefits.ledger.db",
    "benefits.ledger.errors",
    "benefits.ledger.faults",
    "benefits.ledger.items",
    "benefits.ledger.models",
    "benefits.ledger.money",
    "benefits.ledger.cli",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
