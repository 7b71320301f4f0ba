"""An alert's identity across months, its rule's label and the fingerprint of its facts.

A sweep identifies an alert by (id_no, kind, policy_id, due_date) within one month (handbook
§5). Across months the inbox needs more: for the kinds whose due date is the month itself
(`account_problem`, `income_over_threshold`, `discovery_lead`, …) that key changes every month
although the situation is the same. The sweep says what each alert is about in the columns
alerts.csv carries after the contract's (:mod:`benefits.alertid`):

- ``rule_id``: the ``id`` of the rule of ``rules/alerts.yaml`` that raised it, so two rules of
  one kind stay apart, each alert shows its own rule's label, and a rule whose label or
  message text changes keeps its alerts;
- ``party``: who it is about — the person, or for a rule raised once per household
  (``one_per: by: household_no``) the household;
- ``subject``: the due date for alerts about a dated event (a certificate's expiry, a birthday,
  a death, a review date), empty for the kinds whose due date is derived from the month;
- ``fingerprint``: SHA-256 of the facts the message reports minus the due date and the
  quarantined row's position, so a closed alert reopens only when they change.

Runs swept before these columns existed are read by the fallback: the row is traced back to
its rule by matching its message against each rule's message template, and the facts are the
placeholders' values read back out of the message — the same rule id, party, subject and
fingerprint the sweep writes now, for any message the template explains.

Example:
    >>> from benefits.rulebook import load_pack                  # doctest: +SKIP
    >>> m = RuleMatcher(load_pack())                             # doctest: +SKIP
    >>> m.identify({"id_no": "330106198501010220", "kind": "account_problem", "policy_id": "",
    ...             "due_date": "2025-02-01", "message": "账户问题（closed），…",
    ...             "rule_id": "account_problem", "party": "330106198501010220",
    ...             "subject": "", "fingerprint": "…"}, "2025-02-01")   # doctest: +SKIP
    AlertIdentity(rule='account_problem', ..., subject='', ...)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from benefits.alertid import NOT_FACTS, PLACEHOLDER, due_from_month, fingerprint
from benefits.rulebook import Alert, RulePack

# how an inbox filled before rule ids stored a household party: "household_no:H9"
_GROUP_PARTY = re.compile(r"^[a-z_]+:")

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

    rule: str  # the rule's id
    label_zh: str
    label_en: str
    party: str
    subject: str
    fingerprint: str

    def key(self, kind: str, policy_id: str) -> tuple[str, str, str, str, str]:
        """The inbox's unique key (kind, policy_id, rule, party, subject)."""
        return (kind, policy_id, self.rule, self.party, self.subject)


def _template_regex(template: str) -> re.Pattern[str]:
    parts = PLACEHOLDER.split(template)
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
    """The identity of an alerts.csv row: from its rule_id, party, subject and fingerprint
    columns, or for a run swept before them, from the rule of the pack that explains its
    message."""

    def __init__(self, pack: RulePack) -> None:
        self._by_id = {a.id: a for a in pack.alerts}
        self._rules: dict[tuple[str, str], list[tuple[Alert, re.Pattern[str]]]] = {}
        for a in pack.alerts:
            key = (a.kind, a.policy or "")
            self._rules.setdefault(key, []).append((a, _template_regex(a.message)))
        self._parameters = set(pack.parameters)
        self._kinds = kind_labels(pack)
        # an inbox filled before rule ids keyed an alert by its rule's English label
        self._label_ids = {a.label.en: a.id for a in pack.alerts}

    def stored_key(
        self, kind: str, policy_id: str, rule: str, party: str, subject: str
    ) -> tuple[str, str, str, str, str]:
        """A stored alert's key as :meth:`identify` makes it now (a rule's label → its id, a
        household party without its ``household_no:`` prefix)."""
        return (kind, policy_id, self._label_ids.get(rule, rule),
                _GROUP_PARTY.sub("", party), subject)  # fmt: skip

    def _labels(self, kind: str, rule_id: str) -> tuple[str, str]:
        rule = self._by_id.get(rule_id)
        if rule is not None and rule.kind == kind:
            return rule.label.zh, rule.label.en
        return self._kinds.get(kind, KIND_NAMES.get(kind, (kind, kind)))

    def identify(self, row: Mapping[str, str], month_start: str) -> AlertIdentity:
        """The identity of one alerts.csv row of the sweep of the month starting `month_start`.

        A row with a ``rule_id`` takes its identity from the sweep's columns; a rule id the
        pack no longer has is kept, labelled with its kind's name. An older row (no such
        column) is matched against the rules' message templates; one no rule of the pack
        explains keeps the sweep's identity, its due date dropped when it is the month's
        start, and its whole message (minus the due date) as its facts.
        """
        kind = row["kind"]
        if row.get("rule_id"):
            zh, en = self._labels(kind, row["rule_id"])
            return AlertIdentity(
                rule=row["rule_id"],
                label_zh=zh,
                label_en=en,
                party=row.get("party") or row["id_no"],
                subject=row.get("subject") or "",
                fingerprint=row.get("fingerprint") or "",
            )
        return self._from_message(row, month_start)

    def _from_message(self, row: Mapping[str, str], month_start: str) -> AlertIdentity:
        """The fallback for runs swept before the identity columns (see the module doc)."""
        kind, message, due = row["kind"], row["message"], row["due_date"]
        for rule, pattern in self._rules.get((kind, row["policy_id"]), []):
            found = pattern.fullmatch(message)
            if found is None:
                continue
            values = found.groupdict()
            party = row["id_no"]
            by = rule.one_per.by if rule.one_per else None
            if by and values.get(by):
                party = values[by]
            return AlertIdentity(
                rule=rule.id,
                label_zh=rule.label.zh,
                label_en=rule.label.en,
                party=party,
                subject="" if due_from_month(rule.due, self._parameters) else due,
                fingerprint=fingerprint(
                    {k: v for k, v in values.items() if k not in NOT_FACTS}
                ),
            )
        zh, en = self._kinds.get(kind, KIND_NAMES.get(kind, (kind, kind)))
        return AlertIdentity(
            rule="",
            label_zh=zh,
            label_en=en,
            party=row["id_no"],
            subject="" if due == month_start else due,
            fingerprint=fingerprint({"message": message.replace(due, "") if due else message}),
        )
