"""Alerts keep one identity across months (issue 11, point 5) and each rule its own label (6).

The three-month tests run on SQLite and on PostgreSQL (a fresh schema per test, see
tests/postgres.py): the inbox is filled from sweep folders whose alerts.csv is written here, so
every month's facts are known exactly.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from benefits.ledger.audit import AuditEntry
from benefits.ledger.sealed import fingerprint_index, party_index
from benefits.web.context import WebContext
from benefits.web.models import WebAlert, WebAlertEvent
from benefits.web.services import alerts as alert_service
from benefits.web.services import dashboard as dashboard_service
from benefits.web.services import runs as run_service
from benefits.web.settings import WebSettings
from tests.ledger.ledger_helpers import person_id, town, write_sweep
from tests.postgres import BACKENDS, database_url
from tests.web.conftest import SAMPLE, Seeded

P1, P2, P3, P4, P5 = (person_id(n) for n in range(1, 6))
ACCOUNT = "账户问题（{issue}），本月发放暂缓 / account problem ({issue}): payment held"
INCOME = ("家庭人均收入 {pci} 不低于低保标准，本月不发放 / per-capita income {pci} is not below "
          "the dibao standard: nothing paid")  # fmt: skip
REVIEW = "低保复核日期 {due} / dibao status review due on {due}"
NO_MEANS_TEST = ("低保家庭 H7 无经济状况核对记录，暂停发放，请开展核对 / dibao household H7 has "
                 "no means test: not paid until assessed")  # fmt: skip
LEAD = ("家庭 H9 人均收入 900.00、人均财产 1000.00 低于低保条件但无人享受低保，请走访核实 / "
        "household H9 may qualify for dibao")  # fmt: skip


@pytest.fixture(params=BACKENDS)
def ctx(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None, pg_admin: object
) -> Iterator[WebContext]:
    """A web context on an initialised ledger: a SQLite file, or a fresh PostgreSQL schema."""
    urls = database_url(request, tmp_path, pg_base_url, pg_admin, "web_t")
    url = next(urls)
    context = WebContext(
        WebSettings(db=url, data=SAMPLE, work=tmp_path / "work", secret_key="test-secret-key")
    )
    context.ledger.init(by="admin")
    yield context
    context.ledger.close()
    for _ in urls:  # drops the PostgreSQL schema
        pass


OLD_COLUMNS = ["id_no", "kind", "policy_id", "due_date", "message"]  # runs swept before rule ids


def import_month(
    ctx: WebContext, folder: Path, month: str, rows: list[tuple[str, ...]],
    columns: list[str] = OLD_COLUMNS,
) -> int:  # fmt: skip
    """Record a sweep of `month` whose alerts.csv holds `rows`, and fill the inbox from it."""
    out = write_sweep(folder / month, month, town(3), persons_sha=month.replace("-", "") * 8)
    with open(out / "alerts.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)
    run = run_service.get_run(ctx, ctx.ledger.import_run(out, by="officer").run_id)
    alert_service.import_alerts(ctx, run)
    return run.id


def month_rows(month: str, *, issue: str = "closed", pci: str = "1400.00",
               lead_on: str = P4) -> list[tuple[str, ...]]:  # fmt: skip
    """The alerts of one month: the same situations, each due on the month's first day."""
    start = f"{month}-01"
    return [
        (P1, "account_problem", "", start, ACCOUNT.format(issue=issue)),
        (P2, "income_over_threshold", "dibao_allowance", start, INCOME.format(pci=pci)),
        (P3, "review_due", "dibao_allowance", "2024-12-20", REVIEW.format(due="2024-12-20")),
        (P3, "review_due", "dibao_allowance", start, NO_MEANS_TEST),
        (lead_on, "discovery_lead", "dibao_allowance", start, LEAD),
    ]


def stored(ctx: WebContext) -> list[WebAlert]:
    with ctx.db.snapshot() as s:
        return list(s.execute(select(WebAlert).order_by(WebAlert.id)).scalars())


def one(alerts: list[WebAlert], kind: str, *, due: str | None = None) -> WebAlert:
    found = [a for a in alerts if a.kind == kind and (due is None or a.due_date == due)]
    assert len(found) == 1, [(a.kind, a.due_date, a.last_month) for a in found]
    return found[0]


