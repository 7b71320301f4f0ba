"""The sweep's trace record of one person × policy, from the event path's decision state.

Laid out as the policy's :class:`benefits.traces.DecisionLayout` says, with facts shown as
the trace shows them, so that the event path's records match the sweep's ``traces.jsonl``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from benefits.events.decide import PolicyState, display, yuan
from benefits.events.program import MonthProgram
from benefits.traces import fact_kind, source_rows


def trace_record(
    program: MonthProgram,
    policy_id: str,
    facts: Mapping[str, Any],
    st: PolicyState,
    held: bool,
) -> dict[str, Any]:
    """The sweep's trace record (``traces.jsonl``) of one person × policy considered, laid
    out as the policy's :class:`benefits.traces.DecisionLayout` says."""
    spec = next(p for p in program.policies if p.id == policy_id)
    layout = spec.layout
    assert layout is not None, "a program's policies carry their decision layout"

    def values(names: Sequence[str]) -> dict[str, Any]:
        return {n: display(fact_kind(n, layout.facts), facts.get(n)) for n in names}

    def sources(names: Sequence[str]) -> dict[str, Any]:
        rows = source_rows(tuple(names), layout.facts)
        return {table: facts.get(row) for table, row in rows.items()}

    flags = {"eligible": st.eligible, "candidate": st.candidate, "paid": st.paid}
    record: dict[str, Any] = {
        **layout.header,
        "id_no": facts["id_no"],
        "household_no": facts["household_no"],
        "decision": layout.decision(flags, held),
        "amount": yuan(st.final) if st.paid else None,
    }
    if layout.cases and st.paid and st.case:
        case = layout.cases[st.case - 1]
        record["amount_branch"] = {
            "case": case.number,
            "when": case.when,
            "value": case.value,
            "values": values(case.facts),
        }
    record["target_group"] = {
        "test": layout.considers,
        "values": values(layout.considers_facts),
        "sources": sources(layout.considers_facts),
    }
    record["conditions"] = {
        cid: {"holds": holds, "values": values(names), "sources": sources(names)}
        for (cid, names), holds in zip(layout.conditions, st.conditions, strict=True)
    }
    if layout.components:
        record["components"] = {
            n: {"amount": yuan(st.components.get(n)) or "", "dropped": n in st.dropped}
            for n in layout.components
        }
    record["parameters"] = layout.parameters
    exclusions = [
        entry
        for eid, component, entry in layout.exclusions
        if (component in st.dropped if component else eid in st.excluded)
    ]
    if layout.one_per and st.eligible and not st.candidate:
        exclusions.append(layout.one_per)
    record["exclusions"] = exclusions
    return record
