"""The hand-written part of the rules document: changing the pack as a governed release.

:func:`benefits.rulesdoc.render_rules` appends :data:`RELEASE_GUIDE` to the generated
document, so ``docs/rules.md`` explains how the figures above change each year.
"""

from __future__ import annotations

RELEASE_GUIDE = """\
## Changing the rules: the yearly standard update, end to end

A wrong figure in `rules/` pays thousands of people wrongly, so a rule pack is paid with only
once it is a **release approved by a second person** (four eyes, as for a payment batch). The
ledger keeps every release — its files byte for byte, its SHA-256 digest, the rules diff and
what-if report its approver read, who submitted, approved, rejected or rolled it back — and
writes each step to the audit chain (`rules.submit`, `rules.approve`, `rules.reject`,
`rules.rollback`). The approved release **in force** is what `benefits cycle run` and the web
application sweep with; `benefits ledger import-run` (and so the cycle and the web) refuses a
sweep decided with any other pack with a one-line error, and every recorded run names its
release. A plain `benefits sweep` on files stays a dry run: it records the pack's hash in
`summary.json` and pays nobody. (A ledger with no approved release yet is not governed: the
refusal starts with the first approved release.)

Say the province publishes the 2026 minimum living standard (低保标准), 1,400 yuan a month
from 1 January 2026. Policy staff (Alice) prepare it; an approver (Bob) approves it.

1. **Edit** a copy of the pack in force: add the value with its effective date, keep the old
   ones (they decide earlier months and arrears).

   ```sh
   benefits rules fetch current --to work/rules-2026      # the release in force, as files
   # parameters/assistance.yaml, dibao_std:
   #   values: {2022-07-01: 1216, 2023-07-01: 1259, 2025-01-23: 1301, 2026-01-01: 1400}
   ```

2. **Check** it: load errors name file, rule and field; warnings name a parameter whose next
   value is missing, a policy without a rule case, an exclusion that can never apply.

   ```sh
   benefits rules check work/rules-2026
   ```

3. **Test** it against the rule cases (the handbook's worked examples among them):

   ```sh
   benefits rules test work/rules-2026 tests/cases
   ```

4. **Diff** it against the release in force, in the handbook's words:

   ```sh
   benefits rules fetch current --to work/rules-now
   benefits rules diff work/rules-now work/rules-2026 --format markdown --out work/diff.md
   ```

5. **Price it (what-if)** on a month's records: who gains, loses, starts or stops, by policy,
   community and group, what it costs per month and per year, with the largest changes
   explained:

   ```sh
   benefits whatif --data deliveries/2026-01 --month 2026-01 --base work/rules-now \\
       --proposed work/rules-2026 --report work/whatif-2026-01.html
   ```

6. **Submit** it as a release, with both reports attached for the approver (without
   `--diff-report`, the diff against the release in force is made here; `--whatif-data` and
   `--whatif-month` make the what-if here too):

   ```sh
   benefits rules submit work/rules-2026 --note "2026 dibao standard 1400 (notice 2025-12)" \\
       --diff-report work/diff.md --whatif-report work/whatif-2026-01.html --by alice
   ```

   Or on the web: **规则发布 / Rule releases** → submit a `.zip` of the folder with the two
   reports.

7. **Approve** it — another person. Its submitter is refused (`alice cannot approve release 2:
   … four eyes`), and so is a release prepared against a release that is no longer in force
   (its diff and what-if are out of date). The approver reads the diff, the what-if and the
   parameter changes on the release's page (or `benefits rules show 2`), then:

   ```sh
   benefits rules approve 2 --by bob          # or: benefits rules reject 2 --reason "…" --by bob
   ```

   From now on release 2 is in force: the rules page shows it, with each parameter's
   calendar — every value, the months it applies to, history, in force or scheduled.

8. **Sweep** with it: the next `benefits cycle run` (or the scheduler, or the web's sweep
   button) uses release 2 and records it on the run; a sweep decided with another pack is
   refused when it is imported:

   ```sh
   benefits cycle run --month 2026-01
   benefits ledger runs                       # the run's rule pack is release 2's digest
   ```

**Emergency rollback.** If a release in force turns out wrong, one command puts the previous
approved release back in force, with a reason, in the audit chain:

```sh
benefits rules rollback --reason "2026 standard typed as 14000" --by bob
```

**Yearly parameters.** A parameter that needs a new value every year (e.g. the provincial
urban income of the previous year, `prov_urban_income`) says `yearly: true` in its parameter
file. From a configured day each year (ledger setting `rules.yearly_due`, `MM-DD`, default
`11-01`: `benefits ledger setting rules.yearly_due 10-15`) a yearly parameter with no value
effective in the coming year raises an operator alert (`rules.yearly_missing`, to the cycle's
alert hooks, once per parameter and year, written to the audit chain; the scheduler checks
every day) and a notice on every page for administrators. `benefits rules calendar` prints the
calendar and exits 1 while such a value is missing.
"""
