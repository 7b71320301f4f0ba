"""Rule cases: readable YAML cases (the repository's ``tests/cases/``) turned into extract
files, run through a sweep of any rule pack, and compared with what the handbook says the
sweep must produce (``benefits rules test``; the test suite uses the same kit).

A case is written only in the words of the handbook and the data contract: the kit writes CSV
extracts, runs ``run_sweep`` on them and reads its three tables. The policy modes and alert
kinds a case may name come from the caller (:class:`Vocabulary`): the test suite passes the
handbook's, ``rules test`` the pack's.

A case file
-----------
::

    policy: old_age_allowance        # or `alert: <kind>` or `topic: <name>` — the grouping
    cases:
      - name: 80th birthday the day before M.start is paid
        month: 2025-01
        note: why the case matters (optional, free text)
        ambiguity: a question the handbook leaves open (optional; the literal reading is used)
        persons:
          - {id: A, birth_date: 1944-12-31}
        deaths: [...]                # any other extract, in data-contract columns
        expect:
          entitlements: [{person: A, policy: old_age_allowance, amount: "60.00"}]
          alerts: []

People are named by **handles** — upper-case words such as ``A``, ``MOTHER``, ``CHILD2``.
The kit turns each handle into a valid 18-character resident ID
``make_id("330106", birth_date, sequence)`` (odd sequence for ``sex: M``), so IDs of people
born on the same day sort in the order they are first mentioned; an older person always has
the smaller ID. A handle may appear in any ID column (``id_no``, ``father_id_no``,
``mother_id_no``) and in the expectations. A value that is not a handle (e.g. a literal
``"33010619450101123X"``) is written exactly as given — that is how raw, broken rows are made.

``persons`` rows
    ``id`` (the handle) is required; every other column has a default:
    name (a Chinese name), sex ``F``, birth_date ``1980-06-15``, household_no from
    ``household`` (default ``H-<handle>``, i.e. one household per person), relation ``head``,
    hukou_district ``330106``, hukou_community ``330106001``, hukou_status ``normal``,
    moved_out_date / father_id_no / mother_id_no empty (``father``/``mother`` are short for
    the last two). ``id_no`` gives a literal ID for the handle instead of a generated one;
    ``seq`` fixes the sequence number. Listing a handle a second time writes a second persons
    row with the same ID (the first row's values, overridden by the second row's).
    Every person whose ID is valid also gets a ``bank_accounts`` row (open,
    financial_active, account_name = name) unless the row says ``bank: none``, gives
    ``bank: {column: value, ...}`` overrides, or the case lists bank_accounts rows for them.
``others``
    People known only by ID (parents not in the registry): ``{id: FATHER, birth_date: ...,
    sex: M}``. Optional — an unlisted handle gets birth_date ``1975-06-15`` and sex ``M`` when
    it is used as a ``father_id_no``, else ``F``.
Other tables
    Rows use the data-contract columns. Defaults: deaths.source ``police``;
    assistance.household_no = the person's household; disability_certificates.cert_no
    ``CDPF-001``, ``CDPF-002``… and status ``valid``; care_assessments.institution_resident
    ``false``; bank_accounts as for the default row. ``raw: true`` writes only the cells
    given (no defaults): ``{raw: true}`` alone is a record whose cells are all empty.
    ``extra_columns: {table: [column, ...]}`` allows columns the contract does not list.
Expectations (always the *complete* output of the sweep for the case)
    ``entitlements``: ``{person, policy, amount}`` plus ``mode`` (default: the policy's mode)
    and ``held`` (default ``false``); ``amount`` is the exact 2-decimal string.
    ``alerts``: ``{person, kind, due}`` plus ``policy`` (default empty).
    ``quarantine`` (default: none): ``{table, row, person, field}``; ``person`` omitted means
    an empty id_no, ``field`` omitted means any field.
    ``error``: the sweep must raise, with each listed text in the message.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from benefits.idcard import is_valid, make_id
from benefits.schema import TABLES

if TYPE_CHECKING:
    from benefits.rulebook import RulePack

REGION = "330106"
COMMUNITY = "330106001"
DEFAULT_BIRTH = dt.date(1980, 6, 15)
DEFAULT_OTHER_BIRTH = dt.date(1975, 6, 15)
HANDLE = re.compile(r"^[A-Z][A-Z0-9_]*$")
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

NAMES = (
    "王芳", "李娜", "张伟", "刘洋", "陈静", "杨磊", "赵敏", "黄勇", "周杰", "吴霞",
    "徐明", "孙丽", "胡斌", "朱琳", "高翔", "林峰", "何平", "郭靖", "马骏", "罗琴",
)  # fmt: skip

CASE_KEYS = {
    "name", "month", "note", "ambiguity", "persons", "others", "expect", "extra_columns",
    "parameters",
}  # fmt: skip
PERSON_EXTRA_KEYS = {"id", "seq", "household", "father", "mother", "bank"}
ID_COLUMNS = {"id_no", "father_id_no", "mother_id_no"}
TABLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "deaths": {"source": "police"},
    "disability_certificates": {"status": "valid"},
    "care_assessments": {"institution_resident": False},
    "bank_accounts": {"financial_active": True, "status": "open"},
}

Entitlement = tuple[str, str, str, str, bool]  # id_no, policy_id, mode, amount, held
Alert = tuple[str, str, str, str]  # id_no, kind, policy_id, due_date
Quarantine = tuple[str, int, str, str | None]  # table, row, id_no, field (None: any)


class CaseError(ValueError):
    """A case file that cannot be read as written."""


@dataclass(frozen=True)
class Vocabulary:
    """What a case may name: each policy's mode (the default of an expected entitlement's
    ``mode``) and the alert kinds."""

    modes: Mapping[str, str]
    alert_kinds: frozenset[str]

    @classmethod
    def of_pack(cls, pack: RulePack) -> Vocabulary:
        """The policies and alert kinds of a rule pack."""
        return cls({p.id: p.mode for p in pack.policies}, frozenset(a.kind for a in pack.alerts))


@dataclass(frozen=True)
class Case:
    """One case of one file."""

    path: Path
    group: str  # the file's policy / alert kind / topic
    spec: dict[str, Any]
    root: Path  # the folder the cases were loaded from (case ids are relative to it)

    @property
    def name(self) -> str:
        return str(self.spec.get("name", "?"))

    @property
    def month(self) -> str:
        return str(self.spec.get("month", ""))

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(self.root).as_posix()}::{self.name}"


def load_cases(root: Path) -> list[Case]:
    """Every case of every ``*.yaml`` under ``root`` (or the one file ``root``), in file and
    then listing order."""
    root = Path(root)
    if not root.exists():
        raise CaseError(f"{root}: no such file or folder of rule cases")
    paths = [root] if root.is_file() else sorted(root.rglob("*.yaml"))
    base = root.parent if root.is_file() else root
    cases: list[Case] = []
    for path in paths:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise CaseError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
        groups = [doc.get(k) for k in ("policy", "alert", "topic") if isinstance(doc, dict)]
        group = next((g for g in groups if g), None)
        if not isinstance(doc, dict) or not group or not isinstance(doc.get("cases"), list):
            raise CaseError(f"{path}: needs `policy:`, `alert:` or `topic:` and a `cases:` list")
        cases.extend(Case(path, str(group), spec, base) for spec in doc["cases"])
    return cases


# ----------------------------------------------------------------------------- building


@dataclass
class Built:
    """A case turned into extract rows and exact expectations."""

    case: Case
    ids: dict[str, str] = field(default_factory=dict)  # handle -> id_no
    person_household: dict[str, str] = field(default_factory=dict)  # id_no -> household_no
    rows: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)
    entitlements: Counter[Entitlement] = field(default_factory=Counter)
    alerts: Counter[Alert] = field(default_factory=Counter)
    quarantine: list[Quarantine] = field(default_factory=list)
    error: list[str] | None = None
    parameters: dict[str, str] = field(default_factory=dict)  # what-if values for every month

    def who(self, id_no: str) -> str:
        """The handle of an ID when it has one, else the ID itself."""
        for handle, value in self.ids.items():
            if value.upper() == id_no.upper():
                return handle
        return id_no


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _date(value: Any, what: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise CaseError(f"{what}: {value!r} is not a date") from exc


def _is_handle(value: Any) -> bool:
    return isinstance(value, str) and bool(HANDLE.match(value))


class _Builder:
    def __init__(self, case: Case, words: Vocabulary) -> None:
        self.case = case
        self.words = words
        self.spec = case.spec
        self.out = Built(case)
        self.order = 0  # people numbered in order of first mention (sequence, name)
        self.names: dict[str, str] = {}
        self.persons_first: dict[str, dict[str, Any]] = {}

    def fail(self, message: str) -> CaseError:
        return CaseError(f"{self.case.id}: {message}")

    # ---- people

    def _new_id(self, handle: str, birth: dt.date, sex: str, seq: int | None) -> str:
        if handle in self.out.ids:
            raise self.fail(f"handle {handle} is defined twice")
        if sex not in ("M", "F"):
            raise self.fail(f"{handle}: sex must be M or F, got {sex!r}")
        if seq is None:
            seq = 10 + 2 * self.order + (1 if sex == "M" else 0)
        elif (seq % 2 == 1) != (sex == "M"):
            raise self.fail(f"{handle}: seq {seq} does not match sex {sex} (odd = male)")
        self.order += 1
        self.out.ids[handle] = make_id(REGION, birth, seq)
        return self.out.ids[handle]

    def ref(self, value: Any, as_father: bool = False) -> str:
        """An ID cell: a handle becomes its ID (made on first use), anything else is as given."""
        if not _is_handle(value):
            return _cell(value)
        if value not in self.out.ids:
            self._new_id(value, DEFAULT_OTHER_BIRTH, "M" if as_father else "F", None)
        return self.out.ids[value]

    def define_people(self) -> None:
        persons = self.spec.get("persons") or []
        if not isinstance(persons, list) or not persons:
            raise self.fail("`persons` must list at least one row")
        for row in persons:
            handle = row.get("id")
            if not _is_handle(handle):
                raise self.fail(f"persons row {row}: `id` must be an upper-case handle")
            if handle in self.persons_first:
                continue
            self.persons_first[handle] = row
            if row.get("id_no") is not None:
                self.out.ids[handle] = str(row["id_no"])
                self.order += 1
            else:
                birth = _date(row.get("birth_date", DEFAULT_BIRTH), f"{handle}.birth_date")
                self._new_id(handle, birth, str(row.get("sex", "F")), row.get("seq"))
            self.names[handle] = str(row.get("name", NAMES[(self.order - 1) % len(NAMES)]))
        for row in self.spec.get("others") or []:
            unknown = set(row) - {"id", "birth_date", "sex", "seq"}
            if unknown or not _is_handle(row.get("id")):
                raise self.fail(f"others row {row}: needs a handle `id`; unknown {unknown}")
            birth = _date(row.get("birth_date", DEFAULT_OTHER_BIRTH), f"{row['id']}.birth_date")
            self._new_id(row["id"], birth, str(row.get("sex", "F")), row.get("seq"))
        for row in persons:  # parents may be people not in the registry
            for key, column in (("father", "father_id_no"), ("mother", "mother_id_no")):
                for value in (row.get(key), row.get(column)):
                    self.ref(value, as_father=key == "father")

    # ---- tables

    def _allowed(self, table: str) -> set[str]:
        extra = (self.spec.get("extra_columns") or {}).get(table) or []
        return set(TABLES[table].names) | set(extra)

    def _add(self, table: str, cells: dict[str, str]) -> None:
        columns = self.out.columns.setdefault(table, list(TABLES[table].names))
        columns.extend(c for c in cells if c not in columns)
        self.out.rows.setdefault(table, []).append(cells)

    def persons_rows(self) -> list[dict[str, str]]:
        bank_listed = {self.ref(r.get("id_no")) for r in self.spec.get("bank_accounts") or [] if r}
        banks: list[dict[str, str]] = []
        seen: set[str] = set()
        for row in self.spec["persons"]:
            handle = row["id"]
            first = self.persons_first[handle]
            merged = {**first, **row} if handle in seen else dict(row)
            allowed = self._allowed("persons") | PERSON_EXTRA_KEYS
            if unknown := set(merged) - allowed:
                raise self.fail(f"persons row {handle}: unknown columns {sorted(unknown)}")
            id_no = self.out.ids[handle]
            household = merged.get("household", merged.get("household_no", f"H-{handle}"))
            cells = {
                "id_no": id_no,
                "name": self.names[handle] if "name" not in merged else _cell(merged["name"]),
                "sex": _cell(merged.get("sex", "F")),
                "birth_date": _cell(merged.get("birth_date", DEFAULT_BIRTH)),
                "household_no": _cell(household),
                "relation": _cell(merged.get("relation", "head")),
                "hukou_district": _cell(merged.get("hukou_district", REGION)),
                "hukou_community": _cell(merged.get("hukou_community", COMMUNITY)),
                "hukou_status": _cell(merged.get("hukou_status", "normal")),
                "moved_out_date": _cell(merged.get("moved_out_date")),
                "father_id_no": self.ref(merged.get("father", merged.get("father_id_no")), True),
                "mother_id_no": self.ref(merged.get("mother", merged.get("mother_id_no"))),
            }
            for key, value in merged.items():
                if key in self._allowed("persons") and key not in cells:
                    cells[key] = _cell(value)
            self._add("persons", cells)
            if handle in seen:
                continue
            seen.add(handle)
            self.out.person_household.setdefault(id_no.upper(), cells.get("household_no", ""))
            bank = merged.get("bank")
            if bank == "none" or id_no in bank_listed or not is_valid(id_no):
                continue
            if bank is not None and not isinstance(bank, dict):
                raise self.fail(f"persons row {handle}: `bank` must be `none` or a mapping")
            banks.append(self._bank_row({"id_no": handle, **(bank or {})}, len(banks) + 1))
        return banks

    def _bank_row(self, row: dict[str, Any], n: int) -> dict[str, str]:
        id_no = self.ref(row.get("id_no"))
        handle = row.get("id_no")
        name = self.names.get(handle, "") if isinstance(handle, str) else ""
        defaults = {"account_no": f"621700{n:010d}", "account_name": name}
        merged = {**TABLE_DEFAULTS["bank_accounts"], **defaults, **row}
        cells = {k: _cell(v) for k, v in merged.items()}
        cells["id_no"] = id_no
        return cells

    def table_rows(self, table: str, default_banks: list[dict[str, str]]) -> None:
        rows = self.spec.get(table) or []
        if table == "bank_accounts":
            for cells in default_banks:
                self._add(table, cells)
        for n, row in enumerate(rows, start=1):
            if not isinstance(row, dict):
                raise self.fail(f"{table} row {n}: must be a mapping")
            if unknown := set(row) - self._allowed(table) - {"raw"}:
                raise self.fail(f"{table} row {n}: unknown columns {sorted(unknown)}")
            if row.get("raw"):
                cells = {k: _cell(v) for k, v in row.items() if k != "raw"}
                for column in ID_COLUMNS & set(cells):
                    cells[column] = self.ref(row[column])
                self._add(table, cells)
                continue
            if table == "bank_accounts":
                self._add(table, self._bank_row(row, len(self.out.rows.get(table, [])) + 1))
                continue
            merged: dict[str, Any] = {**TABLE_DEFAULTS.get(table, {}), **row}
            if table == "disability_certificates":
                merged.setdefault("cert_no", f"CDPF-{n:03d}")
            if table == "assistance" and "household_no" not in merged:
                handle = row.get("id_no")
                first = self.persons_first.get(handle) if isinstance(handle, str) else None
                if first is None:
                    raise self.fail(f"assistance row {n}: give household_no (not in persons)")
                merged["household_no"] = first.get(
                    "household", first.get("household_no", f"H-{handle}")
                )
            cells = {k: _cell(v) for k, v in merged.items()}
            for column in ID_COLUMNS & set(cells):
                cells[column] = self.ref(merged[column])
            self._add(table, cells)

    # ---- expectations

    def person(self, value: Any, where: str) -> str:
        if _is_handle(value):
            if value not in self.out.ids:
                raise self.fail(f"{where}: unknown person handle {value}")
            return self.out.ids[value].upper()
        return _cell(value)

    def expectations(self) -> None:
        expect = self.spec.get("expect")
        if not isinstance(expect, dict):
            raise self.fail("`expect` is required")
        if unknown := set(expect) - {"entitlements", "alerts", "quarantine", "error"}:
            raise self.fail(f"expect: unknown keys {sorted(unknown)}")
        if "error" in expect:
            self.out.error = [str(x) for x in expect["error"]]
            return
        for row in expect.get("entitlements") or []:
            if unknown := set(row) - {"person", "policy", "amount", "mode", "held"}:
                raise self.fail(f"expected entitlement {row}: unknown keys {sorted(unknown)}")
            policy = row.get("policy")
            if policy not in self.words.modes:
                raise self.fail(f"expected entitlement {row}: unknown policy {policy!r}")
            amount = row.get("amount")
            if isinstance(amount, str):
                if not re.fullmatch(r"\d+\.\d\d", amount):
                    raise self.fail(f"expected entitlement {row}: amount must look like 60.00")
            else:
                amount = f"{Decimal(str(amount)):.2f}"
            self.out.entitlements[
                (
                    self.person(row.get("person"), "expected entitlement"),
                    policy,
                    row.get("mode", self.words.modes[policy]),
                    amount,
                    bool(row.get("held", False)),
                )
            ] += 1
        for row in expect.get("alerts") or []:
            if unknown := set(row) - {"person", "kind", "policy", "due"}:
                raise self.fail(f"expected alert {row}: unknown keys {sorted(unknown)}")
            if row.get("kind") not in self.words.alert_kinds:
                raise self.fail(f"expected alert {row}: unknown kind {row.get('kind')!r}")
            policy = row.get("policy") or ""
            if policy and policy not in self.words.modes:
                raise self.fail(f"expected alert {row}: unknown policy {policy!r}")
            due = _date(row.get("due"), f"expected alert {row}").isoformat()
            self.out.alerts[
                (self.person(row.get("person"), "expected alert"), row["kind"], policy, due)
            ] += 1
        for row in expect.get("quarantine") or []:
            if unknown := set(row) - {"table", "row", "person", "field"}:
                raise self.fail(f"expected quarantine {row}: unknown keys {sorted(unknown)}")
            if row.get("table") not in TABLES or not isinstance(row.get("row"), int):
                raise self.fail(f"expected quarantine {row}: needs a known table and a row number")
            self.out.quarantine.append(
                (
                    row["table"],
                    row["row"],
                    self.person(row.get("person"), "quarantine"),
                    row.get("field"),
                )
            )

    def build(self) -> Built:
        if unknown := set(self.spec) - CASE_KEYS - set(TABLES):
            raise self.fail(f"unknown keys {sorted(unknown)}")
        if not MONTH.match(self.case.month):
            raise self.fail(f"month must look like 2025-01, got {self.case.month!r}")
        params = self.spec.get("parameters") or {}
        if not isinstance(params, dict):
            raise self.fail("parameters must map parameter names to values")
        self.out.parameters = {str(k): str(v) for k, v in params.items()}
        self.define_people()
        banks = self.persons_rows()
        for table in TABLES:
            if table != "persons":
                self.table_rows(table, banks)
        self.expectations()
        return self.out


def build(case: Case, words: Vocabulary) -> Built:
    """Extract rows and exact expectations of one case."""
    if not isinstance(case.spec, dict):
        raise CaseError(f"{case.path}: each entry of `cases:` must be a mapping")
    return _Builder(case, words).build()


def write_extracts(built: Built, folder: Path) -> None:
    """One UTF-8 CSV per table that has rows (absent tables are treated as empty)."""
    for table, rows in built.rows.items():
        columns = built.columns[table]
        with (folder / f"{table}.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            writer.writerows([[row.get(c, "") for c in columns] for row in rows])


# ----------------------------------------------------------------------------- comparing


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _amount(value: Any) -> str:
    if isinstance(value, str) or value is None:
        return _text(value)
    return f"{Decimal(str(value)):.2f}"


def _records(frame: Any, columns: tuple[str, ...], what: str) -> list[dict[str, Any]]:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AssertionError(f"result.{what} lacks columns {missing}; has {frame.columns}")
    return list(frame.select(list(columns)).iter_rows(named=True))


def compare(built: Built, result: Any) -> list[str]:
    """Readable differences between the expectations and a sweep result (empty: all good)."""
    problems: list[str] = []
    month = built.case.month

    ent_rows = _records(
        result.entitlements,
        ("id_no", "household_no", "policy_id", "month", "mode", "amount", "held"),
        "entitlements",
    )
    actual_ent: Counter[Entitlement] = Counter(
        (
            _text(r["id_no"]),
            _text(r["policy_id"]),
            _text(r["mode"]),
            _amount(r["amount"]),
            bool(r["held"]),
        )
        for r in ent_rows
    )
    problems += _diff(
        "entitlements", built.entitlements, actual_ent,
        lambda e: f"{built.who(e[0])}  {e[1]}  {e[2]}  {e[3]}  held={str(e[4]).lower()}",
    )  # fmt: skip
    for r in ent_rows:
        id_no = _text(r["id_no"])
        if _text(r["month"]) != month:
            problems.append(f"entitlement of {built.who(id_no)} has month {r['month']!r}")
        household = built.person_household.get(id_no)
        if household is not None and _text(r["household_no"]) != household:
            problems.append(
                f"entitlement of {built.who(id_no)} {r['policy_id']} has household_no "
                f"{r['household_no']!r}, persons says {household!r}"
            )

    alert_rows = _records(
        result.alerts, ("id_no", "kind", "policy_id", "due_date", "message"), "alerts"
    )
    actual_alerts: Counter[Alert] = Counter(
        (_text(r["id_no"]), _text(r["kind"]), _text(r["policy_id"]), _text(r["due_date"]))
        for r in alert_rows
    )
    problems += _diff(
        "alerts", built.alerts, actual_alerts,
        lambda a: f"{built.who(a[0])}  {a[1]}  policy={a[2] or '-'}  due {a[3]}",
    )  # fmt: skip
    problems += [
        f"alert {r['kind']} of {built.who(_text(r['id_no']))} has no message"
        for r in alert_rows
        if not _text(r["message"]).strip()
    ]

    q_rows = _records(result.quarantine, ("table", "row", "id_no", "field", "reason"), "quarantine")
    actual_q = [
        (_text(r["table"]), int(r["row"]), _text(r["id_no"]), _text(r["field"])) for r in q_rows
    ]
    unmatched = list(actual_q)
    for exp in built.quarantine:
        hit = next(
            (a for a in unmatched if a[:3] == exp[:3] and (exp[3] is None or a[3] == exp[3])), None
        )
        if hit is None:
            problems.append(f"quarantine missing:    {_q(exp, built)}")
        else:
            unmatched.remove(hit)
    for a in unmatched:
        reason = next(_text(r["reason"]) for r in q_rows if (r["table"], int(r["row"])) == a[:2])
        problems.append(f"quarantine unexpected: {_q(a, built)}  ({reason})")
    return problems


def _q(row: Quarantine, built: Built) -> str:
    return f"{row[0]} row {row[1]} id_no={built.who(row[2]) or '-'} field={row[3] or '*'}"


def _diff(what: str, expected: Counter[Any], actual: Counter[Any], show: Any) -> list[str]:
    lines = [f"{what} missing:    {show(k)}" for k in sorted((expected - actual).elements())]
    lines += [f"{what} unexpected: {show(k)}" for k in sorted((actual - expected).elements())]
    return lines


def describe(built: Built) -> str:
    """The case's people and notes, for a failure message."""
    spec = built.case.spec
    lines = [f"case {built.case.id}", f"month {built.case.month}"]
    lines += [f"  {k}: {spec[k]}" for k in ("note", "ambiguity") if spec.get(k)]
    lines += [
        f"  {handle:<10} {id_no}  household {built.person_household.get(id_no.upper(), '-')}"
        for handle, id_no in built.ids.items()
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- running


@dataclass
class CaseResult:
    """The outcome of one case: no problems means it passed."""

    case: Case
    problems: list[str]
    built: Built | None = None

    @property
    def passed(self) -> bool:
        return not self.problems


def run_case(pack: RulePack, case: Case, words: Vocabulary | None = None) -> CaseResult:
    """Write the case's extracts to a temporary folder, sweep its month with `pack` (with the
    case's what-if parameters, if any) and compare; every failure is a readable problem."""
    import tempfile

    from benefits.sweep import run_sweep

    try:
        built = build(case, words or Vocabulary.of_pack(pack))
    except CaseError as exc:
        return CaseResult(case, [f"the case cannot be read: {exc}"])
    with tempfile.TemporaryDirectory(prefix="benefits-case-") as tmp:
        write_extracts(built, Path(tmp))
        try:
            used = pack.with_parameters(built.parameters) if built.parameters else pack
            result = run_sweep(Path(tmp), case.month, out=None, pack=used, write_traces=False)
        except Exception as exc:  # any engine error is the case's outcome
            message = " ".join(str(exc).split())
            if built.error is None:
                return CaseResult(case, [f"the sweep failed: {message}"], built)
            missing = [text for text in built.error if text not in str(exc)]
            return CaseResult(
                case, [f"error {message!r} does not mention {m!r}" for m in missing], built
            )
    if built.error is not None:
        return CaseResult(case, [f"expected an error mentioning {built.error}, none raised"], built)
    return CaseResult(case, compare(built, result), built)


def run_cases(pack: RulePack, cases: list[Case]) -> list[CaseResult]:
    """Every case against one pack, in order."""
    words = Vocabulary.of_pack(pack)
    return [run_case(pack, case, words) for case in cases]
