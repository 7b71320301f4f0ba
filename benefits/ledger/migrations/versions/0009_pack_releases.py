"""Rule pack releases with four eyes (issue 15): the pack's files, the reports its reviewers
read, who submitted, approved, rejected or rolled it back; sweep runs record their release.

``pack_releases`` holds one row per submitted pack (its SHA-256 digest, name, version and the
release in force when it was submitted); ``pack_release_files`` the pack's files byte for
byte; ``pack_release_reports`` the rules diff and the what-if attached for the approver.
``sweep_runs.release_id`` names the release a recorded sweep was decided with (NULL for runs
recorded before this revision, or while a ledger has no approved release yet).

Self-contained: the tables are declared here, as they were created (no model imports).

Revision ID: 0009_pack_releases
Revises: 0008_sealed_alerts
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_pack_releases"
down_revision = "0008_sealed_alerts"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
RUN_FK = "fk_sweep_runs_release_id_pack_releases"


def upgrade() -> None:
    op.create_table(
        "pack_releases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("file_count", sa.Integer, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column(
            "base_release_id",
            sa.Integer,
            sa.ForeignKey(
                "pack_releases.id", name="fk_pack_releases_base_release_id_pack_releases"
            ),
            nullable=True,
        ),
        sa.Column("generation", sa.Integer, nullable=True),
        sa.Column("submitted_by", sa.String(64), nullable=False),
        sa.Column("submitted_at", TS, nullable=False),
        sa.Column("approved_by", sa.String(64), nullable=True),
        sa.Column("approved_at", TS, nullable=True),
        sa.Column("rejected_by", sa.String(64), nullable=True),
        sa.Column("rejected_at", TS, nullable=True),
        sa.Column("reject_reason", sa.Text, nullable=True),
        sa.Column("rolled_back_by", sa.String(64), nullable=True),
        sa.Column("rolled_back_at", TS, nullable=True),
        sa.Column("rollback_reason", sa.Text, nullable=True),
        sa.UniqueConstraint("generation", name="uq_pack_releases_generation"),
        sa.CheckConstraint(
            "status IN ('submitted', 'approved', 'rejected', 'rolled_back')",
            name="ck_pack_releases_status",
        ),
        sa.CheckConstraint(
            "approved_by IS NULL OR approved_by <> submitted_by", name="ck_pack_releases_four_eyes"
        ),
        sa.CheckConstraint(
            "status NOT IN ('approved', 'rolled_back') OR "
            "(approved_by IS NOT NULL AND generation IS NOT NULL)",
            name="ck_pack_releases_approved_has_approver",
        ),
        sa.CheckConstraint(
            "status <> 'rejected' OR (reject_reason IS NOT NULL AND reject_reason <> '')",
            name="ck_pack_releases_rejected_has_reason",
        ),
        sa.CheckConstraint(
            "status <> 'rolled_back' OR (rollback_reason IS NOT NULL AND rollback_reason <> '')",
            name="ck_pack_releases_rolled_back_has_reason",
        ),
    )
    op.create_index("ix_pack_releases_status", "pack_releases", ["status"])
    op.create_index("ix_pack_releases_digest", "pack_releases", ["digest"])
    op.create_table(
        "pack_release_files",
        sa.Column(
            "release_id",
            sa.Integer,
            sa.ForeignKey(
                "pack_releases.id", name="fk_pack_release_files_release_id_pack_releases"
            ),
            primary_key=True,
        ),
        sa.Column("path", sa.String(255), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "pack_release_reports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "release_id",
            sa.Integer,
            sa.ForeignKey(
                "pack_releases.id", name="fk_pack_release_reports_release_id_pack_releases"
            ),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
        sa.Column("added_at", TS, nullable=False),
        sa.UniqueConstraint("release_id", "name", name="uq_pack_release_reports_release_id_name"),
        sa.CheckConstraint("kind IN ('diff', 'whatif')", name="ck_pack_release_reports_kind"),
    )
    op.create_index("ix_pack_release_reports_release_id", "pack_release_reports", ["release_id"])
    if op.get_bind().dialect.name == "sqlite":
        # ADD COLUMN with an inline reference: no table rebuild, which would have to drop
        # sweep_runs while batches and entitlements refer to it (foreign keys are on).
        op.execute(
            f"ALTER TABLE sweep_runs ADD COLUMN release_id INTEGER CONSTRAINT {RUN_FK} "
            "REFERENCES pack_releases (id)"
        )
    else:
        op.add_column("sweep_runs", sa.Column("release_id", sa.Integer, nullable=True))
        op.create_foreign_key(RUN_FK, "sweep_runs", "pack_releases", ["release_id"], ["id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE sweep_runs DROP COLUMN release_id")  # SQLite ≥ 3.35
    else:
        op.drop_constraint(RUN_FK, "sweep_runs", type_="foreignkey")
        op.drop_column("sweep_runs", "release_id")
    op.drop_index("ix_pack_release_reports_release_id", table_name="pack_release_reports")
    op.drop_table("pack_release_reports")
    op.drop_table("pack_release_files")
    op.drop_index("ix_pack_releases_digest", table_name="pack_releases")
    op.drop_index("ix_pack_releases_status", table_name="pack_releases")
    op.drop_table("pack_releases")
