"""Data classes, declared once: every input field, fact, ledger column and output column.

Four classes of data about residents, graded by the harm a disclosure does (Personal
Information Protection Law; 等保 level 3), plus credentials:

- ``public``: may be published (the rule pack, policy numbers, amounts in the law);
- ``internal``: the service's own working data (run numbers, batch states, staff user names)
  — any signed-in user with a role that reads it;
- ``personal``: about an identifiable resident (name, sex, household, community, income,
  assistance, pensions, payment amounts) — shown masked in lists, in full only to a user
  with the ``pii`` grant who asks to reveal it (audited);
- ``sensitive``: sensitive personal information — resident ID numbers, bank accounts,
  health and disability, care needs, and the family situation of minors (a parent in prison,
  in compulsory rehabilitation, missing, severely ill or disabled): never shown in clear
  without the ``pii`` grant and an audited reveal; in lists the ID and account are masked and
  every other value is restricted;
- ``credential``: password hashes, session and token hashes, CSRF tokens: shown to no one.

Each declaration also says how a value is masked when shown without the grant
(:data:`MASKS`); :mod:`benefits.web.privacy` reads these instead of its own lists. A test
(``tests/security/test_classes.py``) fails when a field, fact, ledger column or output column
has no class here.

Example:
    >>> fact_class("id_no"), fact_class("care_level"), fact_class("age")
    ('sensitive', 'sensitive', 'personal')
    >>> input_class("bank_accounts", "account_no"), ledger_class("web_users", "password_hash")
    ('sensitive', 'credential')
    >>> fact_mask("cert_grade"), fact_mask("account_no"), fact_mask("age") is None
    ('restricted', 'account', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PUBLIC, INTERNAL, PERSONAL, SENSITIVE, CREDENTIAL = (
    "public", "internal", "personal", "sensitive", "credential",
)  # fmt: skip
DataClass = Literal["public", "internal", "personal", "sensitive", "credential"]
CLASSES: tuple[str, ...] = (PUBLIC, INTERNAL, PERSONAL, SENSITIVE, CREDENTIAL)

# How a value is shown to a user without the grant: an ID (first 6 + last 4), a name (张*明),
# an account (last 4), a birth date (the year), restricted (not at all); None: as it is.
Mask = Literal["id", "name", "account", "birth", "restricted"]
MASKS: tuple[str, ...] = ("id", "name", "account", "birth", "restricted")


@dataclass(frozen=True)
class ClassRule:
    """What a class means: who may see it in clear, and how it is shown to everyone else."""

    zh: str
    en: str
    who_may_see: str
    otherwise: str


RULES: dict[str, ClassRule] = {
    PUBLIC: ClassRule("公开", "public", "anyone", "shown"),
    INTERNAL: ClassRule("内部", "internal", "signed-in users whose role reads it", "not shown"),
    PERSONAL: ClassRule(
        "个人信息", "personal information",
        "users with the pii grant who ask to reveal it (audited)", "masked or shown as it is "
        "when it does not identify the person alone (sex, community, amounts)",
    ),
    SENSITIVE: ClassRule(
        "敏感个人信息", "sensitive personal information",
        "users with the pii grant who ask to reveal it (audited)",
        "ID and account masked, every other value restricted",
    ),
    CREDENTIAL: ClassRule("凭据", "credential", "no one (only hashes are kept)", "never shown"),
}


@dataclass(frozen=True)
class Declared:
    """The class of one field and how it is masked without the grant."""

    cls: str
    mask: str | None = None


def _cols(cls: str, names: str, mask: str | None = None) -> dict[str, Declared]:
    return {n: Declared(cls, mask) for n in names.split()}


def _table(**groups: str) -> dict[str, Declared]:
    """A table's columns by class: ``_table(internal="id month", sensitive="id_no")``."""
    out: dict[str, Declared] = {}
    for cls, names in groups.items():
        out.update(_cols(cls, names))
    return out


ID = Declared(SENSITIVE, "id")
NAME = Declared(PERSONAL, "name")
ACCOUNT = Declared(SENSITIVE, "account")
BIRTH = Declared(PERSONAL, "birth")


def _restricted(names: str) -> dict[str, Declared]:
    return _cols(SENSITIVE, names, "restricted")


