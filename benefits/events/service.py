"""The event service: apply change events and get the changed decisions at once.

One :class:`EventService` holds one delivery (the month's extracts) in memory for one benefit
month, with the current decisions of every person. :meth:`EventService.apply` takes an event
(a JSON line, a dict or a parsed event) and

1. validates it (:mod:`benefits.events.schema`) — an invalid one goes to the dead-letter file;
2. ignores it when its ``event_id`` was applied already (same content), refuses it when the id
   was used for different content;
3. matches it against the rule pack's reactions and correlations (rules/events.yaml, run by
   durable_rules in :mod:`benefits.events.reactions`) — a later report that confirms an
   earlier one changes nothing and says so;
4. plans the row changes (:mod:`benefits.events.store`) — refused when they do not fit the
   data (cancelling a certificate that does not exist …) or touch a table no reaction that
   fired declares — and makes them;
5. re-derives the facts of the households the reactions name (the person's own, their
   children's for a parent's death or situation, a means test's household) and decides them
   in this process with the sweep's checked rule expressions (:mod:`benefits.events.evaluator`);
   when they cannot be decided (a rule error), the row changes are undone and the event goes
   to the dead-letter file;
6. compares with the decisions before (:mod:`benefits.events.changes`) and, with a ledger,
   holds the pending items of unexported batches whose payment stops or becomes held, as
   the fired reactions declare (:mod:`benefits.events.holds`).

The decisions before the first event come from the sweep's own evaluation (``baseline=
"sweep"``, fast) or from the event path itself (``baseline="rules"``).

Example:
    >>> with EventService(Path("datasets/sample"), "2025-02") as service:  # doctest: +SKIP
    ...     result = service.apply('{"event_id": "d1", "type": "death_registered", '
    ...                            '"department": "police", "effective_date": "2025-01-10", '
    ...                            '"id_no": "330106194001011234"}')
    ...     [c.describe() for c in result.changes]
    ['stop old_age_allowance 100.00 → —', 'alert_raised death_stop due 2025-01-10: …']
"""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import polars as pl

from benefits.errors import ParameterError, RuleError
from benefits.events.changes import ENTITLEMENT_CHANGES, Change, diff
from benefits.events.dbstore import DbStore, StoreError, decode_outcome
from benefits.events.deadletter import DeadLetter
from benefits.events.decide import Alert, Entitlement, PersonOutcome, yuan
from benefits.events.evaluator import EvalRequest, Evaluator, HouseholdInput, LocalEvaluator
from benefits.events.holds import hold_items
from benefits.events.planners import plan
from benefits.events.program import MonthProgram, build_program
from benefits.events.reactions import Reactions
from benefits.events.schema import EventBase, EventError, parse_event
from benefits.events.store import RowChange, Store
from benefits.events.tracing import trace_record
from benefits.household import MonthContext, household_facts
from benefits.idcard import mask_name
from benefits.ingest import Extracts, load_extracts
from benefits.period import BenefitMonth
from benefits.rulebook import RulePack, load_pack
from benefits.sweep import ALERT_COLUMNS, ENTITLEMENT_COLUMNS

Status = Literal["applied", "duplicate", "rejected", "failed"]
BASELINE_CHUNK = 256


@dataclass
class ApplyResult:
    """What applying one event did."""

    status: Status
    event_id: str | None = None
    type: str | None = None
    error: str | None = None
    rows: list[RowChange] = field(default_factory=list)
    households: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    holds: list[dict[str, Any]] = field(default_factory=list)
    ledger_error: str | None = None
    seconds: float = 0.0
    reactions: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Applied, or already applied before."""
        return self.status in ("applied", "duplicate")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the CLI prints it)."""
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "type": self.type,
            "status": self.status,
        }
        if self.error:
            out["error"] = self.error
        if self.reactions:
            out["reactions"] = self.reactions
        if self.notes:
            out["notes"] = self.notes
        out["rows"] = [r.as_dict() for r in self.rows]
        out["households"] = self.households
        out["changes"] = [c.as_dict() for c in self.changes]
        if self.holds or self.ledger_error:
            out["ledger"] = {"held": self.holds, "error": self.ledger_error}
        return out


