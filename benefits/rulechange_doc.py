"""The section of ``docs/rules.md`` on changing the rules: ``benefits rules check|test|diff``
and ``benefits whatif`` (spliced in by :func:`benefits.rulesdoc.render_rules`)."""

from __future__ import annotations

SECTION = """\
## Changing the rules: check, test, diff, what-if

A wrong figure in `rules/` pays thousands of people wrongly, so a change to the pack is
checked, tested, compared and priced before any sweep uses it. Each command takes pack folders,
so a proposed pack is a copy of `rules/` with the change made in it (for example `proposed/`).
Exit codes are the same for all four: **0** all good, **1** the command ran and found something
(warnings, failing cases, differences), **2** it could not run (the pack does not load, a bad
argument) — with one error line on stderr.

### `benefits rules check DIR`

    benefits rules check proposed/ [--cases CASES] [--month 2026-01] [--horizon-months 12] [--json]

Loads the pack — a load error names the file, the rule and the field, e.g. `…/dibao_allowance.yaml:
policy 'dibao_allowance', field conditions.income_below_standard.when: unknown name
'dibao_standard'` — and compiles every policy for each month from `--month` (default: the
current month) to `--month` + `--horizon-months`; a month the pack cannot decide there is also
an error (exit 2). Then it warns (exit 1) about:

- `parameter-missing` — a parameter that has changed before (two or more values) whose next
  value is due within the horizon (its last effective date plus the longest gap between its
  values) and none is scheduled, e.g. `dibao_std` last set on 2025-01-23;
- `policy-without-case` — a policy that no rule case names (`policy:` of a case file, or an
  expected entitlement); `CASES` defaults to `DIR/cases`, else the clone's `tests/cases`;
- `exclusion-never-applies` — an exclusion between two policies never in force in the same
  month, or declared mutually exclusive by their own conditions (`resolved_by` other than
  `exclusion`), or whose `when` reads only parameters and is false in every month up to the
  horizon.

### `benefits rules test DIR [CASES]`

    benefits rules test proposed/ tests/cases [-k dibao] [-v] [--json]

Runs the YAML rule cases (the format of [`tests/cases/`](../tests/cases/)) against the pack in
`DIR`: each case's extracts are written to a temporary folder and swept with that pack, and the
entitlements, alerts and quarantined rows must be exactly the expected ones. One line per case
file (`PASS`, or `FAIL` with how many of its cases failed), each failing case with its
differences (`entitlements missing: A old_age_allowance pay 60.00`, `entitlements unexpected:
… 70.00`) and note, then the totals; `-v` lists every case, `-k TEXT` runs only the cases whose
id (`file::name`) contains TEXT. A case states the handbook's
figures for its month, so a change that applies to a case's month fails that case until the
case is updated with the change.

### `benefits rules diff OLD NEW`

    benefits rules diff rules/ proposed/ [--format text|json|markdown] [--out FILE]

What changed, in the handbook's words: the pack version; parameters (`低保标准 / minimum living
standard (dibao_std): 1301 → 1400 CNY/person/month from 2026-01-01 (a new effective date; 1301
in force since 2025-01-23)`, corrected or removed values, labels, units, bases); policies added
or removed and, per policy, the target group, each condition, the amount, components, validity
and mode; exclusions, mutually exclusive pairs, alerts, event reactions and the fact catalogue.
`--format markdown` is the text to attach to a release; `json` lists each change with its
section, item, field, old and new value.

### `benefits whatif`

    benefits whatif --data DIR --month 2026-01 [--base rules/] --proposed proposed/
    benefits whatif --data DIR --month 2026-01 --set dibao_std=1400 [--set …] [--from 2026-01-01]
        [--out FOLDER] [--format csv|parquet|both] [--report FILE.html|FILE.pdf] [--top 10]
        [--json] [-q]

Prices a change on one month's records before anything is paid. `--base` defaults to the
default pack; `--set NAME=VALUE` adds a value effective `--from` (default: the first day of
`--month`; it must be in force for that month) to the base pack's parameter, or `--proposed`
names a whole proposed pack. The delivery is read and merged **once** and both packs are
evaluated on it (a what-if costs well under two sweeps; `benchmarks/whatif.py`). Nothing is
written to the ledger. It reports:

- **cost** of pay + credit per policy, base → proposed, for the month and for a year (the
  month × 12 — the same records priced for twelve months, not a forecast);
- **who changes**: per person × policy `start` (newly entitled), `stop`, `gain`, `lose`,
  counted by policy, by community and by policy group, each with the net change and the
  minimum, 10th percentile, median, 90th percentile and maximum change; the **distribution**
  of each person's monthly change of pay + credit in fixed bins (yuan);
- the **largest individual changes** (`--top`, by the change of pay + credit) with the two
  decision traces side by side — decision, amount, amount case, every condition with the
  values it read, every parameter with its effective date — the rows that differ marked;
- **households newly below or above a standard**: for each condition that reads a parameter
  whose value changed (e.g. `hh_pci < dibao_std`), the households and people who newly meet
  it and who newly fail it.

`--out` writes `cost_by_policy`, `changes_by_policy`, `changes_by_group`,
`changes_by_community`, `distribution`, `thresholds` and `changes` (one row per person ×
policy that changed) as CSV and/or Parquet, money in yuan, plus `summary.json`, into a folder
only the service account can read. `--report` writes the report with its charts
(`reports/whatif_report.html`, PDF through WeasyPrint). Names and IDs are masked everywhere;
the same inputs give byte-identical files.

In the web application policy staff (role `policy`, 政策制定) and administrators open
**调整测算 / What-if** (`/whatif`), pick the month and either a proposed pack (a sub-folder of
`<work>/proposals/`) or parameter values with their effective date, and see the same report on
the page or as PDF; each run is written to the audit chain (`whatif.run`) and the persons it
shows are recorded as data views.
"""


def changing_rules_section() -> list[str]:
    """The section's lines (for the generated rules document)."""
    return ["", *SECTION.rstrip("\n").split("\n")]