# -- the data contract's input tables (benefits.schema.TABLES) -----------------------------------
INPUTS: dict[str, dict[str, Declared]] = {
    "persons": {
        "id_no": ID, "name": NAME, "birth_date": BIRTH, "father_id_no": ID, "mother_id_no": ID,
        **_cols(PERSONAL, "sex household_no relation hukou_district hukou_community "
                          "hukou_status moved_out_date"),
    },
    "deaths": {"id_no": ID, **_cols(PERSONAL, "death_date source")},
    "assistance": {"id_no": ID, **_cols(PERSONAL, "household_no assistance_type approved_date "
                                                  "next_review_date")},
    "household_finance": _cols(PERSONAL, "household_no per_capita_income per_capita_assets "
                                         "assessed_on"),
    "disability_certificates": {
        "id_no": ID, **_restricted("cert_no category grade issue_date expiry_date status"),
    },
    "pensions": {"id_no": ID, **_cols(PERSONAL, "pension_type status retire_date "
                                                "monthly_pension contribution_years")},
    "care_assessments": {"id_no": ID, **_restricted("care_level assessed_on "
                                                    "institution_resident")},
    "parent_situations": {"id_no": ID, **_restricted("situation start_date end_date")},
    "health_conditions": {"id_no": ID, **_restricted("condition diagnosed_on end_date")},
    "medical_expenses": {"id_no": ID, **_restricted("month out_of_pocket")},
    "bank_accounts": {
        "id_no": ID, "account_no": ACCOUNT, "account_name": NAME,
        **_cols(PERSONAL, "financial_active status"),
    },
}  # fmt: skip

# -- per-person facts (benefits.merge.FACTS) and facts the rule pack derives -------------------
FACTS: dict[str, Declared] = {
    "id_no": ID, "name": NAME, "birth_date": BIRTH,
    "father_id_no": ID, "mother_id_no": ID, "account_no": ACCOUNT,
    **_cols(PERSONAL, "sex household_no relation hukou_district hukou_community hukou_status "
                      "moved_out_date age age_turning birthday_in_month resident alive "
                      "resident_prev_month alive_prev_month death_date"),
    **_cols(PERSONAL, "status assistance_types assistance_households dibao_review_date "
                      "dibian_review_date tekun_review_date hh_members hh_has_dibao "
                      "hh_has_dibian hh_has_tekun hh_has_finance hh_pci hh_assets "
                      "hh_assessed_on"),
    **_cols(PERSONAL, "father_death_date mother_death_date father_known father_dead "
                      "mother_known mother_dead"),
    **_cols(PERSONAL, "has_pension pension_type pension_status retire_date monthly_pension "
                      "contribution_years account_issue"),
    **_restricted("has_cert cert_no cert_grade cert_category cert_expiry_date"),
    **_restricted("has_care_assessment care_level care_assessed_on institution_resident"),
    **_restricted("father_situation mother_situation father_in_situation "
                  "mother_in_situation"),
    **_restricted("has_open_health_condition oop_12m"),
    # derived by the rule pack from health, disability and parents' situations
    **_restricted("ill_or_severely_disabled"),
}  # fmt: skip

# Names shown beside facts that are no fact of their own (a payment's account and holder).
OTHER_FIELDS: dict[str, Declared] = {
    "account_name": NAME, "release_account": ACCOUNT,
}  # fmt: skip

