"""The reports a release's approver reads, made against the release in force.

A submitter may attach report files (``--diff-report``, ``--whatif-report``); otherwise
``benefits rules submit`` makes them here with the ``benefits rules diff`` and
``benefits whatif`` modules (:mod:`benefits.rulediff`, :mod:`benefits.whatif`) when this
installation has them. The diff needs no data; the what-if needs a month's delivery.

Example:
    >>> report = diff_report(ledger.db, Path("rules"), cache)     # doctest: +SKIP
    >>> report.kind, report.name                                  # doctest: +SKIP
    ('diff', 'rules-diff.md')
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from benefits.errors import BenefitsError
from benefits.ledger.db import Database
from benefits.ledger.errors import InvalidInput
from benefits.ledger.packs import Report, current_release, materialize


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _base_folder(db: Database, cache: Path) -> Path | None:
    with db.snapshot() as s:
        cur = current_release(s)
    return materialize(db, cur.id, cache) if cur is not None else None


def diff_report(db: Database, folder: Path, cache: Path) -> Report | None:
    """``benefits rules diff`` of the release in force → `folder`, as Markdown; None when
    there is no release in force yet or this installation has no rules diff."""
    rulediff = _module("benefits.rulediff")
    base = _base_folder(db, cache)
    if rulediff is None or base is None:
        return None
    from benefits.rulebook import load_pack

    try:
        diff = rulediff.diff_packs(load_pack(base), load_pack(Path(folder)))
    except BenefitsError as exc:
        raise InvalidInput(f"the rules diff against the release in force failed: {exc}") from exc
    return Report("diff", "rules-diff.md", diff.to_markdown().encode("utf-8"),
                  "benefits rules diff (release in force → submitted pack)")  # fmt: skip


def whatif_report(db: Database, folder: Path, data: Path, month: str, cache: Path) -> Report:
    """``benefits whatif`` of the release in force (else the default pack) against `folder`
    on the delivery `data` for `month`, as an HTML report."""
    whatif = _module("benefits.whatif")
    report = _module("benefits.whatifreport")
    if whatif is None or report is None:
        raise InvalidInput(
            "this installation has no `benefits whatif`; attach the what-if report with "
            "--whatif-report FILE"
        )
    from benefits.rulebook import load_pack

    base = _base_folder(db, cache)
    try:
        result = whatif.run_whatif(Path(data), month, load_pack(base), load_pack(Path(folder)))
        html = report.report_html(result)
    except BenefitsError as exc:
        raise InvalidInput(f"the what-if for {month} failed: {exc}") from exc
    data_bytes = html.encode("utf-8") if isinstance(html, str) else bytes(html)
    origin = f"benefits whatif --month {month} (release in force → submitted pack)"
    return Report("whatif", f"whatif-{month}.html", data_bytes, origin)
