"""Alembic migrations of the ledger schema (run them with `benefits ledger init`)."""
