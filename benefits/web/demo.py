"""Seed a demo ledger from the bundled sample: users for every role, two months of sweeps.

December 2024 is swept, batched, submitted, approved by a second officer and exported to a
bank file; January 2025 is swept, batched and submitted, waiting for approval — so a
newcomer sees the dashboard's change against last month, a batch to approve, the alerts
inbox and a person's payment history.

Example:
    >>> users = seed_demo(WebSettings(db="sqlite:///out/demo/demo.sqlite"))   # doctest: +SKIP
    >>> [u.username for u in users]                                             # doctest: +SKIP
    ['officer', 'approver', 'auditor', 'admin', 'chief']
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from benefits.web.context import WebContext
from benefits.web.services import runs as run_service
from benefits.web.settings import WebSettings


@dataclass(frozen=True)
class DemoUser:
    """A demo account and its password (printed once)."""

    username: str
    display_name: str
    roles: tuple[str, ...]
    pii: bool
    password: str
    note: str


DEMO_USERS = (
    ("officer", "王芳", ("officer",), True, "经办人：测算、生成并提交批次、处理预警"),
    ("approver", "李强", ("approver",), False, "审核人：审核或退回批次"),
    ("auditor", "赵敏", ("auditor",), False, "审计：只读，个人信息脱敏"),
    ("admin", "系统管理员", ("admin",), False, "管理员：用户、角色、令牌"),
    ("chief", "陈杰", ("officer", "approver"), False, "科长（经办+审核）：演示四眼原则"),
)


def demo_password() -> str:
    """A random password that is easy to type (12 characters)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


def create_users(ctx: WebContext, passwords: dict[str, str] | None = None) -> list[DemoUser]:
    """Create the demo users (random passwords unless given)."""
    out = []
    for username, name, roles, pii, note in DEMO_USERS:
        password = (passwords or {}).get(username) or demo_password()
        ctx.accounts.create_user(username, password, list(roles), display_name=name, pii=pii,
                                 by="demo")  # fmt: skip
        out.append(DemoUser(username, name, roles, pii, password, note))
    return out


def seed_demo(settings: WebSettings, passwords: dict[str, str] | None = None,
              months: tuple[str, ...] = ("2024-12", "2025-01")) -> list[DemoUser]:  # fmt: skip
    """Fill an empty ledger with demo users, runs, batches and alerts; return the users."""
    ctx = WebContext(settings)
    ctx.ledger.init(by="demo")
    users = create_users(ctx, passwords)
    for i, month in enumerate(months):
        result = run_service.start_sweep(ctx, month, by="officer")
        batch = ctx.ledger.create_batch(result.run_id, by="officer")
        ctx.ledger.submit(batch.id, by="officer")
        if i < len(months) - 1:  # earlier months are approved and paid out
            ctx.ledger.approve(batch.id, by="approver")
            bank = Path(settings.work) / "bank" / f"{month}.csv"
            bank.parent.mkdir(parents=True, exist_ok=True)
            ctx.ledger.export(batch.id, bank, by="officer")
    ctx.ledger.close()
    return users