class _Refused(Exception):
    """Roll an event's store transaction back (the event is refused)."""


def sweep_baseline(
    pack: RulePack, program: MonthProgram, extracts: Extracts, month: BenefitMonth,
    outcome: Any,
) -> tuple[dict[str, PersonOutcome], list[Alert]]:  # fmt: skip
    """The decisions before any event, from the sweep's evaluation of the delivery.

    `outcome(id_no)` makes a person's empty :class:`PersonOutcome`. Returns the outcomes by
    person and the alerts read from quarantined rows.
    """
    from benefits.evaluate import evaluate
    from benefits.sweep import finish_entitlements

    ev = evaluate(pack, extracts, month)
    ent, _ = finish_entitlements(ev)
    static_kinds = {a.kind for a in program.alerts if a.source == "quarantine"}
    if static_kinds & {a.kind for a in program.alerts if a.source != "quarantine"}:
        raise RuleError(
            "alerts.yaml: an alert kind is read both from quarantined rows and from "
            "persons; start the event service with baseline='rules'"
        )
    outcomes: dict[str, PersonOutcome] = {}

    def get(id_no: str) -> PersonOutcome:
        out = outcomes.get(id_no)
        if out is None:
            out = outcomes[id_no] = outcome(id_no)
        return out

    for r in ent.iter_rows(named=True):
        get(r["id_no"]).entitlements[r["policy_id"]] = Entitlement(
            r["policy_id"], r["mode"], r["amount_fen"], r["held"], r["hold_reason"],
            r["policy_number"],
        )  # fmt: skip
    static: list[Alert] = []
    for r in ev.alerts.iter_rows(named=True):
        a = Alert(
            r["id_no"], r["kind"], r["policy_id"], r["due_date"], r["message"], r["holds"],
            r["rule_id"], r["party"], r["subject"], r["fingerprint"],
        )  # fmt: skip
        if r["kind"] in static_kinds:
            static.append(a)
        else:
            get(a.id_no).alerts.append(a)
    return outcomes, static


