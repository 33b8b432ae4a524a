"""Accounts in the store, on every backend: hashes at rest, roles, tokens, sessions, rate limits."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import rows
from cxloop import Store
from cxloop.web import accounts, sessions
from cxloop.web.roles import ROLE_CAPABILITIES, Capability, Role, parse_role, within

T0 = dt.datetime(2026, 1, 5, 9, 0)
PASSWORD = "correct horse battery staple"
LIMITS = sessions.LoginLimits(per_email=5, per_ip=20, window=dt.timedelta(minutes=15))
POLICY = sessions.SessionPolicy(lifetime=dt.timedelta(hours=12), idle=dt.timedelta(hours=2))


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with minimal cost: the same code path, a hundred times faster (production keeps the defaults)."""
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", lambda: cheap)


def log_in(
    store: Store, email: str, password: str, *, at: dt.datetime, ip: str = "10.0.0.1"
) -> sessions.NewSession:
    return sessions.log_in(store, email, password, ip, now=at, limits=LIMITS, policy=POLICY)[1]


def test_passwords_are_stored_only_as_argon2_hashes(store: Store) -> None:
    accounts.create_user(store, "Ana@Example.com ", "analyst", PASSWORD, now=T0)

    (row,) = rows(store, "SELECT * FROM users")
    assert not any(PASSWORD in str(value) for value in row)
    (password_hash,) = rows(store, "SELECT password_hash FROM users")[0]
    assert password_hash.startswith("$argon2id$")
    assert accounts.get_user(store, "ana@example.com").email == "ana@example.com"
    assert accounts.verify_password(password_hash, PASSWORD)
    assert not accounts.verify_password(password_hash, PASSWORD + "!")


def test_bad_accounts_are_refused_with_a_reason(store: Store) -> None:
    accounts.create_user(store, "ana@example.com", Role.ADMIN, PASSWORD, now=T0)

    with pytest.raises(accounts.AccountError, match="already exists"):
        accounts.create_user(store, "ANA@example.com", Role.VIEWER, PASSWORD, now=T0)
    with pytest.raises(accounts.AccountError, match="too short"):
        accounts.create_user(store, "bo@example.com", Role.VIEWER, "short", now=T0)
    with pytest.raises(accounts.AccountError, match="not an email"):
        accounts.create_user(store, "not-an-email", Role.VIEWER, PASSWORD, now=T0)
    with pytest.raises(ValueError, match="use one of admin, manager"):
        parse_role("owner")
    with pytest.raises(accounts.AccountError, match="no user"):
        accounts.set_role(store, "nobody@example.com", Role.ADMIN)


def test_roles_are_explicit_capability_sets_not_a_ladder() -> None:
    assert ROLE_CAPABILITIES[Role.ADMIN] == frozenset(Capability)
    assert Capability.USERS_MANAGE not in ROLE_CAPABILITIES[Role.MANAGER]
    # Neither of agent and analyst includes the other.
    assert not within(Role.AGENT, Role.ANALYST) and not within(Role.ANALYST, Role.AGENT)
    assert within(Role.VIEWER, Role.AGENT) and within(Role.AGENT, Role.MANAGER)


def test_api_tokens_are_hashed_at_rest_scoped_and_revocable(store: Store) -> None:
    accounts.create_user(store, "ana@example.com", Role.ANALYST, PASSWORD, now=T0)

    new = accounts.create_token(store, "ana@example.com", Role.VIEWER, name="ci", now=T0)

    assert new.token.startswith("cxl_") and len(new.token) > 40
    stored = rows(store, "SELECT * FROM api_tokens")
    assert not any(new.token in str(value) for row in stored for value in row)
    assert stored[0][1] == accounts.sha256(new.token)
    principal = sessions.token_principal(store, new.token, now=T0)
    assert principal is not None and principal.via == "token"
    assert principal.capabilities == ROLE_CAPABILITIES[Role.VIEWER]
    assert sessions.token_principal(store, new.token + "x", now=T0) is None
    with pytest.raises(accounts.AccountError, match="more than the user's own role"):
        accounts.create_token(store, "ana@example.com", Role.AGENT, now=T0)

    accounts.revoke_token(store, new.id, now=T0)
    assert sessions.token_principal(store, new.token, now=T0) is None
    assert accounts.list_tokens(store)[0]["revoked_at"] == T0