def test_recurring_alerts_carry_over_three_months_with_a_resolution(
    ctx: WebContext, tmp_path: Path
) -> None:
    import_month(ctx, tmp_path, "2025-01", month_rows("2025-01"))
    jan = stored(ctx)
    assert len(jan) == 5
    account = one(jan, "account_problem")
    income = one(jan, "income_over_threshold")
    # An officer resolves the account problem between January and February.
    alert_service.act(ctx, account.id, "resolve", by="officer", note="客户已更换账户")

    import_month(ctx, tmp_path, "2025-02", month_rows("2025-02", lead_on=P5))
    feb = stored(ctx)
    # The same situations found again update the alerts already there: no new rows.
    assert [a.id for a in feb] == [a.id for a in jan]
    account_feb = one(feb, "account_problem")
    assert account_feb.status == "resolved"  # same facts: the resolution carries over
    assert account_feb.last_month == "2025-02" and account_feb.due_date == "2025-02-01"
    income_feb = one(feb, "income_over_threshold")
    assert income_feb.status == "open" and income_feb.id == income.id
    assert (income_feb.first_month, income_feb.last_month, income_feb.months_open) == (
        "2025-01", "2025-02", 2)  # fmt: skip
    lead = one(feb, "discovery_lead")  # one lead per household: the head changed, not the alert
    assert lead.id_no == P5 and lead.party == party_index(ctx.db.keys, "H9")  # sealed inbox
    alert_service.act(ctx, income.id, "resolve", by="officer", note="收入已核实 / income checked")

    # March: the account problem is a different one; the income is the same.
    import_month(ctx, tmp_path, "2025-03", month_rows("2025-03", issue="name_mismatch"))
    mar = stored(ctx)
    assert [a.id for a in mar] == [a.id for a in jan]
    account_mar = one(mar, "account_problem")
    assert account_mar.status == "open" and account_mar.months_open == 1  # its facts changed
    assert "name_mismatch" in account_mar.message
    income_mar = one(mar, "income_over_threshold")
    assert income_mar.status == "resolved" and income_mar.last_month == "2025-03"
    review = one(mar, "review_due", due="2024-12-20")
    assert (review.status, review.first_month, review.months_open) == ("open", "2025-01", 3)
    assert one(mar, "discovery_lead").months_open == 3

    # The reopening is in the alert's history and in the audit chain, by the system.
    with ctx.db.snapshot() as s:
        events = list(
            s.execute(
                select(WebAlertEvent)
                .where(WebAlertEvent.alert_id == account.id)
                .order_by(WebAlertEvent.id)
            ).scalars()
        )
        audit = list(
            s.execute(select(AuditEntry).where(AuditEntry.action == "alert.reopen")).scalars()
        )
    assert [(e.actor, e.action) for e in events] == [("officer", "resolve"), ("system", "reopen")]
    assert events[-1].note and "2025-03" in events[-1].note
    assert len(audit) == 1 and audit[0].object_id == str(account.id)
    assert ctx.ledger.verify_audit().ok

    # Every month still shows its five alerts; the API answer says since when.
    for month in ("2025-01", "2025-02", "2025-03"):
        page = alert_service.list_alerts(ctx, alert_service.AlertFilter(month=month, status="all"))
        assert page["total"] == 5, month
    view = alert_service.alert_view(account_mar, "ref")
    assert (view["first_month"], view["last_month"], view["months_open"]) == (
        "2025-01", "2025-03", 1)  # fmt: skip


def test_a_resolved_alert_reopens_when_it_comes_back_after_a_month_without_it(
    ctx: WebContext, tmp_path: Path
) -> None:
    import_month(ctx, tmp_path, "2025-01", month_rows("2025-01")[:1])
    (account,) = stored(ctx)
    alert_service.act(ctx, account.id, "resolve", by="officer", note="账户已恢复 / account fixed")
    import_month(ctx, tmp_path, "2025-02", [])  # February: no account problem
    import_month(ctx, tmp_path, "2025-03", month_rows("2025-03")[:1])
    (again,) = stored(ctx)
    assert again.id == account.id and again.status == "open" and again.months_open == 1
    # An older month imported late does not touch the state, only the first month.
    import_month(ctx, tmp_path, "2024-12", month_rows("2024-12")[:1])
    (late,) = stored(ctx)
    assert (late.status, late.first_month, late.last_month) == ("open", "2024-12", "2025-03")