class EventService:
    """Applies change events to one month's decisions (see module doc).

    Args:
        data: the delivery folder (as for ``benefits sweep --data``).
        month: benefit month ``YYYY-MM`` whose decisions the events change.
        rules / pack: the rule pack folder, or a loaded pack (default: the bundled one).
        evaluator: where households are decided (default: in this process,
            :class:`benefits.events.evaluator.LocalEvaluator`).
        baseline: ``sweep`` (decisions before any event from the Polars sweep) or ``rules``.
        ledger: a :class:`benefits.ledger.Ledger` whose pending items a stop holds.
        by: the actor recorded in the ledger's audit log.
        dead_letter: the dead-letter file (default: none kept; refused events are returned).
        journal: a JSONL file of applied events, replayed on start (ids stay applied across
            restarts) and appended to.
        store: an event store URL (``postgresql://…`` or ``sqlite:///file``, loaded by
            :func:`benefits.events.storeload.load_store`): the rows, decisions and applied
            event ids are read per event from it (:mod:`benefits.events.dbstore`) instead of
            being held in memory; `data` is then not read, the baseline is the store's, and
            the journal is the store's table of applied event ids.
        store_schema: the PostgreSQL schema of the event store.
        freeze_gc: after loading, take the loaded objects out of the cyclic garbage
            collector's sight (:func:`gc.freeze`, process-wide; :meth:`close` undoes it). The
            store is a million or more tracked objects, and a full collection walking them
            stalls an event for a third of a second now and then. Turn it off in processes
            that create many services (tests).
    """

    def __init__(
        self,
        data: Path | str,
        month: str,
        *,
        rules: Path | None = None,
        pack: RulePack | None = None,
        evaluator: Evaluator | None = None,
        baseline: Literal["sweep", "rules"] = "sweep",
        ledger: Any = None,
        by: str = "events",
        dead_letter: Path | str | None = None,
        journal: Path | str | None = None,
        freeze_gc: bool = True,
        store: str | None = None,
        store_schema: str = "events_store",
    ) -> None:
        self.pack = pack or load_pack(rules)
        self.month = BenefitMonth.parse(month)
        self.district = self.pack.info.district_code
        precedence = tuple(self.pack.info.status_precedence)
        self.program: MonthProgram = build_program(self.pack, self.month)
        try:
            self.prev_program: MonthProgram | None = build_program(self.pack, self.month.previous)
        except ParameterError:  # as the sweep: nobody was paid in a month without parameters
            self.prev_program = None
        catalogue = self.pack.catalogue
        self.ctx = MonthContext.for_month(self.month, self.district, precedence, catalogue)
        self.prev_ctx = MonthContext.for_month(
            self.month.previous, self.district, precedence, catalogue
        )
        self.db: DbStore | None = None
        if store is not None:
            if journal is not None:
                raise StoreError("a journal is kept by the event store itself: give one or other")
            self.db = DbStore.connect(store, store_schema)
            try:
                self.db.require(self.month.label, catalogue.tables)
            except BaseException:
                self.db.close()
                raise
            self.store = Store(catalogue.tables)  # each event's rows, read from the database
            self._recalled: set[str] = set()  # applied event ids the reactions remember
            # the correlations' later events: they read the earlier ones of the same person
            self._then_types = {c.then for c in self.pack.events.correlations}
            if any(list(c.same) != ["id_no"] for c in self.pack.events.correlations):
                self.db.close()
                raise StoreError(
                    "events.yaml: with an event store, correlations must match on id_no"
                )
        else:
            extracts = load_extracts(Path(data), catalogue.tables)
            self.store = Store.from_extracts(extracts)
        self.reactions = Reactions(self.pack.events)
        self._own_evaluator = evaluator is None
        self.evaluator: Evaluator = evaluator or LocalEvaluator()
        self.ledger = ledger
        self.by = by
        self.dead_letter = DeadLetter(dead_letter) if dead_letter else None
        self.outcomes: dict[str, PersonOutcome] = {}
        self.static_alerts: dict[str, list[Alert]] = {}
        self.applied: dict[str, str] = {}
        self.counts = {"applied": 0, "duplicate": 0, "rejected": 0, "failed": 0}
        self._lock = threading.RLock()
        try:
            if self.db is not None:
                pass  # the decisions before any event are the store's
            elif baseline == "sweep":
                self._baseline_sweep(extracts)
            else:
                self._baseline_rules(extracts)
        except BaseException:
            self.close()
            raise
        gc.collect()  # the load's garbage goes now, not during the first events
        self._frozen = freeze_gc and self.db is None
        if self._frozen:
            gc.freeze()
        self.journal = Path(journal) if journal else None
        self.replayed: list[ApplyResult] = []
        if self.journal is not None and self.journal.exists():
            self._replay_journal()

    # ----------------------------------------------------------------------------- baseline
    def _baseline_sweep(self, extracts: Extracts) -> None:
        outcomes, static = sweep_baseline(self.pack, self.program, extracts, self.month,
                                          self._outcome)  # fmt: skip
        self.outcomes = outcomes
        for a in static:
            self.static_alerts.setdefault(a.id_no, []).append(a)

    def _outcome(self, id_no: str) -> PersonOutcome:
        out = self.outcomes.get(id_no)
        if out is None:
            p = self.store.persons.get(id_no)
            accounts = self.store.person_rows("bank_accounts", id_no)
            account = max(accounts, key=lambda r: r.row_no).account_no if accounts else None
            out = PersonOutcome(
                id_no,
                p.household_no if p else "",
                p.hukou_community if p else "",
                p.name if p else "",
                account,
            )
            self.outcomes[id_no] = out
        return out

    def _baseline_rules(self, extracts: Extracts) -> None:
        households = list(self.store.members)
        for i in range(0, len(households), BASELINE_CHUNK):
            chunk = households[i : i + BASELINE_CHUNK]
            for outcome in self._decide(chunk, traces=False)[0].values():
                self._keep(outcome)
        rows = list(extracts.quarantine.iter_rows(named=True))
        if rows:
            request = EvalRequest(self.program, None, [], quarantine=rows)
            for a in self.evaluator.evaluate(request).quarantine_alerts:
                self.static_alerts.setdefault(a.id_no, []).append(a)

    def _changes(
        self,
        members: list[str],
        decided: dict[str, PersonOutcome],
        facts: dict[str, dict[str, Any]],
    ) -> list[Change]:
        """What the new decisions of `members` change against the kept ones (entitlement
        changes with their trace), keeping the new decisions."""
        changes: list[Change] = []
        for id_no in members:
            new = decided[id_no]
            for change in diff(self.outcomes.get(id_no), new, self.month.label):
                if change.kind in ENTITLEMENT_CHANGES:
                    trace = self.trace(new, change.policy_id, facts[id_no])
                    change = replace(change, trace=trace)
                changes.append(change)
            self._keep(new)
        return changes

    def _keep(self, outcome: PersonOutcome) -> None:
        outcome.states = None
        if outcome.entitlements or outcome.alerts:
            self.outcomes[outcome.id_no] = outcome
        else:
            self.outcomes.pop(outcome.id_no, None)

    # ------------------------------------------------------------------------------ deciding
    def _decide(
        self, households: list[str], *, traces: bool
    ) -> tuple[dict[str, PersonOutcome], dict[str, dict[str, Any]]]:
        """Decide these households: (outcomes, the facts they were decided on) by person."""
        inputs = []
        prev = self.prev_ctx
        for hh in households:
            facts = household_facts(self.store, hh, self.ctx)
            died = tuple(
                f["id_no"] for f in facts
                if f["death_date"] is not None and prev.start <= f["death_date"] <= prev.end
            )  # fmt: skip
            prev_facts = (
                household_facts(self.store, hh, prev)
                if died and self.prev_program is not None
                else None
            )
            inputs.append(HouseholdInput(facts, prev_facts, died))
        facts = {f["id_no"]: dict(f) for hh in inputs for f in hh.facts}
        request = EvalRequest(self.program, self.prev_program, inputs, traces=traces)
        response = self.evaluator.evaluate(request)
        return {o.id_no: o for members in response.outcomes for o in members}, facts

    def trace(self, outcome: PersonOutcome, policy_id: str, facts: dict[str, Any]) -> Any:
        """The trace record of a decided person × policy (None when not considered)."""
        state = (outcome.states or {}).get(policy_id)
        if state is None:
            return None
        held = any(a.holds == "pay" for a in outcome.alerts)
        return trace_record(self.program, policy_id, facts, state, held)

    # ------------------------------------------------------------------------------ applying
    def apply(self, raw: Any, *, source: str | None = None) -> ApplyResult:
        """Apply one event (JSON text, dict or parsed event); see the module doc.

        Example:
            >>> service.apply({"event_id": "c1", ...}).status      # doctest: +SKIP
            'applied'
        """
        with self._lock:
            return self._apply(raw, source=source, hold=True, journal=True)

    def apply_many(
        self, lines: Iterable[Any], *, source: str | None = None
    ) -> Iterator[ApplyResult]:
        """Apply events one by one (e.g. the lines of a JSONL file), yielding each result."""
        for n, line in enumerate(lines, start=1):
            if isinstance(line, str | bytes) and not line.strip():
                continue
            yield self.apply(line, source=f"{source}:{n}" if source else None)

    def _apply(self, raw: Any, *, source: str | None, hold: bool, journal: bool) -> ApplyResult:
        t0 = time.perf_counter()
        try:
            event = parse_event(raw)
        except EventError as exc:
            return self._refuse(raw, None, str(exc), "rejected", source, t0)
        if self.db is not None:
            return self._apply_db(raw, event, source=source, hold=hold, t0=t0)
        digest = event.canonical()
        seen = self.applied.get(event.event_id)
        if seen is not None:
            if seen == digest:
                self.counts["duplicate"] += 1
                return ApplyResult("duplicate", event.event_id, event.type,
                                   seconds=time.perf_counter() - t0)  # fmt: skip
            return self._refuse(
                raw, event,
                f"{event.label()}: event id {event.event_id} was already applied with "
                "different content",
                "rejected", source, t0,
            )  # fmt: skip
        matched = self.reactions.match(event)
        confirmed = matched.confirms
        if confirmed is not None:  # a second report of the same change: nothing to do
            self._record(event, digest, journal)
            return ApplyResult(
                "applied", event.event_id, event.type, reactions=matched.describe(),
                notes=[confirmed.note(event)], seconds=time.perf_counter() - t0,
            )  # fmt: skip
        try:
            rows = plan(self.store, event, self.district)
        except EventError as exc:
            return self._refuse(raw, event, str(exc), "rejected", source, t0)
        undo = self.store.apply(rows)
        try:
            self.reactions.check_tables(matched, event, rows)
            households = sorted(self.reactions.households(matched, event, self.store))
            decided, facts = self._decide(households, traces=True)
        except (RuleError, RuntimeError) as exc:
            undo()
            return self._refuse(raw, event, f"{event.label()}: {exc}", "failed", source, t0)
        members = [i for hh in households for i in self.store.members.get(hh, ())]
        changes = self._changes(members, decided, facts)
        self._record(event, digest, journal)
        self.reactions.remember(event)
        result = ApplyResult(
            "applied", event.event_id, event.type, None, rows, households, changes,
            reactions=matched.describe(), notes=[c.note(event) for c in matched.correlated],
        )  # fmt: skip
        kinds = matched.holds()
        if hold and self.ledger is not None and changes and kinds:
            try:
                result.holds = hold_items(self.ledger, changes, event, self.by, kinds)
            except Exception as exc:  # the event stays applied; the officer is told
                result.ledger_error = f"{type(exc).__name__}: {exc}"
        result.seconds = time.perf_counter() - t0
        return result

    def _apply_db(
        self, raw: Any, event: EventBase, *, source: str | None, hold: bool, t0: float
    ) -> ApplyResult:
        """:meth:`_apply` on the event store: one transaction, under the store's lock."""
        assert self.db is not None
        digest = event.canonical()
        refused: tuple[str, Status] | None = None
        result: ApplyResult | None = None
        kinds: Any = set()
        try:
            with self.db.transaction() as tx:
                values = [v for v in event.model_dump().values() if isinstance(v, str)]
                self.store = tx.working(values, event.event_id, event.person)
                seen = tx.digest
                if seen is not None:
                    if seen == digest:
                        self.counts["duplicate"] += 1
                        self.store = Store(self.store.schema, self.store.records)
                        return ApplyResult("duplicate", event.event_id, event.type,
                                           seconds=time.perf_counter() - t0)  # fmt: skip
                    refused = (
                        f"{event.label()}: event id {event.event_id} was already applied with "
                        "different content",
                        "rejected",
                    )
                else:
                    if event.type in self._then_types:
                        self._recall(tx.recall)
                    matched = self.reactions.match(event)
                    if matched.confirms is not None:
                        tx.record(event.event_id, digest, event.person, remembered=False)
                        self.counts["applied"] += 1
                        return ApplyResult(
                            "applied", event.event_id, event.type, reactions=matched.describe(),
                            notes=[matched.confirms.note(event)], seconds=time.perf_counter() - t0,
                        )  # fmt: skip
                    self.outcomes = {}
                    try:
                        rows = plan(self.store, event, self.district)
                    except EventError as exc:
                        refused = (str(exc), "rejected")
                    else:
                        self.store.apply(rows)
                        try:
                            self.reactions.check_tables(matched, event, rows)
                            named = self.reactions.households(matched, event, self.store)
                            households = sorted(named)
                            homes = self.store.members
                            members = [i for hh in households for i in homes.get(hh, ())]
                            self.outcomes = tx.outcomes(members)
                            decided, facts = self._decide(households, traces=True)
                        except (RuleError, RuntimeError) as exc:
                            refused = (f"{event.label()}: {exc}", "failed")
                        else:
                            changes = self._changes(members, decided, facts)
                            kept = {i: self.outcomes.get(i) for i in members}
                            tx.write(self.store, kept, event.event_id, digest, event.person)
                            result = ApplyResult(
                                "applied", event.event_id, event.type, None, rows, households,
                                changes, reactions=matched.describe(),
                                notes=[c.note(event) for c in matched.correlated],
                            )  # fmt: skip
                            kinds = matched.holds()
                    if result is None:
                        self.store = Store(self.store.schema, self.store.records)
                        self.outcomes = {}
                        raise _Refused  # roll the transaction back: nothing was written
                self.store = Store(self.store.schema, self.store.records)
                self.outcomes = {}
        except _Refused:
            pass  # rolled back: nothing was written
        return self._after_db(raw, event, result, refused, source, kinds if hold else set(), t0)

    def _recall(self, remembered: list[tuple[str, str]]) -> None:
        """Remember the events about the event's person that other processes sharing the
        store applied (a correlation reads them with this one)."""
        for event_id, text in remembered:
            if event_id not in self._recalled:
                self._recalled.add(event_id)
                self.reactions.remember(parse_event(text))

    def _after_db(
        self, raw: Any, event: EventBase, result: ApplyResult | None,
        refused: tuple[str, Status] | None, source: str | None, kinds: Any, t0: float,
    ) -> ApplyResult:  # fmt: skip
        if result is None:
            assert refused is not None
            return self._refuse(raw, event, refused[0], refused[1], source, t0)
        self.counts["applied"] += 1
        self.reactions.remember(event)
        self._recalled.add(event.event_id)
        if self.ledger is not None and result.changes and kinds:
            try:
                result.holds = hold_items(self.ledger, result.changes, event, self.by, kinds)
            except Exception as exc:  # the event stays applied; the officer is told
                result.ledger_error = f"{type(exc).__name__}: {exc}"
        result.seconds = time.perf_counter() - t0
        return result

    def _record(self, event: EventBase, digest: str, journal: bool) -> None:
        """The event id is applied: counted, and written to the journal."""
        self.applied[event.event_id] = digest
        self.counts["applied"] += 1
        if journal and self.journal is not None:
            with self.journal.open("a", encoding="utf-8") as fh:
                fh.write(digest + "\n")

    def _refuse(
        self, raw: Any, event: EventBase | None, error: str, status: Status,
        source: str | None, t0: float,
    ) -> ApplyResult:  # fmt: skip
        self.counts[status] += 1
        if self.dead_letter is not None:
            self.dead_letter.add(raw, error, status=status, source=source)
        return ApplyResult(
            status,
            event.event_id if event else _field(raw, "event_id"),
            event.type if event else _field(raw, "type"),
            error,
            seconds=time.perf_counter() - t0,
        )

    def _replay_journal(self) -> None:
        assert self.journal is not None
        with self.journal.open(encoding="utf-8") as fh:
            lines = [line for line in fh if line.strip()]
        for n, line in enumerate(lines, start=1):
            result = self._apply(line, source=f"{self.journal}:{n}", hold=False, journal=False)
            self.replayed.append(result)

    # ------------------------------------------------------------------------------ reading
    def person(self, id_no: str) -> dict[str, Any]:
        """A person's current entitlements and alerts for the month (JSON-ready)."""
        with self._lock:
            if self.db is not None:
                with self.db.transaction() as tx:
                    out = tx.outcomes([id_no.upper()]).get(id_no.upper())
                static = self.db.static_alerts(id_no.upper())
            else:
                out = self.outcomes.get(id_no.upper())
                static = self.static_alerts.get(id_no.upper(), [])
            alerts = (out.alerts if out else []) + static
            return {
                "id_no": id_no.upper(),
                "month": self.month.label,
                "entitlements": [
                    {"policy_id": e.policy_id, "mode": e.mode, "amount": yuan(e.amount_fen),
                     "held": e.held, "hold_reason": e.hold_reason}
                    for e in (out.entitlements.values() if out else [])
                ],
                "alerts": [
                    {"kind": a.kind, "policy_id": a.policy_id,
                     "due_date": a.due_date.isoformat() if a.due_date else None,
                     "message": a.message}
                    for a in sorted(alerts, key=Alert.sort_key)
                ],
            }  # fmt: skip

    def _all_outcomes(self) -> Iterable[PersonOutcome]:
        if self.db is None:
            return self.outcomes.values()
        return (decode_outcome(i, text) for i, text in self.db.outcome_rows())

    def entitlements(self) -> pl.DataFrame:
        """Current entitlements in the sweep's ``entitlements.csv`` shape and order."""
        with self._lock:
            rows = [
                {
                    "id_no": o.id_no,
                    "household_no": o.household_no,
                    "policy_id": e.policy_id,
                    "month": self.month.label,
                    "mode": e.mode,
                    "amount": yuan(e.amount_fen),
                    "held": e.held,
                    "hold_reason": e.hold_reason if e.held else None,
                    "hukou_community": o.community,
                    "masked_name": mask_name(o.name),
                    "account_no": o.account_no,
                }
                for o in self._all_outcomes()
                for e in o.entitlements.values()
            ]
        schema = {c: pl.String for c in ENTITLEMENT_COLUMNS} | {"held": pl.Boolean}
        return pl.DataFrame(rows, schema=schema).sort(["id_no", "policy_id"])

    def alerts(self) -> pl.DataFrame:
        """Current alerts in the sweep's ``alerts.csv`` shape and order."""
        with self._lock:
            every = [a for o in self._all_outcomes() for a in o.alerts]
            if self.db is not None:
                every += self.db.static_alerts()
            else:
                every += [a for alerts in self.static_alerts.values() for a in alerts]
        every.sort(key=Alert.sort_key)
        rows = [
            {
                "id_no": a.id_no,
                "kind": a.kind,
                "policy_id": a.policy_id,
                "due_date": a.due_date.isoformat() if a.due_date else None,
                "message": a.message,
                "rule_id": a.rule_id,
                "party": a.party,
                "subject": a.subject,
                "fingerprint": a.fingerprint,
            }
            for a in every
        ]
        return pl.DataFrame(rows, schema=dict.fromkeys(ALERT_COLUMNS, pl.String))

    def status(self) -> dict[str, Any]:
        """Counts (for health pages and the CLI summary)."""
        if self.db is not None:
            persons, households = self.db.counts()
        else:
            persons, households = len(self.store.persons), len(self.store.members)
        return {
            "month": self.month.label,
            "persons": persons,
            "households": households,
            "events": dict(self.counts),
            "reactions": {
                "engine": "durable_rules",
                "rules": len(self.pack.events.reactions) + len(self.pack.events.correlations),
                "remembered": self.reactions.remembered,
            },
            "dead_letter": str(self.dead_letter.path) if self.dead_letter else None,
        }

    # ---------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Close the evaluator this service started (and unfreeze the garbage collector)."""
        if self._own_evaluator:
            self.evaluator.close()
        if getattr(self, "db", None) is not None:
            self.db.close()  # type: ignore[union-attr]
            self.db = None
        if getattr(self, "_frozen", False):
            gc.unfreeze()
            self._frozen = False

    def __enter__(self) -> EventService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _field(raw: Any, name: str) -> Any:
    if isinstance(raw, dict):
        return raw.get(name)
    if isinstance(raw, str | bytes):
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        return data.get(name) if isinstance(data, dict) else None
    return None
