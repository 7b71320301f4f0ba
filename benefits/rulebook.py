"""The rule pack in `rules/`: load, validate (pydantic) and look up parameters by month.

Layout::

    rules/pack.yaml                      name, version, district, status precedence
    rules/parameters/*.yaml              effective-dated parameters with their legal basis
                                         (``yearly: true``: a new value is due every year)
    rules/policies/<group>/<id>.yaml     one file per policy
    rules/exclusions.yaml                exclusions and mutually exclusive pairs
    rules/alerts.yaml                    the proactive alerts
    rules/tables.yaml                    the departmental tables (benefits.schema)
    rules/facts.yaml                     the per-person facts (benefits.catalogue)
    rules/events.yaml                    the event reactions and correlations (event service)

Errors name the file, the rule and the field.

Example:
    >>> pack = load_pack()
    >>> pack.parameter_at("dibao_std", BenefitMonth.parse("2025-01"))
    (Decimal('1301'), datetime.date(2025, 1, 23))
    >>> [p.id for p in pack.policies][:2]
    ['dibao_allowance', 'dibian_living_subsidy']
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import string
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from benefits.catalogue import Catalogue, load_catalogue
from benefits.errors import ParameterError, RuleError
from benefits.expr import ExprError, names_in, parse
from benefits.period import BenefitMonth
from benefits.resources import bundled, rules_folder
from benefits.schema import load_yaml, validated

WHAT_IF_FROM = dt.date(1900, 1, 1)  # overridden parameters are in force for every month
DEFAULT_RULES = bundled("rules")  # the clone's rules/, else the copy shipped in the package


def default_rules_folder() -> Path:
    """`$BENEFITS_RULES`, else the clone's `rules/`, else the copy shipped in the package
    (an absolute path either way, whatever the working directory)."""
    return rules_folder()


IDENT = r"^[a-z][a-z0-9_]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Label(Strict):
    zh: str
    en: str

    def text(self) -> str:
        return f"{self.zh} / {self.en}"


class Basis(Strict):
    """A legal or documentary basis: the notice, its title and the article."""

    doc: str
    title: str | None = None
    article: str | None = None
    url: str | None = None


Expression = Annotated[str, Field(min_length=1)]


class Condition(Strict):
    id: Annotated[str, Field(pattern=IDENT)]
    label: Label
    when: Expression


class AmountCase(Strict):
    when: Expression | None = None
    value: Expression


class OrderKey(Strict):
    asc: Expression | None = None
    desc: Expression | None = None

    @property
    def expr(self) -> str:
        return self.asc if self.asc is not None else str(self.desc)

    @property
    def descending(self) -> bool:
        return self.desc is not None


class OnePer(Strict):
    """At most one row per group (e.g. one lead per household), chosen by `order`."""

    by: str
    order: list[OrderKey]
    label: Label


class Policy(Strict):
    id: Annotated[str, Field(pattern=IDENT)]
    number: int
    version: str
    valid_from: dt.date
    valid_to: dt.date | None = None
    name: Label
    group: Literal["hardship", "disabled", "elderly", "retirees", "children"]
    mode: Literal["pay", "credit", "lead", "notice"]
    basis: list[Basis]
    considers: Expression
    conditions: list[Condition]
    let: dict[str, Expression] = {}
    components: dict[str, Expression] = {}
    amount: Expression | list[AmountCase]
    amount_label: Label | None = None
    one_per: OnePer | None = None
    source_file: str = ""

    @field_validator("amount")
    @classmethod
    def _last_case_unconditional(cls, v: Any) -> Any:
        if isinstance(v, list):
            if not v:
                raise ValueError("amount needs at least one case")
            if v[-1].when is not None:
                raise ValueError("the last amount case must have no 'when' (the default)")
            if any(c.when is None for c in v[:-1]):
                raise ValueError("only the last amount case may omit 'when'")
        return v

    def applies_to(self, month: BenefitMonth) -> bool:
        return self.valid_from <= month.end and (
            self.valid_to is None or self.valid_to >= month.start
        )

    def expressions(self) -> list[tuple[str, str]]:
        """(field, expression) pairs, for validation."""
        out = [("considers", self.considers)]
        out += [(f"conditions.{c.id}.when", c.when) for c in self.conditions]
        out += [(f"let.{k}", v) for k, v in self.let.items()]
        out += [(f"components.{k}", v) for k, v in self.components.items()]
        if isinstance(self.amount, str):
            out.append(("amount", self.amount))
        else:
            for i, case in enumerate(self.amount):
                if case.when:
                    out.append((f"amount[{i}].when", case.when))
                out.append((f"amount[{i}].value", case.value))
        if self.one_per:
            out += [(f"one_per.order[{i}]", k.expr) for i, k in enumerate(self.one_per.order)]
        return out

    def amount_text(self) -> str:
        if isinstance(self.amount, str):
            return self.amount
        parts = [f"{c.value} if {c.when}" for c in self.amount[:-1]]
        return "; ".join([*parts, f"otherwise {self.amount[-1].value}"])


class Exclusion(Strict):
    id: Annotated[str, Field(pattern=IDENT)]
    label: Label
    basis: str
    between: tuple[str, str]
    when: Expression | None = None
    exclude: str  # a policy id, or policy.component to drop a component

    @property
    def target_policy(self) -> str:
        return self.exclude.split(".")[0]

    @property
    def component(self) -> str | None:
        return self.exclude.split(".")[1] if "." in self.exclude else None

    @property
    def winner(self) -> str:
        a, b = self.between
        return b if self.target_policy == a else a


class ExclusivePair(Strict):
    policies: tuple[str, str]
    resolved_by: str  # "exclusion" or a sentence saying which conditions make them disjoint


class Exclusions(Strict):
    exclusions: list[Exclusion]
    mutually_exclusive: list[ExclusivePair]


class Alert(Strict):
    id: Annotated[str, Field(pattern=IDENT)]  # stable across label and message changes
    kind: Annotated[str, Field(pattern=IDENT)]
    label: Label
    basis: str = "policy handbook §5"
    source: Literal["persons", "quarantine"] = "persons"
    scope: Literal["residents", "anyone"] = "residents"
    when: Expression
    policy: str | None = None
    due: Expression
    message: str
    holds: Literal["pay"] | None = None
    one_per: OnePer | None = None


class AlertBook(Strict):
    alerts: list[Alert]


EventValue = str | int | bool
NOTE_NAMES = ("first_event", "first_department", "first_date", "days")  # a correlation's note


class Reaction(Strict):
    """What one kind of departmental change sets off (rules/events.yaml)."""

    id: Annotated[str, Field(pattern=IDENT)]
    label: Label
    basis: str
    events: Annotated[list[str], Field(min_length=1)]
    where: dict[str, EventValue | list[EventValue]] = {}
    touches: Annotated[list[str], Field(min_length=1)]
    redecide: Annotated[list[dict[Literal["household_of", "children_of", "household"], str]],
                        Field(min_length=1)]  # fmt: skip
    policies: Literal["all"] | list[str]
    alerts: Literal["all"] | list[str] = []
    holds: list[Literal["stop", "held"]] = []

    @field_validator("redecide")
    @classmethod
    def _one_target_each(cls, v: Any) -> Any:
        for target in v:
            if len(target) != 1:
                raise ValueError("each redecide entry names one target, e.g. {household_of: id_no}")
        return v


class Correlation(Strict):
    """A later event read together with an earlier one of the same person (rules/events.yaml)."""

    id: Annotated[str, Field(pattern=IDENT)]
    label: Label
    basis: str
    first: str
    then: str
    same: Annotated[list[str], Field(min_length=1)]
    differ: list[str] = []
    within_days: Annotated[int, Field(ge=0, le=366)]
    order: Literal["after", "either"] = "either"
    effect: Literal["confirm", "follow"]
    note: str


class EventBook(Strict):
    reactions: list[Reaction] = []
    correlations: list[Correlation] = []


class Parameter(Strict):
    label: Label
    unit: str
    basis: str
    published: bool = False
    yearly: bool = False  # a new value is due every calendar year (benefits.paramcalendar)
    values: dict[dt.date, Decimal | str]

    @field_validator("values", mode="before")
    @classmethod
    def _exact(cls, v: Any) -> Any:
        if not isinstance(v, dict) or not v:
            raise ValueError("values must map effective dates to values")
        out = {}
        for day, value in v.items():
            if isinstance(value, bool):
                raise ValueError(f"{day}: a parameter value cannot be a boolean")
            if isinstance(value, str) and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value.strip()):
                value = Decimal(value.strip())
            elif isinstance(value, int | float):
                try:
                    value = Decimal(str(value))
                except InvalidOperation as exc:  # pragma: no cover
                    raise ValueError(f"{day}: {value!r} is not a number") from exc
            out[day] = value
        return out

    def at(self, month: BenefitMonth) -> tuple[Decimal | str, dt.date] | None:
        """The value in force for a month: the newest effective date ≤ the month's last day."""
        best = None
        for day in sorted(self.values):
            if day <= month.end:
                best = (self.values[day], day)
        return best


