"""An alert's identity across months, its rule's label and the fingerprint of its facts.

A sweep identifies an alert by (id_no, kind, policy_id, due_date) within one month (handbook
§5). Across months the inbox needs more: for the kinds whose due date is the month itself
(`account_problem`, `income_over_threshold`, `discovery_lead`, …) that key changes every month
although the situation is the same. Here an alert row of alerts.csv is traced back to the rule
of ``rules/alerts.yaml`` that raised it — by matching its message against each rule's message
template — which gives:

- ``rule``: the rule's key (its English label), so two rules of one kind stay apart and each
  alert shows its own rule's label;
- ``party``: who it is about — the person, or for a rule raised once per household
  (``one_per: by: household_no``) the household;
- ``subject``: the due date for alerts about a dated event (a certificate's expiry, a birthday,
  a death, a review date), empty for the kinds whose due date is the month's start;
- ``fingerprint``: SHA-256 of the facts the message reports (its placeholders' values) minus
  the due date and the quarantined row's position, so a closed alert reopens only when they
  change.

Example:
    >>> from benefits.rulebook import load_pack                  # doctest: +SKIP
    >>> m = RuleMatcher(load_pack())                             # doctest: +SKIP
    >>> m.identify({"id_no": "330106198501010220", "kind": "account_problem", "policy_id": "",
    ...             "due_date": "2025-02-01", "message": "账户问题（closed），…"})  # doctest: +SKIP
    AlertIdentity(rule='bank account problem, payment held', ..., subject='', ...)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from benefits.rulebook import Alert, RulePack

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# A due date computed from the month (month_start, prev_month_end, …) is not part of the
# situation: the same account problem is due on 1 February and on 1 March.
_MONTH_DUE = re.compile(r"\b(month_start|month_end|prev_month_start|prev_month_end)\b")
# Placeholders that say when or where, not what: left out of the fingerprint.
NOT_FACTS = frozenset({"due_date", "row"})

# Names of the handbook's alert kinds, used where several rules of one kind are counted
# together (the inbox's kind filter) and their own labels differ.
KIND_NAMES: dict[str, tuple[str, str]] = {
    "cert_expiring": ("残疾证即将到期", "disability certificate expiring"),
    "age_milestone": ("年龄节点", "age milestone"),
    "death_stop": ("死亡停发", "stop payment after a death"),
    "moved_out_stop": ("户籍迁出停发", "stop after moving out"),
    "review_due": ("待复核", "review due"),
    "income_over_threshold": ("收入超过标准", "income over the threshold"),
    "exclusive_conflict": ("救助身份冲突", "conflicting assistance records"),
    "identity_conflict": ("身份信息冲突", "identity conflict"),
    "account_problem": ("账户问题，暂缓发放", "bank account problem, payment held"),
    "discovery_lead": ("疑似符合条件未纳入", "may qualify but not enrolled"),
    "survivor_benefit_notice": ("遗属待遇告知", "survivor benefit notice"),
}


@dataclass(frozen=True)
class AlertIdentity:
    """Who and what an alert is about across months, and the fingerprint of its facts."""

    rule: str
    label_zh: str
    label_en: str
    party: str
    subject: str
    fingerprint: str

    def key(self, kind: str, policy_id: str) -> tuple[str, str, str, str, str]:
        """The inbox's unique key (kind, policy_id, rule, party, subject)."""
        return (kind, policy_id, self.rule, self.party, self.subject)


def _template_regex(template: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(template)
    seen: set[str] = set()
    out: list[str] = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out.append(re.escape(part))
        elif part in seen:
            out.append(f"(?P={part})")
        else:
            seen.add(part)
            out.append(f"(?P<{part}>.*?)")
    return re.compile("".join(out), re.DOTALL)


def fingerprint(values: Mapping[str, str]) -> str:
    """SHA-256 (hex) of the facts an alert reports, in a canonical form.

    >>> fingerprint({"account_issue": "closed"}) == fingerprint({"account_issue": "closed"})
    True
    >>> fingerprint({"hh_pci": "1400.00"}) == fingerprint({"hh_pci": "1500.00"})
    False
    """
    text = json.dumps(dict(sorted(values.items())), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def kind_labels(pack: RulePack) -> dict[str, tuple[str, str]]:
    """{kind: (zh, en)}: the rule's label when a kind has one, else the kind's own name."""
    labels: dict[str, set[tuple[str, str]]] = {}
    for a in pack.alerts:
        labels.setdefault(a.kind, set()).add((a.label.zh, a.label.en))
    return {
        kind: next(iter(found)) if len(found) == 1 else KIND_NAMES.get(kind, (kind, kind))
        for kind, found in labels.items()
    }


class RuleMatcher:
    """Finds the rule of the pack that raised an alerts.csv row, and the row's identity."""

    def __init__(self, pack: RulePack) -> None:
        self._rules: dict[tuple[str, str], list[tuple[Alert, re.Pattern[str]]]] = {}
        for a in pack.alerts:
            key = (a.kind, a.policy or "")
            self._rules.setdefault(key, []).append((a, _template_regex(a.message)))
        self._kinds = kind_labels(pack)

    def identify(self, row: Mapping[str, str], month_start: str) -> AlertIdentity:
        """The identity of one alerts.csv row of the sweep of the month starting `month_start`.

        A row no rule of the pack explains (a run swept with another rule pack) keeps the
        sweep's identity, its due date dropped when it is the month's start, and its whole
        message (minus the due date) as its facts.
        """
        kind, message, due = row["kind"], row["message"], row["due_date"]
        for rule, pattern in self._rules.get((kind, row["policy_id"]), []):
            found = pattern.fullmatch(message)
            if found is None:
                continue
            values = found.groupdict()
            party = row["id_no"]
            by = rule.one_per.by if rule.one_per else None
            if by and values.get(by):
                party = f"{by}:{values[by]}"
            recurring = bool(_MONTH_DUE.search(rule.due))
            return AlertIdentity(
                rule=rule.label.en,
                label_zh=rule.label.zh,
                label_en=rule.label.en,
                party=party,
                subject="" if recurring else due,
                fingerprint=fingerprint(
                    {k: v for k, v in values.items() if k not in NOT_FACTS}
                ),
            )
        zh, en = self._kinds.get(kind, (kind, kind))
        return AlertIdentity(
            rule="",
            label_zh=zh,
            label_en=en,
            party=row["id_no"],
            subject="" if due == month_start else due,
            fingerprint=fingerprint({"message": message.replace(due, "") if due else message}),
        )
