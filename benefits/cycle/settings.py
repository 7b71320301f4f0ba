"""Settings of the monthly cycle: environment variables and/or a TOML or YAML file.

Precedence, highest first: keyword arguments, ``BENEFITS_CYCLE_*`` environment variables,
the settings file, the defaults below. The database is ``BENEFITS_DATABASE_URL`` (the
ledger's variable; ``BENEFITS_CYCLE_DATABASE_URL`` wins when both are set). The file is given
by ``--config`` or ``$BENEFITS_CONFIG``; it may hold the keys at top level or in a ``[cycle]``
table (so one ``benefits.toml`` can serve several components). List settings take JSON or a
comma-separated string in the environment (``BENEFITS_CYCLE_EXPECTED_TABLES=persons,deaths``).

Example:
    >>> s = CycleSettings(landing_dir="landing", deadline_day=5)
    >>> s.deadline_day, s.timezone, s.expected_tables[0]
    (5, 'Asia/Shanghai', 'persons')
    >>> CycleSettings(expected_tables="persons, deaths").expected_tables
    ['persons', 'deaths']
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from benefits.schema import TABLE_ORDER

CONFIG_ENV = "BENEFITS_CONFIG"
ENV_PREFIX = "BENEFITS_CYCLE_"
MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
# Hourly from 08:00 to 20:00 on days 1–10: deliveries arrive on days 1–3 (handbook §6).
DEFAULT_SCHEDULE = "0 8-20 1-10 * *"

_file_values: ContextVar[dict[str, Any] | None] = ContextVar("cycle_settings_file", default=None)

TableList = Annotated[list[str], NoDecode]


class SettingsError(ValueError):
    """A settings file that cannot be read (names the file and why)."""


class CycleSettings(BaseSettings):
    """Everything the cycle needs to know; every field has a ``BENEFITS_CYCLE_<NAME>`` variable.

    Example:
        >>> CycleSettings(max_quarantine_rate=0.1).max_quarantine_rate
        0.1
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        populate_by_name=True,
    )

    # -- where things are ---------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "database_url", "BENEFITS_CYCLE_DATABASE_URL", "BENEFITS_DATABASE_URL"
        ),
        description="Ledger database URL (default: the ledger's default, a SQLite file).",
    )
    landing_dir: Path = Field(
        default=Path("landing"),
        description="Departments drop month M's extracts into LANDING/M/ (e.g. landing/2025-01).",
    )
    store_dir: Path = Field(
        default=Path("var/cycle"),
        description="Content-addressed snapshots, sweep outputs per attempt, alerts outbox.",
    )
    rules_dir: Path | None = Field(default=None, description="Rule pack (default: bundled).")
    write_traces: bool = Field(
        default=True, description="Write the traces (columnar traces/ folder) in each sweep."
    )

    # -- calendar and schedule ----------------------------------------------------------
    timezone: str = Field(
        default="Asia/Shanghai", description="Calendar of 'auto' months, deadlines, schedule."
    )
    schedule: str = Field(
        default=DEFAULT_SCHEDULE,
        description="Crontab (minute hour day month weekday) of the built-in scheduler.",
    )
    catch_up_months: int = Field(
        default=2, ge=0, le=24, description="How many past months a start or tick looks back."
    )
    serve_scheduler: bool = Field(
        default=True,
        description="Whether `benefits serve` starts the built-in scheduler in its process.",
    )
    first_month: str | None = Field(
        default=None, description="Never run a month before this one (YYYY-MM)."
    )

    # -- delivery checks ----------------------------------------------------------------
    expected_tables: TableList = Field(
        default_factory=lambda: list(TABLE_ORDER),
        description="Tables a complete delivery has.",
    )
    required_tables: TableList = Field(
        default_factory=lambda: ["persons"],
        description="Tables the cycle never proceeds without, even after the deadline.",
    )
    deadline_day: int = Field(
        default=4, ge=1, le=28, description="Day of month M after which a late table is skipped."
    )
    deadline_time: dt.time = Field(default=dt.time(12, 0), description="Time on deadline_day.")
    settle_seconds: float = Field(
        default=120, ge=0, description="A file changed more recently is still being copied."
    )

    # -- data-quality gate --------------------------------------------------------------
    max_quarantine_rate: float = Field(
        default=0.05, ge=0, le=1, description="Stop when a table quarantines more than this."
    )
    table_quarantine_rates: dict[str, float] = Field(
        default_factory=dict, description="Per-table overrides of max_quarantine_rate."
    )
    quarantine_min_rows: int = Field(
        default=20, ge=0, description="Tables with fewer rows are not rate-checked."
    )
    max_payee_change: float = Field(
        default=0.2, ge=0, description="Stop when payees change by more than this vs M-1."
    )
    max_amount_change: float = Field(
        default=0.3, ge=0, description="Stop when the pay+credit total changes more vs M-1."
    )

    # -- retries, locks -----------------------------------------------------------------
    retry_attempts: int = Field(
        default=3, ge=0, le=20, description="Retries of a transient failure."
    )
    retry_backoff_seconds: float = Field(default=30, ge=0, description="First retry delay.")
    retry_backoff_max_seconds: float = Field(default=900, ge=0, description="Largest delay.")
    lock_lease_seconds: float = Field(
        default=300, gt=0, description="A month lock not renewed for this long is taken over."
    )
    actor: str = Field(
        default="cycle",
        min_length=1,
        max_length=64,
        description="Name recorded for the cycle's ledger actions (runs, draft batches).",
    )

    # -- hooks --------------------------------------------------------------------------
    alert_command: str | None = Field(
        default=None, description="Shell command run on an operator alert (JSON on stdin)."
    )
    alert_webhook: str | None = Field(
        default=None, description="URL that receives each operator alert as a JSON POST."
    )
    alert_hook: str | None = Field(
        default=None, description="Python callable 'package.module:function' given each alert."
    )
    publish_command: str | None = Field(
        default=None, description="Shell command run when a month's alerts are published."
    )
    publish_hook: str | None = Field(
        default=None, description="Python callable given each publication."
    )
    hook_timeout_seconds: float = Field(default=30, gt=0, description="Limit per hook call.")

    # -- the audit chain's signed checkpoints (docs/security.md) --------------------------
    audit_checkpoints: Path | None = Field(
        default=None,
        description="Append-only file the scheduler signs the audit chain's head into "
        "(none: no scheduled checkpoints).",
    )
    checkpoint_minutes: float = Field(
        default=60, gt=0, description="Minutes between two scheduled audit checkpoints."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then the environment, then the settings file."""
        from_file = _file_values.get() or {}
        return (init_settings, env_settings, InitSettingsSource(settings_cls, from_file))

    @field_validator("expected_tables", "required_tables", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return yaml.safe_load(text)
            return [v.strip() for v in text.split(",") if v.strip()]
        return value

    @field_validator("expected_tables", "required_tables")
    @classmethod
    def _known_tables(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in TABLE_ORDER]
        if unknown:
            raise ValueError(
                f"unknown table(s) {', '.join(unknown)}; tables are {', '.join(TABLE_ORDER)}"
            )
        return list(dict.fromkeys(value))

    @field_validator("table_quarantine_rates")
    @classmethod
    def _rates(cls, value: dict[str, float]) -> dict[str, float]:
        for table, rate in value.items():
            if table not in TABLE_ORDER:
                raise ValueError(f"table_quarantine_rates: unknown table {table!r}")
            if not 0 <= rate <= 1:
                raise ValueError(f"table_quarantine_rates.{table} must be between 0 and 1")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from exc
        return value

    @field_validator("first_month")
    @classmethod
    def _month(cls, value: str | None) -> str | None:
        if value is not None and not MONTH_RE.match(value):
            raise ValueError(f"first_month must look like 2025-01, got {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CycleSettings:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(self.schedule, timezone=ZoneInfo(self.timezone))
        except ValueError as exc:
            raise ValueError(f"schedule {self.schedule!r} is not a valid crontab: {exc}") from exc
        missing = [t for t in self.required_tables if t not in self.expected_tables]
        if missing:
            raise ValueError(f"required table(s) {', '.join(missing)} must also be expected")
        if "persons" not in self.required_tables:
            raise ValueError("persons must be a required table: the sweep cannot run without it")
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's time zone."""
        return ZoneInfo(self.timezone)

    def quarantine_limit(self, table: str) -> float:
        """The quarantine rate above which `table` stops the cycle.

        >>> CycleSettings(table_quarantine_rates={"deaths": 0.2}).quarantine_limit("deaths")
        0.2
        """
        return self.table_quarantine_rates.get(table, self.max_quarantine_rate)

    def public(self) -> dict[str, Any]:
        """The settings as JSON-able values, with any database password hidden."""
        from benefits.ledger.db import display_url, resolve_url

        data = self.model_dump(mode="json")
        data["database_url"] = display_url(resolve_url(self.database_url))
        return data


def read_settings_file(path: Path) -> dict[str, Any]:
    """The values in a TOML or YAML settings file (its ``cycle`` table when it has one).

    Example:
        >>> read_settings_file(Path("deploy/benefits.toml"))["deadline_day"]  # doctest: +SKIP
        4
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read the settings file {path}: {exc.strerror}") from exc
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise SettingsError(f"{path}: a settings file is .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise SettingsError(f"{path}: not valid {path.suffix[1:].upper()} ({exc})") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: must hold a table of settings")
    section = data.get("cycle", data)
    if not isinstance(section, dict):
        raise SettingsError(f"{path}: [cycle] must be a table of settings")
    return section


def load_settings(config: Path | str | None = None, **overrides: Any) -> CycleSettings:
    """Settings from `overrides`, the environment and the file `config` (or ``$BENEFITS_CONFIG``).

    Relative paths in a file are taken relative to the file's folder.

    Example:
        >>> load_settings(None, deadline_day=3).deadline_day
        3
    """
    path = config or os.environ.get(CONFIG_ENV) or None
    values: dict[str, Any] = {}
    if path:
        path = Path(path)
        values = read_settings_file(path)
        for key in ("landing_dir", "store_dir", "rules_dir"):
            if isinstance(values.get(key), str) and not Path(values[key]).is_absolute():
                values[key] = str(path.parent / values[key])
    token = _file_values.set(values)
    try:
        return CycleSettings(**overrides)
    finally:
        _file_values.reset(token)
