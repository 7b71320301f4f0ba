"""Accounts, passwords, sessions, API tokens, CSRF and login throttling.

- Passwords are hashed with argon2id (``argon2-cffi``); hashes are upgraded on sign-in when
  the parameters change.
- A session is a random cookie token; the database keeps only its SHA-256, the user, an
  absolute expiry, an idle timeout and the session's CSRF token. Signing out revokes it.
- API tokens (``bnf_…``) belong to a user and carry that user's roles; only their SHA-256 is
  stored, the token itself is shown once.
- Sign-in backs off instead of locking out: after `max_failed_logins` failures of one account
  (or `max_failed_per_address` from one client address) since its last success, none more
  than `throttle_minutes` apart, each further attempt must wait `backoff_seconds`, doubling
  with each failure up to `backoff_cap_seconds` (`address_cap_seconds` for an address, so an office
  behind one NAT is slowed, never shut out). An attempt made while waiting is not even
  checked, so guessing gains nothing. An admin can list the back-offs and lift one.
  Failures, back-offs and lifts are written to the audit chain.
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
import math
import secrets
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

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


ACCOUNT, ADDRESS = "account", "address"
UNKNOWN_USER = "?"
LIFT_MARK = "*lifted by "  # never a user name or an address: marks a lift in the attempts


@dataclass(frozen=True)
class Backoff:
    """An account or address that must wait: its failures, until when, and the wait."""

    kind: str
    key: str
    failures: int
    until: dt.datetime
    wait_seconds: float


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
            if "admin" in before["roles"] and before["active"] and not (
                user.active and "admin" in user.role_list
            ):
                others = [u for u in s.execute(
                    select(WebUser).where(WebUser.active.is_(True), WebUser.id != user.id)
                ).scalars() if "admin" in u.role_list]  # fmt: skip
                if not others:
                    raise Conflict(
                        f"{username} is the last active administrator: make another user an "
                        "active admin first, or no one could manage users"
                    )
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
    def _failures(self, s: Session, kind: str, value: str, now: dt.datetime) -> Backoff | None:
        """The run of failures of one account or address since its last success (or lift), in
        which no two are more than `throttle_minutes` apart, nor the last from now; and the
        wait it imposes. None when under the free allowance."""
        col = LoginAttempt.username if kind == ACCOUNT else LoginAttempt.ip
        last_ok = s.execute(
            select(func.max(LoginAttempt.at)).where(col == value, LoginAttempt.success.is_(True))
        ).scalar()
        free = (self.settings.max_failed_logins if kind == ACCOUNT
                else self.settings.max_failed_per_address)  # fmt: skip
        query = select(LoginAttempt.at).where(col == value, LoginAttempt.success.is_(False))
        if last_ok is not None:
            query = query.where(LoginAttempt.at > last_ok)
        times = s.execute(query.order_by(LoginAttempt.at.desc()).limit(free + 64)).scalars()
        gap = dt.timedelta(minutes=self.settings.throttle_minutes)
        count, previous, last = 0, now, None
        for at in times:
            at = as_utc(at)
            if previous - at > gap:
                break
            count, previous, last = count + 1, at, last or at
        return self._backoff(kind, value, count, last)

    def _backoff(self, kind: str, value: str, count: int, last: Any) -> Backoff | None:
        free = (self.settings.max_failed_logins if kind == ACCOUNT
                else self.settings.max_failed_per_address)  # fmt: skip
        if last is None or count < free:
            return None
        cap = (self.settings.backoff_cap_seconds if kind == ACCOUNT
               else self.settings.address_cap_seconds)  # fmt: skip
        wait = min(cap, self.settings.backoff_seconds * 2 ** min(count - free, 40))
        return Backoff(kind, value, count, as_utc(last) + dt.timedelta(seconds=wait), wait)

    def _throttle(self, username: str, ip: str, now: dt.datetime) -> None:
        with self.db.snapshot() as s:
            found = [self._failures(s, ACCOUNT, username, now),
                     self._failures(s, ADDRESS, ip, now)]  # fmt: skip
        waits = [b for b in found if b is not None and b.until > now]
        if waits:
            seconds = max(1, math.ceil(max((b.until - now).total_seconds() for b in waits)))
            raise Throttled(
                f"登录失败次数过多，请 {seconds} 秒后再试 / too many failed sign-ins: try again "
                f"in {seconds} second(s)",
                seconds,
            )

    def login(self, username: str, password: str, ip: str) -> tuple[str, Principal]:
        """Check a password and open a session: (cookie token, principal), else AuthError.

        Failures back off exponentially per account and per address (see the module doc);
        failures and back-offs are written to the audit chain.

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
            # the wait runs from when the failure is known (after the slow hash check)
            self._record_failure(name, ip, self.db.now(), known=user is not None)
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

    def _record_failure(self, name: str, ip: str, now: dt.datetime, *, known: bool) -> None:
        """Count a failed sign-in (committed) and audit it, and the back-off it starts.

        A name that is no account is audited as ``?``: people type passwords into the name
        field, and the chain must not keep them."""
        shown = name if known else UNKNOWN_USER
        with self.db.transaction() as s:
            s.add(LoginAttempt(username=name, ip=ip, at=now, success=False))
            s.flush()
            backoffs = [self._failures(s, ACCOUNT, name, now), self._failures(s, ADDRESS, ip, now)]
            audit.append(
                s, at=now, actor=shown, action="auth.failed", object_type="user",
                object_id=shown, after={"ip": ip, "known_user": known},
            )  # fmt: skip
            for b in backoffs:
                if b is None:
                    continue
                audit.append(
                    s, at=now, actor=shown, action="auth.backoff", object_type=b.kind,
                    object_id=shown if b.kind == ACCOUNT else ip,
                    after={"failures": b.failures, "wait_seconds": b.wait_seconds,
                           "until": b.until, "ip": ip},
                )  # fmt: skip

    def locks(self) -> list[Backoff]:
        """Accounts and addresses in back-off now (failures past the free allowance since their
        last success or lift, within the window), longest wait first. Names that are no
        account are left out (they may be mistyped passwords)."""
        now = self.db.now()
        since = now - dt.timedelta(minutes=self.settings.throttle_minutes)
        out: list[Backoff] = []
        with self.db.snapshot() as s:
            users = set(s.execute(select(WebUser.username)).scalars())
            for kind, col in ((ACCOUNT, LoginAttempt.username), (ADDRESS, LoginAttempt.ip)):
                keys = s.execute(
                    select(col).where(LoginAttempt.success.is_(False), LoginAttempt.at >= since)
                    .distinct()
                ).scalars()  # fmt: skip
                for key in list(keys):
                    if kind == ACCOUNT and key not in users:
                        continue
                    b = self._failures(s, kind, key, now)
                    if b is not None:
                        out.append(b)
        return sorted(out, key=lambda b: (b.until, b.kind, b.key), reverse=True)

    def lift(self, kind: str, key: str, *, by: str) -> bool:
        """Lift the back-off of an account or address (audited); False when there was none.

        The lift is a success marker in the attempts table, so counting starts afresh."""
        if kind not in (ACCOUNT, ADDRESS):
            raise InvalidInput(f"a lock is of an {ACCOUNT} or an {ADDRESS}, not {kind!r}")
        key = (key or "").strip()[:64]
        if kind == ACCOUNT:
            key = key.lower()
        now = self.db.now()
        with self.db.transaction() as s:
            found = self._failures(s, kind, key, now)
            if found is None:
                return False
            marker = f"{LIFT_MARK}{by}"[:64]
            s.add(LoginAttempt(username=key if kind == ACCOUNT else marker,
                               ip=key if kind == ADDRESS else marker, at=now, success=True))
            audit.append(
                s, at=now, actor=by, action="auth.unlock", object_type=kind, object_id=key,
                before={"failures": found.failures, "until": found.until},
            )  # fmt: skip
            return True

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
