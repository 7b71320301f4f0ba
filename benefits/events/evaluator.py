"""Decide households in this process: the service's requests, answered by :class:`MonthDecider`.

Eligibility runs as Python closures over the checked rule expressions
(:mod:`benefits.events.decide`), in the service's own process: no rule engine, no worker
process. A request names the month's program (and the previous month's, for people who died
then: were they paid or credited for it?) and the households' facts.

Example:
    >>> ev = LocalEvaluator()
    >>> request = EvalRequest(program, None, [HouseholdInput(facts)])  # doctest: +SKIP
    >>> response = ev.evaluate(request)                                # doctest: +SKIP
    >>> ev.restarts
    0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from benefits.compiled import PAID_PREV
from benefits.evaluate import PAY_MODES_PREV
from benefits.events.decide import Alert, MonthDecider, PersonOutcome
from benefits.events.program import MonthProgram


@dataclass
class HouseholdInput:
    """One household to decide: its members' facts for M, and for M−1 when someone died then."""

    facts: list[dict[str, Any]]
    prev_facts: list[dict[str, Any]] | None = None
    died_prev: tuple[str, ...] = ()


@dataclass
class EvalRequest:
    """Households to decide for a month (and the month before, for deaths)."""

    program: MonthProgram
    prev_program: MonthProgram | None
    households: list[HouseholdInput]
    traces: bool = False
    quarantine: list[dict[str, Any]] | None = None


@dataclass
class EvalResponse:
    outcomes: list[list[PersonOutcome]]
    quarantine_alerts: list[Alert] = field(default_factory=list)


class Evaluator(Protocol):
    """Decides households; the service does not care how."""

    def evaluate(self, request: EvalRequest) -> EvalResponse: ...

    def close(self) -> None: ...


class LocalEvaluator:
    """Decides in this process; each month's program is compiled once and kept."""

    restarts = 0  # nothing to restart: kept for the service's status

    def __init__(self) -> None:
        self.deciders: dict[str, MonthDecider] = {}

    def decider(self, program: MonthProgram) -> MonthDecider:
        """The compiled month (compiled on first sight)."""
        found = self.deciders.get(program.key)
        if found is None:
            found = self.deciders[program.key] = MonthDecider(program)
        return found

    def evaluate(self, request: EvalRequest) -> EvalResponse:
        """Decide the request's households (and its quarantined rows' alerts)."""
        decider = self.decider(request.program)
        prev = self.decider(request.prev_program) if request.prev_program else None
        outcomes = []
        for hh in request.households:
            if hh.died_prev:
                paid = (
                    prev.paid_ids(hh.prev_facts, PAY_MODES_PREV)
                    if prev is not None and hh.prev_facts
                    else set()
                )
                for f in hh.facts:
                    f[PAID_PREV] = f["id_no"] in hh.died_prev and f["id_no"] in paid
            outcomes.append(decider.decide(hh.facts, traces=request.traces))
        alerts = decider.quarantine_alerts(request.quarantine) if request.quarantine else []
        return EvalResponse(outcomes, alerts)

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> LocalEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
