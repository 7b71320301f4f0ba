"""The project's own documents: no link leaves the project, docs/rules.md is what the rule pack
generates, docs/data-contract.md states every table, column and quarantine code the code declares.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from benefits.cli import app
from benefits.ingest import REASONS
from benefits.rulebook import DEFAULT_RULES, load_pack
from benefits.rulesdoc import render_rules
from benefits.schema import TABLES
from benefits.sweep import ALERT_COLUMNS, ENTITLEMENT_COLUMNS, QUARANTINE_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".git", ".venv", "out", "artifacts", "__pycache__", ".pytest_cache", ".ruff_cache"}
TEXT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".toml", ".txt", ".html", ".cfg", ".ini", ""}
# built in pieces so that this file does not match itself
OUTSIDE = ("..", "/shared")
SPEC = ("shared", "/spec")


def project_files() -> list[Path]:
    """The files of the project: git's tracked files, or the tree when not a git checkout."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
        files = [ROOT / p for p in listed.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        files = [
            p
            for p in ROOT.rglob("*")
            if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(ROOT).parts)
        ]
    return [p for p in files if p.is_file() and p.suffix in TEXT_SUFFIXES]


def test_no_file_refers_to_the_shared_spec_outside_the_project() -> None:
    bad = []
    for path in project_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for needle in ("".join(OUTSIDE), "".join(SPEC)):
            if needle in text:
                bad.append(f"{path.relative_to(ROOT)}: {needle}")
    assert bad == []


MD_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_every_relative_markdown_link_stays_in_the_project_and_exists() -> None:
    bad = []
    for path in project_files():
        if path.suffix != ".md":
            continue
        for target in MD_LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue  # a URL, a mail address or an anchor in the same page
            resolved = (path.parent / target.split("#")[0]).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                bad.append(f"{path.relative_to(ROOT)}: {target}")
    assert bad == []


# ------------------------------------------------------------------------------ docs/rules.md


def test_committed_rules_doc_is_what_the_rule_pack_generates() -> None:
    committed = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert committed == render_rules(load_pack(DEFAULT_RULES)), (
        "docs/rules.md is out of date: run `benefits rules doc --out docs/rules.md`"
    )


def test_rules_doc_states_every_policy_condition_amount_parameter_exclusion_and_alert() -> None:
    pack = load_pack(DEFAULT_RULES)
    text = render_rules(pack)
    headings = re.findall(r"^## (\d+)\. (.+)$", text, flags=re.M)
    assert [int(n) for n, _ in headings] == list(range(1, 13))  # handbook order 1–12
    sections = re.split(r"^## \d+\. ", text, flags=re.M)[1:]
    for policy, section in zip(pack.policies, sections, strict=False):
        assert section.startswith(f"{policy.name.zh} — {policy.name.en}")
        assert f"`{policy.id}`" in section and policy.group in section
        assert policy.mode in section and f"`{policy.considers}`" in section
        for basis in policy.basis:
            assert basis.doc in section
        for cond in policy.conditions:
            assert cond.label.zh in section and cond.label.en in section
            assert f"`{' '.join(cond.when.split())}`" in section
        amounts = (
            [policy.amount] if isinstance(policy.amount, str) else [c.value for c in policy.amount]
        )
        for amount in amounts:
            assert f"`{amount}`" in section
    for name, param in pack.parameters.items():
        for day, value in param.values.items():
            assert f"{value} from {day.isoformat()}" in text, name
        assert param.basis in text
    for exclusion in pack.exclusions.exclusions:
        assert f"`{exclusion.id}`" in text and exclusion.label.en in text
    for alert in pack.alerts:
        assert f"`{alert.kind}`" in text and alert.label.zh in text
    assert "applies to **the whole month**: `dibao_std` 1301 effective 2025-01-23" in text


def test_rules_doc_tables_are_well_formed_markdown() -> None:
    """Each table stands after a blank line and every row has as many cells as its header."""
    lines = render_rules(load_pack(DEFAULT_RULES)).splitlines()
    cells = [len(re.findall(r"(?<!\\)\|", line)) if line.startswith("|") else 0 for line in lines]
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            continue
        if not lines[i - 1].startswith("|"):
            assert lines[i - 1] == "", f"line {i + 1}: a table needs a blank line before it"
            assert re.fullmatch(r"\|(---\|)+", lines[i + 1]), f"line {i + 2}: header separator"
            width = cells[i]
        assert cells[i] == width, f"line {i + 1}: {line}"