def test_each_rule_of_a_kind_is_counted_under_its_own_label(
    ctx: WebContext, tmp_path: Path
) -> None:
    dibian = ("家庭人均收入 3000.00 超过低边条件，本月不发放 / per-capita income 3000.00 fails "
              "the dibian test: nothing paid")  # fmt: skip
    rows = [
        *month_rows("2025-01"),
        (P4, "income_over_threshold", "dibian_living_subsidy", "2025-01-01", dibian),
    ]
    import_month(ctx, tmp_path, "2025-01", rows)
    labels = {(a["kind"], a["label_en"]): a["total"]
              for a in dashboard_service.dashboard(ctx, "2025-01")["alerts"]}  # fmt: skip
    assert labels == {
        ("account_problem", "bank account problem, payment held"): 1,
        ("income_over_threshold", "income at or above the dibao standard"): 1,
        ("income_over_threshold", "income above the dibian thresholds"): 1,
        ("review_due", "dibao review due"): 1,
        ("review_due", "dibao household without a means test"): 1,
        ("discovery_lead", "may qualify for dibao but not enrolled"): 1,
    }
    page = alert_service.list_alerts(ctx, alert_service.AlertFilter(kind="review_due"))
    labels_zh = sorted(a["label_zh"] for a in page["items"])
    assert labels_zh == ["低保家庭缺少经济状况核对", "低保待复核"]


def test_alerts_stored_before_the_upgrade_are_adopted(ctx: WebContext, tmp_path: Path) -> None:
    """Rows written under 0003 (identity = the sweep's key) carry on after 0004."""
    import_month(ctx, tmp_path, "2025-01", month_rows("2025-01"))
    alert_id = one(stored(ctx), "account_problem").id
    alert_service.act(ctx, alert_id, "resolve", by="officer", note="已处理 / done")
    ctx.ledger.db.downgrade("0003_cycle")
    ctx.ledger.db.migrate()
    with ctx.db.transaction() as s:
        row = s.execute(text("select rule, party, subject, fingerprint, months_open, status "
                             f"from web_alerts where id = {alert_id}")).one()  # fmt: skip
    assert tuple(row) == ("", party_index(ctx.db.keys, P1), "2025-01-01", "", 1, "resolved")
    import_month(ctx, tmp_path, "2025-02", month_rows("2025-02"))
    feb = stored(ctx)
    assert len(feb) == 5
    adopted = one(feb, "account_problem")
    assert (adopted.id, adopted.status, adopted.rule, adopted.subject, adopted.last_month) == (
        alert_id, "resolved", "account_problem", "", "2025-02")  # fmt: skip


def test_sweeping_the_next_month_of_the_sample_adds_no_alert_for_the_same_situation(
    seeded: Seeded,
) -> None:
    ctx = seeded.ctx
    officer = seeded.client("officer")
    before = {a.id: a for a in stored(ctx)}
    accounts = [a for a in before.values() if a.kind == "account_problem"]
    alert_service.act(ctx, accounts[0].id, "resolve", by="officer", note="已核实 / checked")
    run_service.start_sweep(ctx, "2025-02", by="officer")
    feb_run = run_service.latest_run(ctx, "2025-02")
    assert feb_run is not None
    with open(Path(feb_run.source) / "alerts.csv", encoding="utf-8") as fh:
        feb_csv = list(csv.DictReader(fh))
    after = stored(ctx)
    in_feb = [a for a in after if a.last_month == "2025-02"]
    assert len(in_feb) == len(feb_csv)
    carried = {a.id for a in in_feb} & set(before)
    recurring = [a for a in in_feb if a.kind in ("account_problem", "identity_conflict")]
    assert recurring and all(a.id in carried and a.first_month == "2025-01" for a in recurring)
    still = next(a for a in after if a.id == accounts[0].id)
    assert still.status == "resolved" and still.last_month == "2025-02"
    answer = officer.get(f"/api/v1/alerts/{recurring[-1].id}").json()
    assert (answer["first_month"], answer["last_month"], answer["months_open"]) == (
        "2025-01", "2025-02", 2)  # fmt: skip
    page = officer.get(f"/alerts/{recurring[-1].id}").text
    assert "months open" in page and "first seen" in page and "last seen" in page
    dash = officer.get("/api/v1/dashboard?month=2025-02").json()
    review_labels = {a["label_en"] for a in dash["alerts"] if a["kind"] == "review_due"}
    assert {"dibao review due", "dibian review due", "tekun review due"} <= review_labels


NEW_COLUMNS = [*OLD_COLUMNS, "rule_id", "party", "subject", "fingerprint"]


