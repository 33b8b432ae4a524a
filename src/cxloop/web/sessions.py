"""Sign-in: sessions, API-token look-up, and login rate limiting, kept in the database.

Everything lives in the store so that several server processes share it: a session made by one
worker is valid in the next, and failed logins count across all of them. The cookie holds a
random token; the ``sessions`` table holds only its SHA-256, so a copy of the database cannot be
replayed as cookies.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from cxloop.store import schema
from cxloop.store.store import Store
from cxloop.web.accounts import (
    AccountError,
    User,
    hash_password_quietly,
    needs_rehash,
    sha256,
    user_by_id,
    verify_password,
)
from cxloop.web.roles import Capability, Role, capabilities

# Writes of last_seen_at / last_used_at happen at most this often per session or token.
TOUCH_EVERY = dt.timedelta(seconds=60)


class InvalidCredentials(AccountError):
    """Wrong email or password (which one is not said), or a disabled account."""


class TooManyAttempts(AccountError):
    """Too many failed sign-ins for this email or address; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        minutes = max(1, -(-retry_after // 60))
        super().__init__(f"too many failed sign-ins: try again in {minutes} minute{'s' * (minutes > 1)}")


@dataclass(frozen=True)
class LoginLimits:
    per_email: int = 5
    per_ip: int = 20
    window: dt.timedelta = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class SessionPolicy:
    lifetime: dt.timedelta = dt.timedelta(hours=12)
    idle: dt.timedelta = dt.timedelta(hours=2)


@dataclass(frozen=True)
class NewSession:
    """A session just started: ``token`` goes in the cookie and is never stored."""

    token: str
    csrf_token: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class Principal:
    """Who is making a request, how they proved it, and what they may do."""

    user: User
    via: Literal["session", "token"]
    capabilities: frozenset[Capability]
    role: Role
    csrf_token: str | None = None
    session_id: str | None = None
    token_id: str | None = None
    # A session is over at this moment (its lifetime or idle limit), whoever remembers it.
    valid_until: dt.datetime | None = None

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities


# -- sessions -----------------------------------------------------------------------------------


def start_session(store: Store, user_id: str, *, now: dt.datetime, policy: SessionPolicy) -> NewSession:
    new = NewSession(
        token=secrets.token_urlsafe(32),
        csrf_token=secrets.token_urlsafe(32),
        expires_at=now + policy.lifetime,
    )
    with store.engine.begin() as conn:
        conn.execute(schema.sessions.delete().where(schema.sessions.c.expires_at <= now))
        conn.execute(
            schema.sessions.insert().values(
                id=sha256(new.token),
                user_id=user_id,
                csrf_token=new.csrf_token,
                created_at=now,
                expires_at=new.expires_at,
                last_seen_at=now,
            )
        )
    return new


def session_principal(
    store: Store, token: str, *, now: dt.datetime, policy: SessionPolicy
) -> Principal | None:
    """The signed-in user behind a session cookie, or None (unknown, expired, idle or disabled)."""
    s = schema.sessions
    session_id = sha256(token)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(s).where(s.c.id == session_id)).first()
        user = user_by_id(conn, row.user_id) if row else None
    if row is None:
        return None
    if user is None or not user.active or row.expires_at <= now or row.last_seen_at + policy.idle <= now:
        end_session(store, token)
        return None
    seen = row.last_seen_at
    if now - row.last_seen_at >= TOUCH_EVERY:
        _touch(store, s.update().where(s.c.id == session_id).values(last_seen_at=now))
        seen = now
    return Principal(
        user=user,
        via="session",
        capabilities=capabilities(user.role),
        role=user.role,
        csrf_token=row.csrf_token,
        session_id=session_id,
        valid_until=min(row.expires_at, seen + policy.idle),
    )


def end_session(store: Store, token: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(schema.sessions.delete().where(schema.sessions.c.id == sha256(token)))


def token_principal(store: Store, token: str, *, now: dt.datetime) -> Principal | None:
    """The user behind an API token, with the token's role capped by the user's current role."""
    t = schema.api_tokens
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.token_hash == sha256(token))).first()
        user = user_by_id(conn, row.user_id) if row else None
    if row is None or row.revoked_at is not None or user is None or not user.active:
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        _touch(store, t.update().where(t.c.id == row.id).values(last_used_at=now))
    role = Role(row.role)
    return Principal(
        user=user,
        via="token",
        capabilities=capabilities(role) & capabilities(user.role),
        role=role,
        token_id=row.id,
    )


def _touch(store: Store, statement: sa.Update) -> None:
    # Bookkeeping only: two requests touching the same row at once may conflict (DuckDB's
    # optimistic concurrency); losing one of the two timestamps is harmless.
    try:
        with store.engine.begin() as conn:
            conn.execute(statement)
    except sa.exc.DBAPIError:
        pass


# -- signing in, with rate limiting --------------------------------------------------------------


def _keys(email: str, ip: str | None) -> list[tuple[str, str]]:
    keys = [("email", "email:" + email.strip().lower())]
    if ip:
        keys.append(("ip", "ip:" + ip))
    return keys


def check_rate_limit(
    store: Store, email: str, ip: str | None, *, now: dt.datetime, limits: LoginLimits
) -> None:
    """Raise :class:`TooManyAttempts` when this email or address failed too often recently."""
    a = schema.login_attempts
    since = now - limits.window
    with store.engine.connect() as conn:
        for kind, key in _keys(email, ip):
            allowed = limits.per_email if kind == "email" else limits.per_ip
            count, oldest = conn.execute(
                sa.select(sa.func.count(), sa.func.min(a.c.attempted_at)).where(
                    a.c.key == key, a.c.attempted_at > since
                )
            ).one()
            if count >= allowed:
                raise TooManyAttempts(max(1, math.ceil((oldest + limits.window - now).total_seconds())))


def record_failure(
    store: Store, email: str, ip: str | None, *, now: dt.datetime, limits: LoginLimits
) -> None:
    a = schema.login_attempts
    keys = [key for _, key in _keys(email, ip)]
    with store.engine.begin() as conn:
        # Failures older than the window count for nothing: the table holds only recent ones.
        conn.execute(a.delete().where(a.c.attempted_at <= now - limits.window))
        conn.execute(a.insert(), [{"key": key, "attempted_at": now} for key in keys])


def log_in(
    store: Store,
    email: str,
    password: str,
    ip: str | None,
    *,
    now: dt.datetime,
    limits: LoginLimits,
    policy: SessionPolicy,
) -> tuple[User, NewSession]:
    """Check the password and start a session.

    Raises :class:`TooManyAttempts` before even checking the password when the email or the
    address failed ``limits`` times within the window, and :class:`InvalidCredentials` (counted
    as a failure) for an unknown email, a wrong password or a disabled account.
    """
    check_rate_limit(store, email, ip, now=now, limits=limits)
    u = schema.users
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(u).where(u.c.email == email.strip().lower())).first()
    ok = verify_password(row.password_hash if row else None, password)
    if row is None or not ok or not row.active:
        record_failure(store, email, ip, now=now, limits=limits)
        raise InvalidCredentials("wrong email or password")
    values: dict[str, object] = {"last_login_at": now}
    if needs_rehash(row.password_hash):
        values["password_hash"] = hash_password_quietly(password)
    with store.engine.begin() as conn:
        conn.execute(u.update().where(u.c.id == row.id).values(**values))
        conn.execute(
            schema.login_attempts.delete().where(schema.login_attempts.c.key == _keys(email, None)[0][1])
        )
        user = user_by_id(conn, row.id)
    assert user is not None
    return user, start_session(store, user.id, now=now, policy=policy)