class PackInfo(Strict):
    name: str
    version: str
    district_code: Annotated[str, Field(pattern=r"^[0-9]{6}$")]
    district_name: str
    status_precedence: list[Literal["tekun", "dibao", "dibian"]]
    handbook: str


class RulePack:
    """A loaded, validated rule pack."""

    def __init__(
        self,
        folder: Path,
        info: PackInfo,
        parameters: dict[str, Parameter],
        policies: list[Policy],
        exclusions: Exclusions,
        alerts: list[Alert],
        digest: str,
        catalogue: Catalogue | None = None,
        events: EventBook | None = None,
    ) -> None:
        self.folder = folder
        self.catalogue = catalogue or load_catalogue(folder)  # tables.yaml + facts.yaml
        self.info = info
        self.parameters = parameters
        self.policies = policies
        self.exclusions = exclusions
        self.alerts = alerts
        self.digest = digest
        self.events = events or EventBook()
        self.by_id = {p.id: p for p in policies}

    @property
    def version(self) -> str:
        return self.info.version

    def parameter_at(self, name: str, month: BenefitMonth) -> tuple[Decimal | str, dt.date]:
        """The value in force for `month`; a missing one is an error naming both."""
        param = self.parameters.get(name)
        if param is None:
            raise ParameterError(f"unknown parameter '{name}'")
        found = param.at(month)
        if found is None:
            raise ParameterError(
                f"parameter '{name}' has no value in force for {month.label} "
                f"(earliest effective date {min(param.values)})"
            )
        return found

    def policies_for(self, month: BenefitMonth) -> list[Policy]:
        return [p for p in self.policies if p.applies_to(month)]

    def with_parameters(self, overrides: dict[str, Decimal | str | int]) -> RulePack:
        """A what-if copy of the pack in which each named parameter has one value, in force
        for every month. The copy's digest says it was overridden.

        >>> what_if = load_pack().with_parameters({"old_age_80": "70"})
        >>> what_if.parameter_at("old_age_80", BenefitMonth.parse("2025-01"))[0]
        Decimal('70')
        """
        parameters = dict(self.parameters)
        for name, value in overrides.items():
            if name not in parameters:
                raise ParameterError(f"unknown parameter '{name}'")
            old = parameters[name]
            parameters[name] = Parameter(
                label=old.label,
                unit=old.unit,
                basis=f"what-if override of: {old.basis}",
                published=False,
                values={WHAT_IF_FROM: value if isinstance(value, Decimal) else str(value)},
            )
        canonical = json.dumps({k: str(v) for k, v in sorted(overrides.items())})
        digest = hashlib.sha256(f"{self.digest}+{canonical}".encode()).hexdigest()
        return RulePack(
            self.folder, self.info, parameters, self.policies, self.exclusions, self.alerts,
            digest, self.catalogue, self.events,
        )  # fmt: skip