def sha(facts: dict[str, str]) -> str:
    """The fingerprint as the data contract defines it, computed here independently."""
    text = json.dumps(facts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def swept_rows(month: str, *, issue: str = "closed", pci: str = "1400.00",
               lead_on: str = P4) -> list[tuple[str, ...]]:  # fmt: skip
    """`month_rows` as a sweep with rule ids writes them: the identity columns after the rest."""
    extra = {
        "account_problem": ("account_problem", P1, "", sha({"account_issue": issue})),
        "income_over_threshold": ("dibao_income_over_standard", P2, "", sha({"hh_pci": pci})),
        "2024-12-20": ("dibao_review_due", P3, "2024-12-20", sha({})),
        "review_due": ("dibao_no_means_test", P3, "", sha({"household_no": "H7"})),
        "discovery_lead": ("dibao_discovery_lead", "H9", "",
                           sha({"household_no": "H9", "hh_pci": "900.00",
                                "hh_assets": "1000.00"})),
    }  # fmt: skip
    out = []
    for row in month_rows(month, issue=issue, pci=pci, lead_on=lead_on):
        key = row[3] if row[3] == "2024-12-20" else row[1]
        out.append((*row, *extra[key]))
    return out


def test_the_identity_comes_from_the_sweeps_columns_not_from_the_message(
    ctx: WebContext, tmp_path: Path
) -> None:
    """A rule whose message text was reworded keeps its alerts; only the facts reopen one."""
    import_month(ctx, tmp_path, "2025-01", swept_rows("2025-01"), NEW_COLUMNS)
    jan = stored(ctx)
    assert len(jan) == 5
    account = one(jan, "account_problem")
    assert (account.rule, account.party, account.subject) == (
        "account_problem", party_index(ctx.db.keys, P1), "")  # fmt: skip
    assert account.fingerprint == fingerprint_index(ctx.db.keys, sha({"account_issue": "closed"}))
    assert account.label_en == "bank account problem, payment held"
    alert_service.act(ctx, account.id, "resolve", by="officer", note="已处理 / done")
    # February's rule pack words every message differently: no template explains them now.
    reworded = [(*r[:4], f"reworded: {r[4]}", *r[5:]) for r in swept_rows("2025-02")]
    import_month(ctx, tmp_path, "2025-02", reworded, NEW_COLUMNS)
    feb = stored(ctx)
    assert [a.id for a in feb] == [a.id for a in jan]
    account_feb = one(feb, "account_problem")
    assert account_feb.status == "resolved" and account_feb.last_month == "2025-02"
    assert account_feb.message.startswith("reworded: ")
    # March: the sweep says the facts changed, whatever the message says.
    march = [(*r[:8], sha({"account_issue": "frozen"})) if r[1] == "account_problem" else r
             for r in reworded]  # fmt: skip
    import_month(ctx, tmp_path, "2025-03", march, NEW_COLUMNS)
    account_mar = one(stored(ctx), "account_problem")
    assert account_mar.id == account.id and account_mar.status == "open"
    assert account_mar.months_open == 1


def test_old_runs_and_new_runs_give_one_identity(ctx: WebContext, tmp_path: Path) -> None:
    """January swept before rule ids (message matching), February with them: same alerts,
    same fingerprints, so a resolution carries over."""
    import_month(ctx, tmp_path, "2025-01", month_rows("2025-01"))
    jan = stored(ctx)
    account = one(jan, "account_problem")
    assert account.fingerprint == fingerprint_index(ctx.db.keys, sha({"account_issue": "closed"}))
    assert one(jan, "discovery_lead").party == party_index(ctx.db.keys, "H9")
    alert_service.act(ctx, account.id, "resolve", by="officer", note="已处理 / done")
    import_month(ctx, tmp_path, "2025-02", swept_rows("2025-02", lead_on=P5), NEW_COLUMNS)
    feb = stored(ctx)
    assert [(a.id, a.rule, a.party, a.subject, a.fingerprint) for a in feb] == [
        (a.id, a.rule, a.party, a.subject, a.fingerprint) for a in jan
    ]
    assert one(feb, "account_problem").status == "resolved"
    assert all(a.months_open == 2 for a in feb if a.kind != "account_problem")


def test_alerts_keyed_by_label_and_household_prefix_are_found_again(
    ctx: WebContext, tmp_path: Path
) -> None:
    """An inbox filled when the key was the rule's English label and a household party was
    written ``household_no:H9`` carries on with the sweep's rule ids (migration 0008 indexed
    such a party without its prefix, as the inbox stores parties as their blind index)."""
    import_month(ctx, tmp_path, "2025-01", month_rows("2025-01"))
    with ctx.db.transaction() as s:
        for a in s.execute(select(WebAlert)).scalars():
            a.rule = a.label_en
            if a.kind == "discovery_lead":
                a.party = party_index(ctx.db.keys, "H9")
    import_month(ctx, tmp_path, "2025-02", swept_rows("2025-02"), NEW_COLUMNS)
    feb = stored(ctx)
    assert len(feb) == 5 and all(a.months_open == 2 for a in feb)
    assert one(feb, "discovery_lead").party == party_index(ctx.db.keys, "H9")
    assert one(feb, "review_due", due="2025-02-01").rule == "dibao_no_means_test"