# -- the ledger's tables (benefits.ledger.models, benefits.web.models, benefits.cycle.models) ---
LEDGER: dict[str, dict[str, Declared]] = {
    "audit_head": _table(internal="id seq hash"),
    "audit_log": _table(internal="seq at actor action object_type prev_hash hash key_id",
                        personal="object_id content"),
    "ledger_settings": _table(internal="key value updated_by updated_at"),
    "sweep_runs": _table(internal="id month fingerprint rule_pack_version rule_pack_hash inputs "
                                  "counts entitlements_sha256 entitlement_rows payable_rows "
                                  "payable_total source started_by imported_by imported_at "
                                  "accounts_checked release_id"),
    "run_entitlements": _table(internal="id run_id policy_id month mode",
                               personal="household_no amount held hold_reason community "
                                        "masked_name id_index account_problem",
                               sensitive="id_no account_no"),
    "batches": _table(internal="id month run_id status item_count total created_by created_at "
                               "submitted_by submitted_at approved_by approved_at rejected_by "
                               "rejected_at reject_reason exported_by exported_at "
                               "reconciled_by reconciled_at"),
    "batch_items": _table(internal="id batch_id kind policy_id month mode status entitlement_id "
                                   "corrects_item_id voided bank_file_id bank_status "
                                   "released_by released_at",
                          personal="household_no amount hold_reason community masked_name "
                                   "reason bank_reason release_reason id_index",
                          sensitive="id_no account_no release_account"),
    "bank_files": _table(internal="id batch_id path sha256 item_count total created_by "
                                  "created_at"),
    "bank_returns": _table(internal="id batch_id path sha256 paid failed imported_by "
                                    "imported_at"),
    "web_users": _table(internal="id username roles pii active created_by created_at "
                                 "updated_at",
                        personal="display_name", credential="password_hash"),
    "web_sessions": _table(internal="user_id created_at last_seen_at expires_at revoked",
                           personal="ip", credential="id csrf_token"),
    "web_api_tokens": _table(internal="id user_id name prefix created_by created_at expires_at "
                                      "last_used_at revoked",
                             credential="token_hash"),
    "web_login_attempts": _table(internal="id username at success", personal="ip"),
    "web_alerts": _table(internal="id kind policy_id rule label_zh label_en "
                                  "due_date first_month last_month months_open last_run_id "
                                  "status assignee updated_by updated_at",
                         personal="community masked_name subject fingerprint party "
                                  "id_index",
                         sensitive="id_no message"),
    "web_alert_events": _table(internal="id alert_id at actor action assignee",
                               personal="note"),
    "web_alert_imports": _table(internal="run_id month alerts at"),
    "web_export_requests": _table(internal="id kind params fmt reveal rows persons bulk status "
                                           "requested_by requested_at decided_by decided_at "
                                           "downloaded_at sha256",
                                  personal="purpose decision_note"),
    "web_export_usage": _table(internal="username day rows"),
    # per policy, community, kind and status of a batch: sums, about no one person
    "batch_totals": _table(internal="batch_id kind policy_id community status items amount"),
    "web_jobs": _table(internal="id kind key title status stage done total result error "
                                "started_by started_at updated_at finished_at"),
    # rule pack releases: the pack's files and the approver's reports (a what-if report shows
    # masked names and IDs of the largest changes: personal)
    "pack_releases": _table(internal="id generation name version digest file_count size source "
                                     "note status base_release_id submitted_by submitted_at "
                                     "approved_by approved_at rejected_by rejected_at "
                                     "reject_reason rolled_back_by rolled_back_at "
                                     "rollback_reason"),
    "pack_release_files": _table(internal="release_id path sha256 content"),
    "pack_release_reports": _table(internal="id release_id kind name media_type sha256 origin "
                                            "added_by added_at",
                                   personal="content"),
    "cycle_attempts": _table(internal="id month number trigger instance actor started_at "
                                      "finished_at duration_seconds outcome stage reason "
                                      "snapshot run_id batch_id transient details"),
    "cycle_locks": _table(internal="name holder host pid acquired_at heartbeat_at expires_at"),
    "cycle_scheduler_jobs": _table(internal="id next_run_time job_state"),
    "cycle_months": _table(internal="month status stage snapshot sweep_out run_id batch_id "
                                    "late_tables metrics stop_snapshot stop_transient reason "
                                    "attempts last_attempt_id created_at updated_at "
                                    "finished_at"),
}  # fmt: skip

# -- the sweep's output files (benefits.sweep, benefits.ingest.QUARANTINE_SCHEMA) --------------
OUTPUTS: dict[str, dict[str, Declared]] = {
    "entitlements": _table(internal="policy_id month mode",
                           personal="household_no amount held hold_reason hukou_community "
                                    "masked_name",
                           sensitive="id_no account_no"),
    # messages quote faulty values (an ID with full-width digits, a birth date)
    # party is an ID or a household; fingerprint hashes the message's values (no key: personal)
    "alerts": _table(internal="kind policy_id due_date rule_id subject", personal="fingerprint",
                     sensitive="id_no message party"),
    "quarantine": _table(internal="table row field code identity_issue",
                         sensitive="id_no reason"),
}  # fmt: skip


def _class(found: Declared | None, what: str) -> str:
    if found is None:
        raise KeyError(f"{what} has no data class: declare it in benefits/classes.py")
    return found.cls


def input_class(table: str, column: str) -> str:
    """The class of a column of an input table (KeyError when undeclared)."""
    return _class(INPUTS.get(table, {}).get(column), f"input column {table}.{column}")


def fact_class(name: str) -> str:
    """The class of a fact (KeyError when undeclared)."""
    return _class(FACTS.get(name) or OTHER_FIELDS.get(name), f"fact {name!r}")


def ledger_class(table: str, column: str) -> str:
    """The class of a ledger column (KeyError when undeclared)."""
    return _class(LEDGER.get(table, {}).get(column), f"ledger column {table}.{column}")


def output_class(output: str, column: str) -> str:
    """The class of a column of a sweep output (KeyError when undeclared)."""
    return _class(OUTPUTS.get(output, {}).get(column), f"output column {output}.{column}")


def fact_mask(name: str) -> str | None:
    """How a fact is masked without the grant (None: shown as it is, also when undeclared)."""
    found = FACTS.get(name) or OTHER_FIELDS.get(name)
    return found.mask if found else None


def masked_as(mask: str) -> frozenset[str]:
    """Every fact or field name masked as `mask` ("id", "name", "account", "birth",
    "restricted").

    >>> sorted(masked_as("id"))
    ['father_id_no', 'id_no', 'mother_id_no']
    """
    return frozenset(n for n, d in {**FACTS, **OTHER_FIELDS}.items() if d.mask == mask)
