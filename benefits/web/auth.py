"""Accounts, passwords, sessions, API tokens, CSRF and login throttling.

- Passwords are hashed with argon2id (``argon2-cffi``); hashes are upgraded on sign-in when
  the parameters change.
- A session is a random cookie token; the database keeps only its SHA-256, the user, an
  absolute expiry, an idle timeout and the session's CSRF token. Signing out revokes it.
- API tokens (``bnf_…``) belong to a user and carry that user's roles; only their SHA-256 is
  stored, the token itself is shown once.
- Sign-in is throttled: after `max_failed_logins` failures for a user name, or twice that
  from one address, within `throttle_minutes`, further attempts are refused until the window
  passes (the attempt is not even checked, so guessing gains nothing).
- Every change to users, roles, grants and tokens is written to the ledger's audit chain.

Example:
    >>> h = hash_password("correct horse battery")
    >>> verify_password(h, "correct horse battery"), verify_password(h, "wrong")
    (True, False)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update

from benefits.ledger import audit
from benefits.ledger.clock import as_utc
from benefits.ledger.db import Database
from benefits.ledger.errors import Conflict, InvalidInput, NotFound
from benefits.web.models import ApiToken, LoginAttempt, WebSession, WebUser
from benefits.web.permissions import allowed, check_roles
from benefits.web.settings import WebSettings

_hasher = PasswordHasher()
TOKEN_PREFIX = "bnf_"
MIN_PASSWORD = 10
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")


class AuthError(Exception):
    """Sign-in refused; the message is safe to show (never says which part was wrong)."""


class Throttled(AuthError):
    """Too many failed sign-ins; `retry_after` seconds until the next attempt is checked."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    """Who is making a request, how they signed in, and what they may do.

    >>> p = Principal(1, "wang", "王芳", ("officer",), pii=False)
    >>> p.can("batches.prepare"), p.can("batches.decide")
    (True, False)
    """

    user_id: int
    username: str
    display_name: str
    roles: tuple[str, ...]
    pii: bool = False
    via: str = "session"
    session_id: str | None = None
    csrf_token: str = field(default="", repr=False)

    def can(self, permission: str) -> bool:
        """True when one of the user's roles carries `permission`."""
        return allowed(self.roles, permission)


def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return _hasher.hash(password)


