"""Shared fixtures: a real store on every backend, and helpers to import files into it.

The ``store`` fixture is parametrised over DuckDB (a file in tmp_path) and PostgreSQL (a fresh
schema in the database named by ``CXLOOP_TEST_PG_URL``, default 127.0.0.1:5432/test). Without a
reachable PostgreSQL the PostgreSQL cases skip with the reason — except under ``CI=true``, where
they fail, because CI must run them.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cxloop import ImportOptions, ImportResult, Store, import_file

PG_URL = os.environ.get("CXLOOP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
# A served app opens follow-up cases in the background (cxloop.cases.sweep); the tests of other
# things keep their store as they wrote it. tests/test_cases_sweep.py turns it on.
os.environ.setdefault("CXLOOP_CASES_CHECK_SECONDS", "0")
IN_CI = os.environ.get("CI", "").lower() == "true"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def need(condition: bool, reason: str) -> None:
    """Skip when ``condition`` is false — but fail under CI, which must run everything."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def _pg_problem() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install cxloop[postgres])"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {PG_URL}: {str(exc).strip()[:200]}"


@pytest.fixture(scope="session")
def pg_url() -> str:
    problem = _pg_problem()
    need(problem is None, problem or "")
    return PG_URL


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A URL whose search_path is a brand-new schema, dropped afterwards."""
    import psycopg

    schema = f"cx_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in pg_url else "?"
    try:
        yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "duckdb":
        url = str(tmp_path / "store.duckdb")
    else:
        url = request.getfixturevalue("pg_schema_url")
    opened = Store.open(url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def duck_store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(str(tmp_path / "store.duckdb"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def load(tmp_path: Path) -> Any:
    """``load(store, entity, path, **options)``: import with rejects kept under tmp_path."""

    def _load(store: Store, entity: str, path: Path, **options: Any) -> ImportResult:
        options.setdefault("rejects_dir", tmp_path / "rejects")
        return import_file(store, entity, path, ImportOptions(**options))

    return _load


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def rows(store: Store, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def snapshot(store: Store) -> dict[str, Any]:
    """Everything a failed import must leave untouched: every table's rows, hashed."""
    out = {}
    for name in (
        "customers",
        "customer_aliases",
        "orders",
        "order_lines",
        "survey_responses",
        "tickets",
        "reviews",
        "employees",
        "subscriptions",
        "survey_invitations",
        "imports",
        "saved_mappings",
    ):
        out[name] = sorted(map(repr, rows(store, f"SELECT * FROM {name}")))
    return out


def bearer(store: Store, email: str, role: Any, *, now: Any) -> dict[str, str]:
    """Headers with a new API token of ``email`` acting as ``role`` (the web tests' caller)."""
    from cxloop.web import accounts

    return {"Authorization": f"Bearer {accounts.create_token(store, email, role, now=now).token}"}


def until_the_server_checks_the_data(client: Any) -> None:
    """Wait until a server (its TestClient) asks again whether the data changed: an import made
    outside it, as by another worker or the CLI, shows within ``data_check_seconds``."""
    time.sleep(client.app.state.settings.data_check_seconds + 0.05)


class SmtpInbox:
    """What a local SMTP server received: (envelope sender, recipients, raw message) per mail."""

    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("refused"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted"


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, int, SmtpInbox]]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd); addresses starting ``refused`` are refused."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = SmtpInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield "127.0.0.1", port, inbox
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def voice_demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed DuckDB file holding the 5,000-customer demo (seed 7, as of 2026-01-01): its
    delivery spike and unhappy customers, for the voice tests. Open it, add to its caches; never
    change its data (copy it first for that, or for a subprocess)."""
    from cxloop.demo_store import load_demo

    path = tmp_path_factory.mktemp("voice-demo") / "demo.duckdb"
    with Store.open(str(path)) as store:
        load_demo(store, customers=5_000, seed=7, as_of=dt.date(2026, 1, 1))
    return path


@pytest.fixture(scope="session")
def voice_demo_themes_file(voice_demo_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of :func:`voice_demo_file` with themes discovered in our own brand's texts (every
    kind, before 2026-01-01), as a user would after ``cxloop demo``, and their sentiment scored
    (cached). Closed; copy it to change it."""
    import shutil

    from cxloop.voice.sentiment import corpus_sentiment
    from cxloop.voice.themes import discover

    path = tmp_path_factory.mktemp("voice-demo-themes") / "demo.duckdb"
    shutil.copyfile(voice_demo_file, path)
    as_of = dt.datetime(2026, 1, 1)
    with Store.open(str(path)) as store:
        discover(store, competitors=False, end=as_of, clock=lambda: as_of)
        corpus_sentiment(store, competitors=False, end=as_of, clock=lambda: as_of)
    return path
