"""The sweep says what each alert is about: rule_id, party, subject and facts fingerprint.

The columns follow the data contract's in alerts.csv and alerts.parquet; the inbox keys an
alert across months by them (tests/web/test_web_alert_carryover.py), so they must not depend
on a message's wording nor on the month.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from benefits.rulebook import DEFAULT_RULES, load_pack
from benefits.sweep import run_sweep

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "datasets" / "sample"
CONTRACT = ["id_no", "kind", "policy_id", "due_date", "message"]
IDENTITY = ["rule_id", "party", "subject", "fingerprint"]


def sha(facts: dict[str, str]) -> str:
    """SHA-256 of canonical JSON (sorted keys, UTF-8, no spaces), computed independently."""
    text = json.dumps(facts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_alerts(out: Path) -> pl.DataFrame:
    return pl.read_csv(out / "alerts.csv", infer_schema=False).fill_null("")


@pytest.fixture(scope="module")
def sample_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("alertid") / "out"
    run_sweep(SAMPLE, "2025-01", out=out, write_traces=False)
    return out


def test_alerts_files_carry_rule_party_subject_and_fingerprint(sample_out: Path) -> None:
    alerts = read_alerts(sample_out)
    assert alerts.columns == CONTRACT + IDENTITY
    parquet = pl.read_parquet(sample_out / "alerts.parquet")
    assert parquet.columns == CONTRACT + IDENTITY
    assert parquet.select(IDENTITY).fill_null("").equals(alerts.select(IDENTITY))
    rules = {a.id: a for a in load_pack().alerts}
    for row in alerts.iter_rows(named=True):
        rule = rules[row["rule_id"]]
        assert (row["kind"], row["policy_id"]) == (rule.kind, rule.policy or ""), row
        assert re.fullmatch(r"[0-9a-f]{64}", row["fingerprint"]), row
        if rule.one_per:  # once per household: the household, named in the message
            assert row["party"] != row["id_no"] and f"household {row['party']} " in row["message"]
        else:
            assert row["party"] == row["id_no"], row
        if rule.due == "month_start":
            assert row["subject"] == "" and row["due_date"] == "2025-01-01", row
        else:
            assert row["subject"] == row["due_date"] != "", row
    # the sample raises alerts of most rules, each rule of a kind under its own id
    assert {"dibao_discovery_lead", "cert_expiring", "account_problem", "dibao_review_due",
            "dibian_review_due", "identity_conflict", "death_stop"} <= set(alerts["rule_id"])


def test_the_fingerprint_is_of_the_facts_reported_without_row_numbers_or_month(
    sample_out: Path,
) -> None:
    alerts = read_alerts(sample_out)
    account = alerts.filter(pl.col("rule_id") == "account_problem")
    assert account.height
    for row in account.iter_rows(named=True):
        issue = re.search(r"account problem \((\w+)\)", row["message"])
        assert issue is not None
        assert row["fingerprint"] == sha({"account_issue": issue.group(1)})
    # an identity conflict's facts: the table, the problem and the reason — not the row
    quarantine = pl.read_csv(sample_out / "quarantine.csv", infer_schema=False).fill_null("")
    conflicts = alerts.filter(pl.col("rule_id") == "identity_conflict")
    assert conflicts.height
    checked = 0
    for row in conflicts.iter_rows(named=True):
        where = re.match(r"(\w+) 第 (\d+) 行", row["message"])
        assert where is not None
        table, number = where.groups()
        source = quarantine.filter(
            (pl.col("table") == table) & (pl.col("row") == number) & (pl.col("field") == "id_no")
        )
        if source.height != 1:
            continue
        issue = re.search(r"identity problem \((\w+)\)$", row["message"])
        assert issue is not None
        reason = source["reason"][0]
        assert row["fingerprint"] == sha(
            {"table": table, "identity_issue": issue.group(1), "reason": reason}
        ), row
        checked += 1
    assert checked
    no_facts = alerts.filter(pl.col("rule_id") == "death_stop")  # reports only its due date
    assert no_facts.height and set(no_facts["fingerprint"]) == {sha({})}


def test_a_reworded_rule_keeps_its_alerts_identity(sample_out: Path, tmp_path: Path) -> None:
    """Relabelling a rule and rewording its message changes the messages, not the identity."""
    rules = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES, rules)
    book = yaml.safe_load((rules / "alerts.yaml").read_text(encoding="utf-8"))
    for a in book["alerts"]:
        if a["id"] == "account_problem":
            a["label"]["en"] = "payment held: the bank account needs fixing"
            a["message"] = "Bank account ({account_issue}) — payment held, 账户问题"
    (rules / "alerts.yaml").write_text(yaml.safe_dump(book, allow_unicode=True), "utf-8")
    out = tmp_path / "out"
    run_sweep(SAMPLE, "2025-01", out=out, rules=rules, write_traces=False)
    before, after = read_alerts(sample_out), read_alerts(out)
    assert after.select(["id_no", "kind", *IDENTITY]).equals(
        before.select(["id_no", "kind", *IDENTITY])
    )
    reworded = after.filter(pl.col("rule_id") == "account_problem")["message"]
    assert reworded.str.starts_with("Bank account (").all()


def test_identity_columns_are_deterministic(sample_out: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    run_sweep(SAMPLE, "2025-01", out=again, write_traces=False)
    for name in ("alerts.csv", "alerts.parquet"):
        assert (again / name).read_bytes() == (sample_out / name).read_bytes(), name


def test_fingerprints_of_a_column_are_each_rows_fingerprint() -> None:
    """The vectorised fingerprints (Polars writes the JSON) equal the scalar rule's, whatever
    the texts: quotes, backslashes, every control character, DEL, CJK and astral characters,
    empty texts; keys given in any order."""
    from benefits.alertid import fingerprint
    from benefits.alerting import _fingerprints

    odd = [chr(c) for c in range(0x80)] + ["张三", "\u2028", "😀", "", 'a"b\\c', "{}"]
    rows = [{"z_pci": text, "age": f"{i}", "a": odd[-i - 1]} for i, text in enumerate(odd)]
    texts = pl.DataFrame(rows).select(pl.struct("z_pci", "age", "a")).to_series()
    assert _fingerprints(texts).to_list() == [fingerprint(r) for r in rows]
    assert fingerprint(rows[0]) == sha(rows[0])