def verify_password(hashed: str, password: str) -> bool:
    """True when `password` matches `hashed` (constant-time inside argon2)."""
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def sha256(text: str) -> str:
    """Hex SHA-256 of a text (tokens are stored this way)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# A hash to verify against when the user does not exist, so timing does not reveal it.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def _check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters")


def check_username(username: str) -> str:
    """A normalised user name (lower case, letters, digits, . _ -), or InvalidInput.

    >>> check_username(" Wang.Fang ")
    'wang.fang'
    """
    name = (username or "").strip().lower()
    if not (2 <= len(name) <= 64) or not set(name) <= USERNAME_CHARS:
        raise InvalidInput(
            "a user name has 2 to 64 characters: letters, digits, dot, underscore or hyphen"
        )
    return name


class Accounts:
    """User, session and token operations on the ledger's database."""

    def __init__(self, db: Database, settings: WebSettings) -> None:
        self.db = db
        self.settings = settings

    # -- users --------------------------------------------------------------------------
    def create_user(
        self,
        username: str,
        password: str,
        roles: list[str],
        *,
        display_name: str = "",
        pii: bool = False,
        by: str = "system",
    ) -> WebUser:
        """Create a user (audited): Conflict for a taken name, InvalidInput for a weak password.

        Example:
            >>> accounts.create_user("wang.fang", "a long secret", ["officer"])  # doctest: +SKIP
        """
        name = check_username(username)
        _check_password_strength(password)
        role_list = check_roles(roles)
        now = self.db.now()
        with self.db.transaction() as s:
            if s.execute(select(WebUser).where(WebUser.username == name)).scalar_one_or_none():
                raise Conflict(f"user name {name!r} is taken")
            user = WebUser(
                username=name,
                display_name=(display_name or name).strip()[:128],
                password_hash=hash_password(password),
                roles=",".join(role_list),
                pii=bool(pii),
                active=True,
                created_by=by,
                created_at=now,
                updated_at=now,
            )
            s.add(user)
            s.flush()
            audit.append(
                s, at=now, actor=by, action="user.create", object_type="user", object_id=name,
                after={"roles": role_list, "pii": bool(pii), "display_name": user.display_name},
            )  # fmt: skip
            return user

    def update_user(
        self,
        username: str,
        *,
        by: str,
        roles: list[str] | None = None,
        pii: bool | None = None,
        active: bool | None = None,
        password: str | None = None,
    ) -> WebUser:
        """Change roles, the pii grant, active flag or password (audited; never the hash)."""
        now = self.db.now()
        with self.db.transaction() as s:
            user = s.execute(
                select(WebUser).where(WebUser.username == username)
            ).scalar_one_or_none()
            if user is None:
                raise NotFound(f"there is no user {username!r}")
            before = {"roles": user.role_list, "pii": user.pii, "active": user.active}
            if roles is not None:
                user.roles = ",".join(check_roles(roles))
            if pii is not None:
                user.pii = bool(pii)
            if active is not None:
                if not active and username == by:
                    raise Conflict("you cannot deactivate your own account")
                user.active = bool(active)
            changed_password = False
            if password:
                _check_password_strength(password)
                user.password_hash = hash_password(password)
                changed_password = True
            user.updated_at = now
            if not user.active or changed_password:
                s.execute(
                    update(WebSession).where(WebSession.user_id == user.id).values(revoked=True)
                )
            after = {"roles": user.role_list, "pii": user.pii, "active": user.active}
            if changed_password:
                after["password"] = "changed"
            audit.append(
                s, at=now, actor=by, action="user.update", object_type="user",
                object_id=user.username, before=before, after=after,
            )  # fmt: skip
            s.flush()
            return user

    def users(self) -> list[WebUser]:
        """Every user, by name."""
        with self.db.snapshot() as s:
            return list(s.execute(select(WebUser).order_by(WebUser.username)).scalars())

    def user_names(self, permission: str | None = None) -> list[str]:
        """Names of active users (for the alert assignee list); with `permission`, only those
        whose roles carry it (e.g. ``alerts.work``: who can be given an alert)."""
        with self.db.snapshot() as s:
            users = s.execute(
                select(WebUser).where(WebUser.active.is_(True)).order_by(WebUser.username)
            ).scalars()
            return [u.username for u in users
                    if permission is None or allowed(u.role_list, permission)]  # fmt: skip

    def count_users(self) -> int:
        """How many users exist (0 on a fresh ledger)."""
        with self.db.snapshot() as s:
            return int(s.execute(select(func.count()).select_from(WebUser)).scalar_one())

    # -- sign-in --------------------------------------------------------------------------
    def _throttle(self, username: str, ip: str, now: dt.datetime) -> None:
        since = now - dt.timedelta(minutes=self.settings.throttle_minutes)
        limit = self.settings.max_failed_logins
        with self.db.snapshot() as s:
            def failures(col: object, value: str) -> tuple[int, dt.datetime | None]:
                row = s.execute(
                    select(func.count(), func.min(LoginAttempt.at)).where(
                        col == value,  # type: ignore[operator]
                        LoginAttempt.at >= since,
                        LoginAttempt.success.is_(False),
                    )
                ).one()
                return int(row[0]), row[1]

            by_user = failures(LoginAttempt.username, username)
            by_ip = failures(LoginAttempt.ip, ip)
        for (count, first), cap in ((by_user, limit), (by_ip, limit * 2)):
            if count >= cap and first is not None:
                wait = as_utc(first) + dt.timedelta(minutes=self.settings.throttle_minutes) - now
                seconds = max(1, int(wait.total_seconds()))
                raise Throttled(
                    f"太多次登录失败，请 {max(1, seconds // 60)} 分钟后再试 / too many failed "
                    f"sign-ins: try again in {max(1, seconds // 60)} minute(s)",
                    seconds,
                )

    def login(self, username: str, password: str, ip: str) -> tuple[str, Principal]:
        """Check a password and open a session: (cookie token, principal), else AuthError.

        Example:
            >>> token, who = accounts.login("wang.fang", "a long secret", "127.0.0.1")
            ...                                                       # doctest: +SKIP
        """
        name = (username or "").strip().lower()[:64]
        ip = (ip or "?")[:64]
        now = self.db.now()
        self._throttle(name, ip, now)
        with self.db.snapshot() as s:
            user = s.execute(select(WebUser).where(WebUser.username == name)).scalar_one_or_none()
        ok = verify_password(user.password_hash if user else _DUMMY_HASH, password or "")
        ok = ok and user is not None and user.active
        if not ok or user is None:
            with self.db.transaction() as s:  # committed: the failure counts for throttling
                s.add(LoginAttempt(username=name, ip=ip, at=now, success=False))
            raise AuthError("用户名或密码不正确 / wrong user name or password")
        with self.db.transaction() as s:
            s.add(LoginAttempt(username=name, ip=ip, at=now, success=True))
            if _hasher.check_needs_rehash(user.password_hash):
                s.execute(
                    update(WebUser)
                    .where(WebUser.id == user.id)
                    .values(password_hash=hash_password(password))
                )
            token = secrets.token_urlsafe(32)
            session = WebSession(
                id=sha256(token),
                user_id=user.id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                last_seen_at=now,
                expires_at=now + dt.timedelta(hours=self.settings.session_hours),
                revoked=False,
                ip=ip,
            )
            s.add(session)
            s.flush()
            audit.append(
                s, at=now, actor=user.username, action="auth.login", object_type="user",
                object_id=user.username, after={"ip": ip, "via": "password"},
            )  # fmt: skip
            return token, _principal(user, "session", session.id, session.csrf_token)

    def session_principal(self, token: str) -> Principal | None:
        """The principal of a live session cookie, or None (expired, idle, revoked, unknown).

        Touches `last_seen_at` at most once a minute, so reading pages stays read-only.
        """
        if not token or len(token) > 200:
            return None
        sid = sha256(token)
        now = self.db.now()
        with self.db.snapshot() as s:
            row = s.execute(
                select(WebSession, WebUser)
                .join(WebUser, WebUser.id == WebSession.user_id)
                .where(WebSession.id == sid)
            ).one_or_none()
        if row is None:
            return None
        session, user = row
        idle = dt.timedelta(minutes=self.settings.idle_minutes)
        if (
            session.revoked
            or not user.active
            or as_utc(session.expires_at) <= now
            or as_utc(session.last_seen_at) + idle <= now
        ):
            return None
        if now - as_utc(session.last_seen_at) > dt.timedelta(minutes=1):
            with self.db.transaction() as s:
                s.execute(update(WebSession).where(WebSession.id == sid).values(last_seen_at=now))
        return _principal(user, "session", session.id, session.csrf_token)

    def logout(self, session_id: str, username: str) -> None:
        """Revoke a session (audited)."""
        with self.db.transaction() as s:
            s.execute(update(WebSession).where(WebSession.id == session_id).values(revoked=True))
            audit.append(
                s, at=self.db.now(), actor=username, action="auth.logout", object_type="user",
                object_id=username,
            )  # fmt: skip

    # -- API tokens -----------------------------------------------------------------------
    def create_token(
        self, username: str, name: str, *, by: str, days: int | None = 365
    ) -> tuple[str, ApiToken]:
        """A new API token for `username` (shown once: only its hash is kept). Audited.

        Example:
            >>> token, row = accounts.create_token("scheduler", "monthly sweep", by="admin")
            ...                                                       # doctest: +SKIP
            >>> token[:4]                                             # doctest: +SKIP
            'bnf_'
        """
        label = (name or "").strip()[:128]
        if not label:
            raise InvalidInput("give the token a name that says what uses it")
        now = self.db.now()
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.db.transaction() as s:
            user = s.execute(
                select(WebUser).where(WebUser.username == username)
            ).scalar_one_or_none()
            if user is None:
                raise NotFound(f"there is no user {username!r}")
            row = ApiToken(
                user_id=user.id,
                name=label,
                token_hash=sha256(token),
                prefix=token[:10],
                created_by=by,
                created_at=now,
                expires_at=now + dt.timedelta(days=days) if days else None,
                last_used_at=None,
                revoked=False,
            )
            s.add(row)
            s.flush()
            audit.append(
                s, at=now, actor=by, action="token.create", object_type="user",
                object_id=user.username,
                after={"token": row.prefix + "…", "name": label,
                       "expires_at": row.expires_at},
            )  # fmt: skip
            return token, row

    def revoke_token(self, token_id: int, *, by: str) -> None:
        """Revoke an API token (audited)."""
        with self.db.transaction() as s:
            row = s.get(ApiToken, token_id)
            if row is None:
                raise NotFound(f"there is no API token {token_id}")
            row.revoked = True
            user = s.get(WebUser, row.user_id)
            audit.append(
                s, at=self.db.now(), actor=by, action="token.revoke", object_type="user",
                object_id=user.username if user else str(row.user_id),
                after={"token": row.prefix + "…", "name": row.name},
            )  # fmt: skip

    def tokens(self) -> list[tuple[ApiToken, str]]:
        """Every API token with its user's name, newest first."""
        with self.db.snapshot() as s:
            rows = s.execute(
                select(ApiToken, WebUser.username)
                .join(WebUser, WebUser.id == ApiToken.user_id)
                .order_by(ApiToken.id.desc())
            ).all()
            return [(t, u) for t, u in rows]

    def token_principal(self, token: str) -> Principal | None:
        """The principal of a live API token, or None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        now = self.db.now()
        digest = sha256(token)
        with self.db.snapshot() as s:
            row = s.execute(
                select(ApiToken, WebUser)
                .join(WebUser, WebUser.id == ApiToken.user_id)
                .where(ApiToken.token_hash == digest)
            ).one_or_none()
        if row is None:
            return None
        tok, user = row
        if not hmac.compare_digest(tok.token_hash, digest):  # pragma: no cover - same value
            return None
        if tok.revoked or not user.active:
            return None
        if tok.expires_at is not None and as_utc(tok.expires_at) <= now:
            return None
        if tok.last_used_at is None or now - as_utc(tok.last_used_at) > dt.timedelta(minutes=5):
            with self.db.transaction() as s:
                s.execute(update(ApiToken).where(ApiToken.id == tok.id).values(last_used_at=now))
        return _principal(user, "token", None, "")


def _principal(user: WebUser, via: str, session_id: str | None, csrf: str) -> Principal:
    return Principal(
        user.id,
        user.username,
        user.display_name,
        tuple(user.role_list),
        pii=bool(user.pii),
        via=via,
        session_id=session_id,
        csrf_token=csrf,
    )
