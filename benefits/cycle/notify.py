"""Operator alerts and publication hooks: a log line always, then whatever is configured.

An operator alert goes out when an attempt fails or is gated, when the cycle proceeds without
a late table, and when retries run out. It is logged (logger ``benefits.cycle``), it is in
the run history (the attempt's outcome and reason), and it is handed to each configured hook:

- ``alert_command``: a shell command; the alert as JSON on its standard input and in
  ``BENEFITS_ALERT_EVENT``, ``BENEFITS_ALERT_MONTH``, ``BENEFITS_ALERT_REASON`` — e.g.
  ``mail -s "benefits: $BENEFITS_ALERT_EVENT $BENEFITS_ALERT_MONTH" ops@example.org``;
- ``alert_webhook``: a URL that receives the JSON by POST (a chat or paging service);
- ``alert_hook``: a Python callable ``package.module:function`` called with the alert dict.

Publishing a month's alerts calls ``publish_command`` (with ``BENEFITS_ALERTS_FILE``) and
``publish_hook`` the same way. A hook that fails or times out is logged and never stops the
cycle.

Example:
    >>> n = Notifier(CycleSettings())
    >>> n.alert(OperatorAlert("cycle.gated", "2025-01", "error", "gate"))   # doctest: +SKIP
    []
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import os
import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from benefits.cycle.settings import CycleSettings

log = logging.getLogger("benefits.cycle")

LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}


@dataclass
class OperatorAlert:
    """Something an operator must know: event, month, severity, reason, details."""

    event: str
    month: str
    severity: str
    reason: str
    attempt: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (what hooks receive)."""
        return asdict(self)


def load_callable(ref: str) -> Callable[[dict[str, Any]], Any]:
    """The callable named ``package.module:function``.

    >>> load_callable("json:dumps")({"a": 1})
    '{"a": 1}'
    """
    module, _, name = ref.partition(":")
    if not module or not name:
        raise ValueError(f"a hook is named package.module:function, got {ref!r}")
    target: Any = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{ref} is not callable")
    return target


class Notifier:
    """Sends operator alerts and publications to the hooks in the settings."""

    def __init__(self, settings: CycleSettings) -> None:
        self.settings = settings

    def alert(self, alert: OperatorAlert) -> list[str]:
        """Log the alert and hand it to every configured hook; return the hooks' errors."""
        log.log(
            LEVELS.get(alert.severity, logging.WARNING),
            "cycle %s %s: %s",
            alert.month,
            alert.event.removeprefix("cycle."),
            alert.reason,
        )
        payload = alert.to_json()
        env = {
            "BENEFITS_ALERT_EVENT": alert.event,
            "BENEFITS_ALERT_MONTH": alert.month,
            "BENEFITS_ALERT_SEVERITY": alert.severity,
            "BENEFITS_ALERT_REASON": alert.reason,
        }
        s = self.settings
        return self._dispatch(payload, env, s.alert_command, s.alert_hook, s.alert_webhook)

    def published(self, publication: dict[str, Any]) -> list[str]:
        """Hand a month's alert publication to the publish hooks; return their errors."""
        env = {
            "BENEFITS_ALERTS_FILE": str(publication.get("alerts_file", "")),
            "BENEFITS_ALERTS_MONTH": str(publication.get("month", "")),
        }
        s = self.settings
        return self._dispatch(publication, env, s.publish_command, s.publish_hook, None)

    def _dispatch(
        self,
        payload: dict[str, Any],
        env: dict[str, str],
        command: str | None,
        hook: str | None,
        webhook: str | None,
    ) -> list[str]:
        errors: list[str] = []
        body = json.dumps(payload, ensure_ascii=False, default=str)
        timeout = self.settings.hook_timeout_seconds
        if command:
            try:
                done = subprocess.run(
                    command,
                    shell=True,
                    input=body.encode("utf-8"),
                    env={**os.environ, **env},
                    timeout=timeout,
                    capture_output=True,
                    check=False,
                )
                if done.returncode != 0:
                    tail = done.stderr.decode("utf-8", "replace").strip()[-300:]
                    errors.append(f"command exited {done.returncode}: {tail}")
            except (OSError, subprocess.SubprocessError) as exc:
                errors.append(f"command failed: {exc}")
        if hook:
            try:
                load_callable(hook)(payload)
            except Exception as exc:
                errors.append(f"hook {hook} failed: {exc!r}")
        if webhook:
            try:
                request = urllib.request.Request(
                    webhook,
                    data=body.encode("utf-8"),
                    method="POST",
                    headers={"Content-Type": "application/json; charset=utf-8"},
                )
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    response.read(1024)
            except Exception as exc:
                errors.append(f"webhook failed: {exc}")
        for error in errors:
            log.error("notification hook: %s", error)
        return errors
