"""Users and API tokens: plain functions over the store, shared by the CLI and the web.

Secrets are never stored. Passwords are hashed with Argon2id (argon2-cffi's defaults, re-hashed on
login when the defaults grow). API tokens are 256-bit random values, stored as their SHA-256: a
token that long cannot be guessed, so a fast hash is enough and lookup stays one indexed query.
Every function takes the current time as ``now`` (naive UTC), so tests control the clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cxloop.errors import CxloopError
from cxloop.store import schema
from cxloop.store.store import Store
from cxloop.web.roles import Role, parse_role, within

MIN_PASSWORD_LENGTH = 12
TOKEN_PREFIX = "cxl_"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AccountError(CxloopError):
    """An account operation was refused (unknown user, duplicate email, weak password, ...)."""


@dataclass(frozen=True)
class User:
    id: str
    email: str
    role: Role
    active: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None

    def public(self) -> dict[str, Any]:
        """The user as shown to people and scripts: everything but the password hash."""
        return {
            "id": self.id,
            "email": self.email,
            "role": self.role.value,
            "active": self.active,
            "created_at": self.created_at,
            "last_login_at": self.last_login_at,
        }


@dataclass(frozen=True)
class NewToken:
    """A token just created: ``token`` is shown once and never stored."""

    id: str
    token: str
    name: str | None
    user_email: str
    role: Role


def utcnow() -> dt.datetime:
    """Now, as the store keeps time: naive UTC."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def normalise_email(email: str) -> str:
    value = email.strip().lower()
    if not _EMAIL.match(value):
        raise AccountError(f"not an email address: {email!r}")
    return value


# -- passwords ----------------------------------------------------------------------------------


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters")
    return str(_hasher().hash(password))


def hash_password_quietly(password: str) -> str:
    """Hash without the length rule: re-hashing a password that was accepted before."""
    return str(_hasher().hash(password))


def generate_password() -> str:
    """A random password of 24 URL-safe characters (144 bits)."""
    return secrets.token_urlsafe(18)


# A hash to verify against when the email is unknown, so both cases take the same time.
_DUMMY_HASH: list[str] = []


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with ``password_hash=None`` spend the same time and say no."""
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher()
    if password_hash is None:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(hasher.hash(secrets.token_urlsafe(16)))
        password_hash, password = _DUMMY_HASH[0], password + "\x00never"
    try:
        return bool(hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return bool(_hasher().check_needs_rehash(password_hash))


# -- users --------------------------------------------------------------------------------------


def _user(row: Any) -> User:
    return User(
        id=row.id,
        email=row.email,
        role=Role(row.role),
        active=bool(row.active),
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


def create_user(store: Store, email: str, role: Role | str, password: str, *, now: dt.datetime) -> User:
    """Create an active user; the password is hashed here and never kept."""
    user = User(
        id=uuid.uuid4().hex,
        email=normalise_email(email),
        role=parse_role(role) if isinstance(role, str) else role,
        active=True,
        created_at=now,
        last_login_at=None,
    )
    password_hash = hash_password(password)
    t = schema.users
    with store.engine.begin() as conn:
        if conn.execute(sa.select(t.c.id).where(t.c.email == user.email)).first():
            raise AccountError(f"a user with the email {user.email} already exists")
        conn.execute(
            t.insert().values(
                id=user.id,
                email=user.email,
                password_hash=password_hash,
                role=user.role.value,
                active=True,
                created_at=now,
            )
        )
    return user


def list_users(store: Store) -> list[User]:
    t = schema.users
    with store.engine.connect() as conn:
        return [_user(r) for r in conn.execute(sa.select(t).order_by(t.c.email))]


def get_user(store: Store, email: str) -> User:
    found = find_user(store, email)
    if found is None:
        raise AccountError(f"no user with the email {email.strip().lower()}")
    return found


def find_user(store: Store, email: str) -> User | None:
    t = schema.users
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.email == email.strip().lower())).first()
    return _user(row) if row else None


def user_by_id(conn: sa.Connection, user_id: str) -> User | None:
    row = conn.execute(sa.select(schema.users).where(schema.users.c.id == user_id)).first()
    return _user(row) if row else None


def count_users(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(schema.users)).scalar_one())


def set_role(store: Store, email: str, role: Role | str) -> User:
    """Change a user's role; their sessions end, so the new role applies at once."""
    user = get_user(store, email)
    new_role = parse_role(role) if isinstance(role, str) else role
    with store.engine.begin() as conn:
        conn.execute(schema.users.update().where(schema.users.c.id == user.id).values(role=new_role.value))
        conn.execute(schema.sessions.delete().where(schema.sessions.c.user_id == user.id))
    return get_user(store, email)


def set_active(store: Store, email: str, active: bool) -> User:
    """Disable (or enable again) a user. Disabling ends their sessions; their tokens stop working."""
    user = get_user(store, email)
    with store.engine.begin() as conn:
        conn.execute(schema.users.update().where(schema.users.c.id == user.id).values(active=active))
        if not active:
            conn.execute(schema.sessions.delete().where(schema.sessions.c.user_id == user.id))
    return get_user(store, email)


def set_password(store: Store, email: str, password: str) -> User:
    """Replace a user's password and end their sessions."""
    user = get_user(store, email)
    password_hash = hash_password(password)
    with store.engine.begin() as conn:
        conn.execute(
            schema.users.update().where(schema.users.c.id == user.id).values(password_hash=password_hash)
        )
        conn.execute(schema.sessions.delete().where(schema.sessions.c.user_id == user.id))
    return user


# -- API tokens ---------------------------------------------------------------------------------


def create_token(
    store: Store, email: str, role: Role | str, *, name: str | None = None, now: dt.datetime
) -> NewToken:
    """A bearer token for ``email`` acting as ``role``, which may grant no more than the user's role."""
    user = get_user(store, email)
    token_role = parse_role(role) if isinstance(role, str) else role
    if not user.active:
        raise AccountError(f"{user.email} is disabled")
    if not within(token_role, user.role):
        raise AccountError(
            f"a token for {user.email} cannot have the role {token_role.value}: "
            f"it would grant more than the user's own role ({user.role.value})"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = secrets.token_hex(6)
    with store.engine.begin() as conn:
        conn.execute(
            schema.api_tokens.insert().values(
                id=token_id,
                token_hash=sha256(token),
                name=name,
                user_id=user.id,
                role=token_role.value,
                created_at=now,
            )
        )
    return NewToken(id=token_id, token=token, name=name, user_email=user.email, role=token_role)


def list_tokens(store: Store) -> list[dict[str, Any]]:
    """Every token, without its hash: id, name, user, role and when it was created, used, revoked."""
    t, u = schema.api_tokens, schema.users
    query = (
        sa.select(
            t.c.id,
            t.c.name,
            u.c.email.label("user"),
            t.c.role,
            t.c.created_at,
            t.c.last_used_at,
            t.c.revoked_at,
        )
        .select_from(t.join(u, u.c.id == t.c.user_id))
        .order_by(t.c.created_at, t.c.id)
    )
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def revoke_token(store: Store, token_id: str, *, now: dt.datetime) -> None:
    t = schema.api_tokens
    with store.engine.begin() as conn:
        found = conn.execute(sa.select(t.c.revoked_at).where(t.c.id == token_id)).first()
        if found is None:
            raise AccountError(f"no API token with the id {token_id!r}")
        if found.revoked_at is None:
            conn.execute(t.update().where(t.c.id == token_id).values(revoked_at=now))
