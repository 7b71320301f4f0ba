"""Settings of the web application: which ledger, which data, where sweeps go, secrets.

Every setting has an environment variable (``BENEFITS_WEB_*``) so a service manager can
configure the app without a command line.

Example:
    >>> s = WebSettings(db="sqlite:///x.sqlite", data=Path("datasets/sample"), work=Path("w"))
    >>> s.session_hours, s.cache_dir.name
    (8.0, 'cache')
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from benefits.exports import ExportLimits
from benefits.resources import default_data_folder
from benefits.web.format import DEFAULT_ZONE, zone

ENV_SECRET = "BENEFITS_WEB_SECRET"
ENV_WORK = "BENEFITS_WEB_WORK"
ENV_ZONE = "BENEFITS_WEB_TIMEZONE"
ENV_TRUSTED_PROXIES = "BENEFITS_WEB_TRUSTED_PROXIES"


def _default_proxies() -> tuple[str, ...]:
    raw = os.environ.get(ENV_TRUSTED_PROXIES, "")
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def _default_secret() -> str:
    return os.environ.get(ENV_SECRET) or secrets.token_urlsafe(32)


@dataclass
class WebSettings:
    """Configuration of one app instance.

    Attributes:
        db: ledger database URL (None: ``$BENEFITS_DATABASE_URL`` or the SQLite default).
        data: departmental extracts, either one delivery or one sub-folder per month
            (``data/2025-01/persons.csv``); sweeps started from the web read it. Default
            ``$BENEFITS_DATA``, else the bundled sample (the clone's or the installed copy).
        work: where sweeps started from the web write their outputs, and the index cache.
        secret_key: signs the pre-login CSRF cookie and keys the person references in URLs.
            Set ``$BENEFITS_WEB_SECRET`` in production so links survive restarts.
        session_hours: absolute lifetime of a session; idle_minutes: idle timeout.
        secure_cookies: send cookies only over HTTPS (turn on behind TLS).
        page_size: batch items per page.
        max_failed_logins: failed sign-ins of one account (since its last success, none
            more than `throttle_minutes` apart: a quiet spell that long forgets them) before
            each further attempt waits `backoff_seconds`, doubling with each failure, at most
            `backoff_cap_seconds`.
        max_failed_per_address: the same for one client address (many accounts behind one
            office NAT share it), whose wait is capped lower, at `address_cap_seconds`.
        trusted_proxies: addresses or networks (``10.0.0.0/8``) of reverse proxies whose
            ``X-Forwarded-For`` is believed (``$BENEFITS_WEB_TRUSTED_PROXIES``, comma-separated);
            from any other peer the header is ignored.
        display_zone: the IANA time zone every time is shown in (stored times are UTC);
            ``$BENEFITS_WEB_TIMEZONE``, ``Asia/Shanghai`` by default.
        exports: output limits — bulk size, rows per export and per day, how long an approved
            export waits (``$BENEFITS_EXPORT_*``, see :mod:`benefits.exports`).
    """

    db: str | None = None
    data: Path = field(default_factory=default_data_folder)
    work: Path = field(default_factory=lambda: Path(os.environ.get(ENV_WORK, "out/web")))
    secret_key: str = field(default_factory=_default_secret)
    session_hours: float = 8.0
    idle_minutes: float = 60.0
    secure_cookies: bool = False
    page_size: int = 50
    max_failed_logins: int = 5
    throttle_minutes: float = 15.0
    max_failed_per_address: int = 20
    backoff_seconds: float = 1.0
    backoff_cap_seconds: float = 900.0
    address_cap_seconds: float = 60.0
    trusted_proxies: tuple[str, ...] = field(default_factory=_default_proxies)
    rules: Path | None = None
    display_zone: str = field(default_factory=lambda: os.environ.get(ENV_ZONE) or DEFAULT_ZONE)
    exports: ExportLimits = field(default_factory=ExportLimits.from_env)
    zone: dt.tzinfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.zone = zone(self.display_zone)  # a clear ValueError for an unknown zone
        self.trusted_proxies = tuple(self.trusted_proxies)
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted proxy {proxy!r} is not an IP address or network "
                    f"(set {ENV_TRUSTED_PROXIES} to e.g. 10.0.0.5,10.1.0.0/16)"
                ) from None
        # Absolute from the start: runs recorded by this app must not depend on the directory
        # the server was started from.
        self.data = Path(self.data).resolve()
        self.work = Path(self.work).resolve()
        if self.rules is not None:
            self.rules = Path(self.rules).resolve()

    @property
    def cache_dir(self) -> Path:
        """Folder for trace indexes and person directories (safe to delete)."""
        return Path(self.work) / "cache"

    def delivery_for(self, month: str) -> Path:
        """The extracts for `month`: ``data/<month>/`` when it exists, else ``data`` itself.

        >>> WebSettings(data=Path("/nonexistent")).delivery_for("2025-01")
        PosixPath('/nonexistent')
        """
        sub = Path(self.data) / month
        return sub if sub.is_dir() else Path(self.data)