def test_rules_doc_follows_a_changed_rule_pack(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES, rules)
    path = next(p for p in (rules / "parameters").glob("*.yaml") if "old_age_80" in p.read_text())
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["old_age_80"]["values"][dt.date(2026, 3, 15)] = 75
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    text = render_rules(load_pack(rules))
    assert "75 from 2026-03-15" in text
    assert text != (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")


def test_cli_rules_doc_writes_the_document(tmp_path: Path) -> None:
    out = tmp_path / "rules.md"
    result = CliRunner().invoke(app, ["rules", "doc", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == render_rules(load_pack(DEFAULT_RULES))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rules", "{tmp}"], "no pack.yaml"),
        (["--out", "{tmp}/missing/rules.md"], "cannot write"),
    ],
)
def test_cli_rules_doc_errors_are_one_line_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = CliRunner().invoke(app, ["rules", "doc", *args])
    assert result.exit_code == 2
    output = " ".join(result.output.split())  # the console wraps long lines
    assert output.startswith("error:") and message in output and "Traceback" not in output


# ------------------------------------------------------------------------ docs/data-contract.md

TYPE_WORDS = {
    "id": "resident ID",
    "ref_id": "ID reference",
    "text": "text",
    "code": "code",
    "district": "district",
    "community": "community code",
    "account": "account number",
    "date": "date",
    "month": "month",
    "money": "money",
    "enum": "enum",
    "bool": "boolean",
    "grade": "grade",
    "number": "number",
}


def contract() -> str:
    return (ROOT / "docs" / "data-contract.md").read_text(encoding="utf-8")


def table_sections(text: str) -> dict[str, str]:
    parts = re.split(r"^### `([a-z_]+)`", text, flags=re.M)
    return {parts[i]: parts[i + 1].split("\n## ")[0] for i in range(1, len(parts), 2)}


def rows(section: str) -> dict[str, list[str]]:
    """Markdown table rows keyed by their first cell without backticks."""
    out = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            out[cells[0].strip("`")] = cells
    return out


def test_data_contract_states_every_table_column_type_and_value_of_the_schema() -> None:
    sections = table_sections(contract())
    assert list(sections) == list(TABLES)
    for name, table in TABLES.items():
        section = sections[name]
        assert table.department in section.splitlines()[0], name
        listed = rows(section)
        assert list(listed) == list(table.names), name
        for column in table.columns:
            cells = listed[column.name]
            assert cells[1] == TYPE_WORDS[column.kind], (name, column.name)
            assert cells[2] == ("yes" if column.required else "no"), (name, column.name)
            for value in column.values:
                assert f"`{value}`" in cells[3], (name, column.name, value)
        if table.key:
            assert "Key: " + " + ".join(f"`{k}`" for k in table.key) + "." in section, name
        else:
            assert "No key" in section, name
        if table.last_row_wins:
            assert "**last** accepted row" in section


def test_data_contract_describes_every_type() -> None:
    values = contract().split("### Values")[1].split("\n## ")[0]
    described = [line.split(" | ")[0].strip("| ") for line in values.splitlines() if "|" in line]
    assert set(TYPE_WORDS.values()) <= set(described)


def test_data_contract_lists_exactly_the_quarantine_codes_of_ingest() -> None:
    section = contract().split("## The quarantine")[1].split("\n## ")[0]
    assert set(rows(section)) == {*REASONS, "table_rejected"}


def test_data_contract_names_the_encodings_and_the_outputs() -> None:
    text = contract()
    for word in ("`utf-8-sig`", "`utf-8`", "`gbk`", "Parquet", "exits with code **2**"):
        assert word in text
    for output in ("entitlements", "alerts", "quarantine"):
        assert f"`{output}.csv`, `.parquet`" in text
    assert "`traces.jsonl`" in text and "`summary.json`" in text
    outputs = text.split("## What a sweep writes")[1]
    for column in {*ENTITLEMENT_COLUMNS, *ALERT_COLUMNS, *QUARANTINE_COLUMNS}:
        assert f"`{column}`" in outputs, column
