"""The examples in the cycle's docstrings run and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "benefits.cycle",
    "benefits.cycle.checks",
    "benefits.cycle.clock",
    "benefits.cycle.landing",
    "benefits.cycle.lock",
    "benefits.cycle.models",
    "benefits.cycle.notify",
    "benefits.cycle.outcome",
    "benefits.cycle.retries",
    "benefits.cycle.runner",
    "benefits.cycle.settings",
    "benefits.cycle.snapshot",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