def _read_yaml(path: Path) -> Any:
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: not valid YAML: {exc}") from exc


def pack_digest(folder: Path) -> str:
    """SHA-256 over every rule file (relative path and bytes, in path order)."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*.yaml")):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def load_pack(folder: Path | None = None) -> RulePack:
    """Load and validate the rule pack (the bundled `rules/` by default)."""
    folder = Path(folder or default_rules_folder())
    if not (folder / "pack.yaml").exists():
        raise RuleError(f"{folder}: no pack.yaml — not a rule pack folder")
    info = validated(PackInfo, _read_yaml(folder / "pack.yaml"), folder / "pack.yaml", "pack")
    parameters: dict[str, Parameter] = {}
    for path in sorted((folder / "parameters").glob("*.yaml")):
        for name, data in (_read_yaml(path) or {}).items():
            if name in parameters:
                raise RuleError(f"{path}: parameter '{name}' is defined twice")
            parameters[name] = validated(Parameter, data, path, f"parameter '{name}'")
    policies: list[Policy] = []
    for path in sorted((folder / "policies").rglob("*.yaml")):
        data = _read_yaml(path)
        if isinstance(data, dict):
            data = {**data, "source_file": path.relative_to(folder).as_posix()}
        rule_id = data.get("id", path.stem) if isinstance(data, dict) else path.stem
        policies.append(validated(Policy, data, path, f"policy '{rule_id}'"))
    policies.sort(key=lambda p: p.number)
    exclusions = validated(
        Exclusions, _read_yaml(folder / "exclusions.yaml"), folder / "exclusions.yaml", "exclusions"
    )
    alerts = validated(
        AlertBook, _read_yaml(folder / "alerts.yaml"), folder / "alerts.yaml", "alerts"
    ).alerts
    events_file = folder / "events.yaml"
    events = (
        validated(EventBook, _read_yaml(events_file) or {}, events_file, "events")
        if events_file.exists()
        else EventBook()
    )
    pack = RulePack(
        folder, info, parameters, policies, exclusions, alerts, pack_digest(folder), events=events
    )
    check_pack(pack)
    return pack


def check_pack(pack: RulePack) -> None:
    """Cross-file checks: unique ids, known names, declared precedence for exclusive pairs."""
    ids = [p.id for p in pack.policies]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise RuleError(f"policies: id(s) defined twice: {', '.join(sorted(dupes))}")
    builtins = {"month_start", "month_end", "prev_month_start", "prev_month_end", "month_number"}
    known = set(pack.catalogue.facts) | set(pack.parameters) | builtins | {"district_code"}
    for p in pack.policies:
        local = set(p.let) | set(p.components)
        for fld, text in p.expressions():
            where = f"{pack.folder / p.source_file}: policy '{p.id}', field {fld}"
            try:
                parse(text)
            except ExprError as exc:
                raise RuleError(f"{where}: {exc}") from exc
            unknown = [n for n in names_in(text) if n not in known | local | set(ids)]
            if unknown:
                raise RuleError(f"{where}: unknown name '{unknown[0]}' in {text!r}")
    ex = pack.exclusions
    for e in ex.exclusions:
        where = f"{pack.folder / 'exclusions.yaml'}: exclusion '{e.id}'"
        for pid in e.between:
            if pid not in pack.by_id:
                raise RuleError(f"{where}, field between: unknown policy '{pid}'")
        if e.target_policy not in e.between:
            raise RuleError(f"{where}, field exclude: '{e.exclude}' is not one of {e.between}")
        if e.component and e.component not in pack.by_id[e.target_policy].components:
            raise RuleError(
                f"{where}, field exclude: policy '{e.target_policy}' has no component "
                f"'{e.component}'"
            )
    losers = {e.target_policy for e in ex.exclusions if e.component is None}
    for e in ex.exclusions:
        if e.winner in losers and e.component is None:
            raise RuleError(
                f"{pack.folder / 'exclusions.yaml'}: exclusion '{e.id}': '{e.winner}' both "
                "excludes and is excluded — chained exclusions need an explicit order, which "
                "is not supported"
            )
    covered = {frozenset(e.between) for e in ex.exclusions if e.component is None}
    for pair in ex.mutually_exclusive:
        for pid in pair.policies:
            if pid not in pack.by_id:
                raise RuleError(f"exclusions.yaml: mutually_exclusive names unknown policy '{pid}'")
        if pair.resolved_by == "exclusion" and frozenset(pair.policies) not in covered:
            raise RuleError(
                f"exclusions.yaml: {pair.policies[0]} and {pair.policies[1]} are mutually "
                "exclusive but no exclusion declares which one wins"
            )
    alert_ids = [a.id for a in pack.alerts]
    twice = sorted({i for i in alert_ids if alert_ids.count(i) > 1})
    if twice:
        raise RuleError(
            f"{pack.folder / 'alerts.yaml'}: field id: alert id(s) used by more than one rule: "
            f"{', '.join(twice)} — each rule needs its own id"
        )
    for a in pack.alerts:
        if a.policy and a.policy not in pack.by_id:
            raise RuleError(f"alerts.yaml: alert '{a.id}' names unknown policy '{a.policy}'")
    check_events(pack)


def check_events(pack: RulePack) -> None:
    """events.yaml: known event types, event fields, tables, policies and alert kinds."""
    from benefits.events.schema import EVENT_TYPES
    from benefits.schema import TABLES

    where = pack.folder / "events.yaml"
    book = pack.events
    ids = [r.id for r in book.reactions] + [c.id for c in book.correlations]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise RuleError(f"{where}: id(s) used by more than one reaction: {', '.join(twice)}")
    kinds = {a.kind for a in pack.alerts}

    def fields_of(etype: str, what: str) -> set[str]:
        if etype not in EVENT_TYPES:
            known = ", ".join(EVENT_TYPES)
            raise RuleError(f"{what}: unknown event type '{etype}' (known: {known})")
        return set(EVENT_TYPES[etype].model_fields)

    for r in book.reactions:
        what = f"{where}: reaction '{r.id}'"
        for etype in r.events:
            known = fields_of(etype, what)
            used = [*r.where, *(f for t in r.redecide for f in t.values())]
            missing = [f for f in used if f not in known]
            if missing:
                raise RuleError(f"{what}: {etype} events have no field '{missing[0]}'")
        for table in r.touches:
            if table not in TABLES:
                raise RuleError(f"{what}, field touches: unknown table '{table}'")
        for pid in [] if r.policies == "all" else r.policies:
            if pid not in pack.by_id:
                raise RuleError(f"{what}, field policies: unknown policy '{pid}'")
        for kind in [] if r.alerts == "all" else r.alerts:
            if kind not in kinds:
                raise RuleError(f"{what}, field alerts: no alert of kind '{kind}' in alerts.yaml")
    for c in book.correlations:
        what = f"{where}: correlation '{c.id}'"
        both = fields_of(c.first, what) & fields_of(c.then, what)
        try:
            names = [n for _, n, _, _ in string.Formatter().parse(c.note) if n]
            unknown = [n for n in names if n not in NOTE_NAMES]
        except ValueError as exc:
            raise RuleError(f"{what}, field note: {exc}") from exc
        if unknown:
            raise RuleError(
                f"{what}, field note: unknown name {{{unknown[0]}}} (known: "
                f"{', '.join(NOTE_NAMES)})"
            )
        for name in [*c.same, *c.differ]:
            if name not in both:
                raise RuleError(f"{what}: '{name}' is not a field of both {c.first} and {c.then}")
