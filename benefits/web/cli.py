"""``benefits serve`` (the web application) and ``benefits users`` (accounts), for the CLI.

Only typer is imported at module level; FastAPI and uvicorn load when a command runs, so the
rest of the CLI stays fast.

Register in ``benefits/cli.py``::

    def _register_web() -> None:
        from benefits.web.cli import serve, users_app

        app.command("serve")(serve)
        app.add_typer(users_app, name="users")

Example:
    $ benefits serve --demo                      # fresh demo ledger, passwords printed once
    $ benefits serve --db postgresql+psycopg://ledger@db/benefits --data /srv/extracts
    $ benefits users add admin --role admin      # asks for the password
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from benefits.web.settings import WebSettings

users_app = typer.Typer(
    name="users",
    help="Web application accounts: create the first administrator, reset passwords.",
    no_args_is_help=True,
    add_completion=False,
)

DEMO_DIR = Path("out/demo")


def _settings(**values: Any) -> WebSettings:
    """The web settings, or exit 2 with one line saying which value is wrong."""
    from benefits.web.settings import WebSettings

    try:
        return WebSettings(**values)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def serve(
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed a fresh SQLite demo ledger from the sample.")
    ] = False,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    db: Annotated[
        str | None,
        typer.Option("--db", envvar="BENEFITS_DATABASE_URL", show_default=False,
                     help="Ledger database URL (default sqlite:///benefits.sqlite)."),
    ] = None,
    data: Annotated[
        Path | None, typer.Option(envvar="BENEFITS_DATA", show_default=False,
                                  help="Departmental extracts (or one sub-folder per month) "
                                  "that sweeps started from the web read (default: the "
                                  "bundled sample).")
    ] = None,
    work: Annotated[
        Path | None,
        typer.Option(envvar="BENEFITS_WEB_WORK",
                     help="Where web-started sweeps and caches go (default out/web)."),
    ] = None,
    secure_cookies: Annotated[
        bool, typer.Option(help="Send cookies over HTTPS only (behind TLS).")
    ] = False,
    timezone: Annotated[
        str | None,
        typer.Option(envvar="BENEFITS_WEB_TIMEZONE", show_default=False,
                     help="Time zone times are shown in (IANA name; default Asia/Shanghai)."),
    ] = None,
    trusted_proxies: Annotated[
        str | None,
        typer.Option(envvar="BENEFITS_WEB_TRUSTED_PROXIES", show_default=False,
                     help="Comma-separated addresses or networks of reverse proxies whose "
                     "X-Forwarded-For is believed for sign-in throttling (default: none)."),
    ] = None,
) -> None:
    """Start the officers' and auditors' web application (FastAPI + uvicorn)."""
    import uvicorn

    from benefits.months import MonthError
    from benefits.resources import default_data_folder
    from benefits.web.app import create_app

    if demo:
        work = Path(work or DEMO_DIR).resolve()  # absolute: the ledger outlives the cwd
        if db is None:
            if Path(work).exists():
                shutil.rmtree(work)
            Path(work).mkdir(parents=True)
            db = f"sqlite:///{Path(work) / 'demo.sqlite'}"
    settings = _settings(db=db, data=data or default_data_folder(), work=work or Path("out/web"),
                         secure_cookies=secure_cookies,
                         **({"display_zone": timezone} if timezone else {}),
                         **({"trusted_proxies": tuple(p.strip() for p in trusted_proxies.split(",")
                                                      if p.strip())}
                            if trusted_proxies is not None else {}))  # fmt: skip
    if demo:
        from benefits.errors import BenefitsError
        from benefits.ledger.errors import LedgerError
        from benefits.web.demo import seed_demo

        typer.echo(f"Seeding the demo ledger from {settings.data} (two months of sweeps)…")
        try:
            users = seed_demo(settings)
        except (BenefitsError, LedgerError, OSError) as exc:
            typer.echo(f"error: the demo could not be seeded: {exc}", err=True)
            raise typer.Exit(2) from exc
        typer.echo("\nDemo accounts (passwords are shown only now):")
        for u in users:
            typer.echo(f"  {u.username:<9} {u.password}   {'+'.join(u.roles):<16}"
                       f"{' pii' if u.pii else '    '}  {u.note}")  # fmt: skip
        typer.echo("")
    from benefits.keys import KeyProblem

    try:
        app = create_app(settings)
    except (MonthError, KeyProblem) as exc:  # a bad horizon, a missing or unreadable key
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if app.state.ctx.accounts.count_users() == 0:
        typer.echo("No accounts yet: create the first one with "
                   "`benefits users add NAME --role admin`.", err=True)  # fmt: skip
    typer.echo(f"Open http://{host}:{port}/  (ledger {app.state.ctx.ledger.url})")
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)


@users_app.command("add")
def add_user(
    username: Annotated[str, typer.Argument(help="User name (letters, digits, . _ -).")],
    role: Annotated[
        list[str], typer.Option("--role", help="officer, approver, auditor, admin, policy.")
    ],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    pii: Annotated[bool, typer.Option(help="Grant access to unmasked personal data.")] = False,
    db: Annotated[str | None, typer.Option("--db", envvar="BENEFITS_DATABASE_URL",
                                           show_default=False)] = None,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
) -> None:
    """Create a web account (audited as done by `cli`)."""
    from benefits.ledger.errors import LedgerError
    from benefits.web.context import WebContext

    ctx = WebContext(_settings(db=db))
    try:
        ctx.ledger.init(by="cli")
        ctx.accounts.create_user(username, password, role, display_name=name, pii=pii, by="cli")
    except (LedgerError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"created {username} ({', '.join(role)}{', pii' if pii else ''})")
