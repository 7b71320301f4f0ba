"""The web application's tables, in the ledger's database and on the ledger's metadata.

Users with their roles and `pii` grant, server-side sessions, API tokens for jobs, login
attempts (throttling), and the alerts inbox (one row per alert identity, with its workflow
state and an append-only event list). They live on :class:`benefits.ledger.models.Base` so
the ledger's migrations (``0002_web``) and its model/migration comparison cover them; the
migration imports this module for that reason. Only SQLAlchemy is imported here.

Example:
    >>> sorted(t for t in Base.metadata.tables if t.startswith("web_"))[:2]
    ['web_alert_events', 'web_alert_imports']
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from benefits.ledger.models import Base, BatchItem
from benefits.ledger.sealed import Sealed

ROLES = ("officer", "approver", "auditor", "admin", "policy")
ALERT_OPEN, ALERT_ACKNOWLEDGED, ALERT_RESOLVED = "open", "acknowledged", "resolved"
ALERT_STATUSES = (ALERT_OPEN, ALERT_ACKNOWLEDGED, ALERT_RESOLVED)


class WebUser(Base):
    """A person who signs in: roles (comma-separated), the `pii` grant, an argon2 hash."""

    __tablename__ = "web_users"
    __table_args__ = (UniqueConstraint("username"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[str] = mapped_column(String(128))
    pii: Mapped[bool] = mapped_column(Boolean)
    active: Mapped[bool] = mapped_column(Boolean)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    @property
    def role_list(self) -> list[str]:
        """Roles as a list, in the canonical order."""
        have = {r.strip() for r in self.roles.split(",") if r.strip()}
        return [r for r in ROLES if r in have]


class WebSession(Base):
    """A signed-in browser: the SHA-256 of its cookie token, expiry, and its CSRF token."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    revoked: Mapped[bool] = mapped_column(Boolean)
    ip: Mapped[str] = mapped_column(String(64))


class ApiToken(Base):
    """A bearer token for scheduled jobs and other systems; only its SHA-256 is stored."""

    __tablename__ = "web_api_tokens"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]
    revoked: Mapped[bool] = mapped_column(Boolean)


class LoginAttempt(Base):
    """One sign-in attempt, for throttling by user name and by address."""

    __tablename__ = "web_login_attempts"
    __table_args__ = (
        Index("ix_web_login_attempts_username_at", "username", "at"),
        Index("ix_web_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime]
    success: Mapped[bool] = mapped_column(Boolean)


class WebAlert(Base):
    """An alert's identity across months and where it is in the inbox.

    The identity is (kind, policy_id, rule, party, subject) — see
    :mod:`benefits.web.services.alert_identity`; ``due_date``, ``message`` and ``fingerprint``
    (of the facts the message reports) are those of the latest month that raised it, and
    ``months_open`` counts the months that raised it since it was last (re)opened.

    Sealed at rest (issue 14): ``id_no`` and ``message`` with the ``data`` key; the person is
    found through ``id_index`` and ``party`` holds the keyed blind index of who the alert is
    about (the person's ID or the household), never the value itself.
    """

    __tablename__ = "web_alerts"
    __table_args__ = (
        UniqueConstraint("kind", "policy_id", "rule", "party", "subject"),
        Index("ix_web_alerts_last_month_kind", "last_month", "kind"),
        Index("ix_web_alerts_id_index", "id_index"),
        # the inbox's order: a page of 550,000 alerts without sorting them all
        Index("ix_web_alerts_due_date_kind_id", "due_date", "kind", "id"),
        # the same order for one kind, without stepping over the other kinds' alerts
        Index("ix_web_alerts_kind_due_date_id", "kind", "due_date", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_no: Mapped[str] = mapped_column(Sealed("id_no", 32))
    id_index: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    policy_id: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(128))
    label_zh: Mapped[str] = mapped_column(String(128))
    label_en: Mapped[str] = mapped_column(String(128))
    party: Mapped[str] = mapped_column(String(96))
    subject: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    due_date: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Sealed("message", None))
    community: Mapped[str] = mapped_column(String(128))
    masked_name: Mapped[str] = mapped_column(String(64))
    first_month: Mapped[str] = mapped_column(String(7))
    last_month: Mapped[str] = mapped_column(String(7))
    months_open: Mapped[int] = mapped_column(Integer)
    last_run_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(64))
    updated_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime | None]


class WebAlertEvent(Base):
    """Append-only history of an alert: assigned, acknowledged, resolved, with notes."""

    __tablename__ = "web_alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("web_alerts.id"), index=True)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    assignee: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


class WebAlertImport(Base):
    """A run whose alerts.csv was read into the inbox (each run once)."""

    __tablename__ = "web_alert_imports"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("sweep_runs.id"), primary_key=True, autoincrement=False
    )
    month: Mapped[str] = mapped_column(String(7))
    alerts: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime]


class ExportRequest(Base):
    """A request to export data as a file (issue 14, output limits): what, why, how many
    rows and persons; a bulk one waits for a second person's approval; downloaded once."""

    __tablename__ = "web_export_requests"
    __table_args__ = (Index("ix_web_export_requests_status", "status"),
                      Index("ix_web_export_requests_requested_by", "requested_by"))  # fmt: skip

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[str] = mapped_column(Text)
    fmt: Mapped[str] = mapped_column(String(16))
    reveal: Mapped[bool] = mapped_column(Boolean)
    purpose: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer)
    persons: Mapped[int] = mapped_column(Integer)
    bulk: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[dt.datetime]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
    downloaded_at: Mapped[dt.datetime | None]
    sha256: Mapped[str | None] = mapped_column(String(64))


class ExportUsage(Base):
    """Rows of personal data one user took on one UTC day (files and API lists)."""

    __tablename__ = "web_export_usage"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)


JOB_RUNNING, JOB_DONE, JOB_FAILED = "running", "done", "failed"


class WebJob(Base):
    """Long work started from the web app (a sweep, a large PDF, a bank file): its progress,
    then its result or the error shown to the officer. One running job per `key`."""

    __tablename__ = "web_jobs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'done', 'failed')", name="status"),
        Index("uq_web_jobs_running", "key", unique=True,
              sqlite_where=text("status = 'running'"),
              postgresql_where=text("status = 'running'")),
        Index("ix_web_jobs_started_by", "started_by"),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    done: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int | None] = mapped_column(BigInteger)
    stage: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    started_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]


# A person's payment history (the explanation page) looks items up by ID across batches.
Index("ix_web_batch_items_id_index", BatchItem.__table__.c.id_index)
