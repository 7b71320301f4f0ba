"""The scheduled monthly cycle: landing folder → snapshot → checks → sweep → ledger → alerts.

One idempotent unit of work per benefit month (:func:`benefits.cycle.runner.run_cycle`),
run by hand (``benefits cycle run --month 2025-01``), by the built-in scheduler
(:func:`benefits.cycle.scheduler.start_scheduler`), or by systemd, cron or Airflow calling
the same command. See ``docs/operations.md``.

This package's ``__init__`` imports nothing heavy: the ledger's migrations import
``benefits.cycle.models``.

Example:
    >>> from benefits.cycle.settings import CycleSettings
    >>> CycleSettings(landing_dir="landing").deadline_day
    4
"""
