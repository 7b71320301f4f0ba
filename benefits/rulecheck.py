"""`benefits rules check`: validate a rule pack and warn about what a reviewer wants to see.

A pack that does not load (or whose policies do not compile for a month of the horizon) is an
error naming the file, the rule and the field. A pack that loads may still deserve a look:

``parameter-missing``
    a parameter that has changed before (two or more values) whose next value is due within
    the horizon — its last effective date plus the longest gap it ever had — with none
    scheduled;
``policy-without-case``
    a policy that no rule case covers (a case file ``policy: <id>``, or a case expecting an
    entitlement of it);
``exclusion-never-applies``
    an exclusion between two policies that are never in force in the same month, or that are
    declared mutually exclusive by their own conditions, or whose ``when`` reads only
    parameters and is false in every month up to the horizon.

Exit codes of the command: 0 the pack loads with no warning, 1 it loads with warnings, 2 it
does not load (or an argument is wrong).

Example:
    >>> report = check_folder(default_rules_folder(), month=BenefitMonth.parse("2025-01"))
    >>> report.error is None
    True
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from benefits.errors import BenefitsError
from benefits.period import BenefitMonth
from benefits.rulebook import Exclusion, RulePack, default_rules_folder, load_pack

DEFAULT_HORIZON = 12
CONSTANTS = {"month_start", "month_end", "prev_month_start", "prev_month_end", "month_number",
             "district_code"}  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """One warning: a stable code, where (file and rule) and the message."""

    code: str
    where: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "where": self.where, "message": self.message}


@dataclass
class CheckReport:
    """What `rules check` found in one pack folder."""

    folder: Path
    month: BenefitMonth
    horizon: int
    error: str | None = None
    warnings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pack: RulePack | None = None

    @property
    def exit_code(self) -> int:
        return 2 if self.error else (1 if self.warnings else 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "month": self.month.label,
            "horizon_months": self.horizon,
            "version": self.pack.version if self.pack else None,
            "hash": self.pack.digest if self.pack else None,
            "error": self.error,
            "warnings": [w.as_dict() for w in self.warnings],
            "notes": self.notes,
            "exit_code": self.exit_code,
        }


def default_cases_folder(folder: Path) -> Path | None:
    """The rule cases to hold a pack to: ``<pack>/cases`` if present, else the clone's
    ``tests/cases`` (None when neither exists, e.g. in an installed package)."""
    own = Path(folder) / "cases"
    if own.is_dir():
        return own
    clone = Path(__file__).resolve().parent.parent / "tests" / "cases"
    return clone if clone.is_dir() else None


def check_folder(
    folder: Path | None = None,
    cases: Path | None = None,
    *,
    month: BenefitMonth,
    horizon: int = DEFAULT_HORIZON,
) -> CheckReport:
    """Load and check the pack in `folder` for the months `month` … `month + horizon`."""
    folder = Path(folder or default_rules_folder())
    report = CheckReport(folder, month, horizon)
    try:
        pack = load_pack(folder)
        compile_months(pack, month, horizon)
    except BenefitsError as exc:
        report.error = " ".join(str(exc).split())
        return report
    except OSError as exc:
        report.error = f"{exc.filename or folder}: cannot be read: {exc.strerror or exc}"
        return report
    report.pack = pack
    report.warnings += missing_parameters(pack, month, horizon)
    cases = cases if cases is not None else default_cases_folder(folder)
    if cases is None:
        report.notes.append("no rule cases found (give --cases): policies not checked for cases")
    else:
        try:
            report.warnings += policies_without_case(pack, Path(cases))
        except (OSError, ValueError, yaml.YAMLError) as exc:
            report.error = f"{cases}: rule cases cannot be read: {' '.join(str(exc).split())}"
            return report
    report.warnings += exclusions_never_applying(pack, month, horizon)
    return report


def compile_months(pack: RulePack, month: BenefitMonth, horizon: int) -> None:
    """Compile every policy in force for each month of the horizon (type errors and missing
    parameter values surface here as errors naming the policy file and field)."""
    from benefits.compiled import compile_policy, month_scope
    from benefits.errors import ParameterError
    from benefits.months import earliest_month

    first = earliest_month(pack)
    if first > month:
        name = max(pack.parameters, key=lambda n: (min(pack.parameters[n].values), n))
        since = min(pack.parameters[name].values)
        raise ParameterError(
            f"{pack.folder / 'parameters'}: parameter '{name}' has no value before "
            f"{since.isoformat()}, so the pack cannot decide {month.label} … "
            f"{first.previous.label} (it can from {first.label})"
        )
    for k in range(horizon + 1):
        m = month.shift(k)
        scope, shown = month_scope(pack, m)
        for policy in pack.policies_for(m):
            try:
                compile_policy(pack, policy, scope, shown, m)
            except ParameterError as exc:
                raise ParameterError(
                    f"{pack.folder / policy.source_file}: policy '{policy.id}' cannot be decided "
                    f"for {m.label}: {exc}"
                ) from exc


def _month_end(month: BenefitMonth, horizon: int) -> dt.date:
    return month.shift(horizon).end


def missing_parameters(pack: RulePack, month: BenefitMonth, horizon: int) -> list[Finding]:
    """Parameters that changed before whose next value is due within the horizon but absent."""
    found: list[Finding] = []
    until = _month_end(month, horizon)
    files = parameter_files(pack)
    for name, param in pack.parameters.items():
        days = sorted(param.values)
        if len(days) < 2:
            continue
        gap = max(b - a for a, b in itertools.pairwise(days))
        due = days[-1] + gap
        if due > until:
            continue
        where = f"{files.get(name, 'parameters')}: parameter '{name}' ({param.label.text()})"
        was = "was due by" if due < month.start else "is due by"
        found.append(
            Finding(
                "parameter-missing",
                where,
                f"last value {param.values[days[-1]]} from {days[-1].isoformat()}; the longest gap "
                f"between its values was {gap.days} days, so a new value {was} "
                f"{due.isoformat()}, and none is scheduled up to {until.isoformat()} "
                f"({month.label} + {horizon} months)",
            )
        )
    return found


def parameter_files(pack: RulePack) -> dict[str, str]:
    """Parameter name → the file that defines it (relative to the pack folder)."""
    out: dict[str, str] = {}
    for path in sorted((Path(pack.folder) / "parameters").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for name in doc if isinstance(doc, dict) else ():
            out.setdefault(str(name), path.relative_to(pack.folder).as_posix())
    return out


def covered_policies(cases: Path) -> set[str]:
    """Policies named by a case file (`policy:`) or by an expected entitlement."""
    covered: set[str] = set()
    paths = [cases] if cases.is_file() else sorted(cases.rglob("*.yaml"))
    if not cases.exists():
        raise OSError(2, "no such file or folder", str(cases))
    for path in paths:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict):
            continue
        if isinstance(doc.get("policy"), str):
            covered.add(doc["policy"])
        for case in doc.get("cases") or []:
            expect = case.get("expect") if isinstance(case, dict) else None
            rows = expect.get("entitlements") if isinstance(expect, dict) else None
            for row in rows or []:
                if isinstance(row, dict) and isinstance(row.get("policy"), str):
                    covered.add(row["policy"])
    return covered


def policies_without_case(pack: RulePack, cases: Path) -> list[Finding]:
    covered = covered_policies(cases)
    return [
        Finding(
            "policy-without-case",
            f"{p.source_file}: policy '{p.id}' ({p.name.text()})",
            f"no rule case under {cases} names this policy or expects an entitlement of it",
        )
        for p in pack.policies
        if p.id not in covered
    ]


def _months(pack: RulePack, policy_id: str) -> tuple[BenefitMonth, BenefitMonth | None]:
    p = pack.by_id[policy_id]
    first = BenefitMonth(p.valid_from.year, p.valid_from.month)
    last = BenefitMonth(p.valid_to.year, p.valid_to.month) if p.valid_to else None
    return first, last


def _never_together(pack: RulePack, e: Exclusion) -> str | None:
    (a_first, a_last), (b_first, b_last) = (_months(pack, pid) for pid in e.between)
    if (a_last is not None and a_last < b_first) or (b_last is not None and b_last < a_first):
        a, b = e.between
        return f"'{a}' and '{b}' are never in force in the same month"
    return None


def _disjoint_by_conditions(pack: RulePack, e: Exclusion) -> str | None:
    for pair in pack.exclusions.mutually_exclusive:
        if frozenset(pair.policies) == frozenset(e.between) and pair.resolved_by != "exclusion":
            return (
                f"the pair is declared mutually exclusive by its conditions "
                f"({pair.resolved_by}), so both are never candidates together"
            )
    return None


def _false_in_every_month(
    pack: RulePack, e: Exclusion, month: BenefitMonth, horizon: int
) -> str | None:
    from benefits.compiled import _bool_expr, month_scope
    from benefits.expr import compile_expr, names_in
    from benefits.months import earliest_month

    if e.when is None:
        return None
    names = set(names_in(e.when))
    if not names <= set(pack.parameters) | CONSTANTS:
        return None  # reads facts or amounts: only a sweep can tell
    first = earliest_month(pack)
    last = month.shift(horizon)
    m = first
    while m <= last:
        scope, _ = month_scope(pack, m)
        value = compile_expr(e.when, scope)
        holds = bool(value.const) if value.is_const else bool(pl.select(_bool_expr(value)).item())
        if holds:
            return None
        m = m.shift(1)
    return f"its condition '{e.when}' is false in every month from {first.label} to {last.label}"


def exclusions_never_applying(pack: RulePack, month: BenefitMonth, horizon: int) -> list[Finding]:
    found: list[Finding] = []
    for e in pack.exclusions.exclusions:
        reason = (
            _never_together(pack, e)
            or _disjoint_by_conditions(pack, e)
            or _false_in_every_month(pack, e, month, horizon)
        )
        if reason:
            found.append(
                Finding(
                    "exclusion-never-applies",
                    f"exclusions.yaml: exclusion '{e.id}' ({e.label.en})",
                    f"can never apply: {reason}",
                )
            )
    return found