def test_a_token_never_outranks_its_user_even_after_a_demotion(store: Store) -> None:
    accounts.create_user(store, "ana@example.com", Role.MANAGER, PASSWORD, now=T0)
    new = accounts.create_token(store, "ana@example.com", Role.ANALYST, now=T0)

    accounts.set_role(store, "ana@example.com", Role.VIEWER)

    principal = sessions.token_principal(store, new.token, now=T0)
    assert principal is not None and principal.capabilities == ROLE_CAPABILITIES[Role.VIEWER]
    accounts.set_active(store, "ana@example.com", False)
    assert sessions.token_principal(store, new.token, now=T0) is None


def test_sessions_hash_their_token_expire_and_end(store: Store) -> None:
    accounts.create_user(store, "ana@example.com", Role.AGENT, PASSWORD, now=T0)

    new = log_in(store, "ana@example.com", PASSWORD, at=T0)

    assert rows(store, "SELECT id FROM sessions") == [(accounts.sha256(new.token),)]
    seen = sessions.session_principal(store, new.token, now=T0 + dt.timedelta(hours=1), policy=POLICY)
    assert seen is not None and seen.user.email == "ana@example.com" and seen.csrf_token == new.csrf_token
    assert accounts.get_user(store, "ana@example.com").last_login_at == T0
    # Idle for more than two hours: gone.
    assert (
        sessions.session_principal(store, new.token, now=T0 + dt.timedelta(hours=3, minutes=1), policy=POLICY)
        is None
    )
    assert rows(store, "SELECT count(*) FROM sessions") == [(0,)]

    # Active all along, but past its lifetime: gone too.
    new = log_in(store, "ana@example.com", PASSWORD, at=T0)
    for hour in range(1, 12):
        assert sessions.session_principal(store, new.token, now=T0 + dt.timedelta(hours=hour), policy=POLICY)
    assert (
        sessions.session_principal(store, new.token, now=T0 + dt.timedelta(hours=12), policy=POLICY) is None
    )


def test_a_role_change_or_disabling_ends_the_users_sessions(store: Store) -> None:
    accounts.create_user(store, "ana@example.com", Role.AGENT, PASSWORD, now=T0)
    first = log_in(store, "ana@example.com", PASSWORD, at=T0)

    accounts.set_role(store, "ana@example.com", Role.VIEWER)
    assert sessions.session_principal(store, first.token, now=T0, policy=POLICY) is None

    second = log_in(store, "ana@example.com", PASSWORD, at=T0)
    accounts.set_active(store, "ana@example.com", False)
    assert sessions.session_principal(store, second.token, now=T0, policy=POLICY) is None
    with pytest.raises(sessions.InvalidCredentials):
        log_in(store, "ana@example.com", PASSWORD, at=T0)


def test_login_is_rate_limited_per_email_in_the_database(store: Store) -> None:
    accounts.create_user(store, "ana@example.com", Role.VIEWER, PASSWORD, now=T0)

    for minute in range(5):
        with pytest.raises(sessions.InvalidCredentials):
            log_in(store, "ana@example.com", "wrong password!", at=T0 + dt.timedelta(minutes=minute))
    # The sixth attempt is refused before the password is even checked, right one or not.
    with pytest.raises(sessions.TooManyAttempts) as refused:
        log_in(store, "ana@example.com", PASSWORD, at=T0 + dt.timedelta(minutes=5))
    assert 0 < refused.value.retry_after <= 10 * 60 + 1
    assert "try again in 10 minutes" in str(refused.value)

    # Once the first failures leave the 15-minute window, the right password works again and
    # clears the count.
    log_in(store, "ana@example.com", PASSWORD, at=T0 + dt.timedelta(minutes=15, seconds=1))
    assert rows(store, "SELECT count(*) FROM login_attempts WHERE key = 'email:ana@example.com'") == [(0,)]


def test_login_is_rate_limited_per_address_across_emails(store: Store) -> None:
    limits = sessions.LoginLimits(per_email=5, per_ip=3, window=dt.timedelta(minutes=15))
    for n in range(3):
        with pytest.raises(sessions.InvalidCredentials):
            sessions.log_in(
                store, f"user{n}@example.com", "x" * 12, "10.9.9.9", now=T0, limits=limits, policy=POLICY
            )
    with pytest.raises(sessions.TooManyAttempts):
        sessions.log_in(
            store, "other@example.com", "x" * 12, "10.9.9.9", now=T0, limits=limits, policy=POLICY
        )
    with pytest.raises(sessions.InvalidCredentials):  # another address is not affected
        sessions.log_in(
            store, "other@example.com", "x" * 12, "10.1.1.1", now=T0, limits=limits, policy=POLICY
        )
