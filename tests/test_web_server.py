"""The real thing: `cxloop serve` as a process, signing in over HTTP with what `cxloop users` made.

`cxloop users` and `cxloop tokens` run in-process (Typer's runner: the same commands, without
paying a second of start-up per call); the server always runs as its own process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from typer.testing import CliRunner

from cxloop.cli.app import app
from cxloop.web import accounts

CXLOOP = str(Path(sys.executable).parent / "cxloop")
SECRET = "a long enough secret"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process commands only; the server process keeps the production parameters.
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", lambda: cheap)


def cli(db: str, command: str, stdin: str | None = None) -> Any:
    """``cxloop --db DB COMMAND...`` in-process (COMMAND split on spaces)."""
    runner = CliRunner(env={"CXLOOP_DATABASE_URL": None, "COLUMNS": "200"})
    return runner.invoke(app, ["--db", db, *command.split()], input=stdin)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(*args: str, cwd: Path) -> Iterator[tuple[str, Path]]:
    """``cxloop ARGS --port P`` running until the block ends; yields its URL and its log file."""
    port, log = free_port(), cwd / "server.log"
    env = {k: v for k, v in os.environ.items() if k != "CXLOOP_DATABASE_URL"}
    with log.open("w") as out:
        process = subprocess.Popen(
            [CXLOOP, *args, "--port", str(port)],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx2.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, f"the server did not start within 60 s:\n{log.read_text()}"
            time.sleep(0.2)
        yield base, log
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def sign_in(client: httpx2.Client, email: str, password: str) -> httpx2.Response:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    form = {"email": email, "password": password, "csrf_token": token[1], "next": "/api/v1/me"}
    return client.post("/login", data=form)


def test_a_created_admin_signs_in_to_the_served_app_over_http(tmp_path: Path) -> None:
    db = str(tmp_path / "web.duckdb")
    created = cli(db, "users create Admin@Example.com --role admin")
    assert created.exit_code == 0, created.output
    (password,) = re.findall(r"Password \(shown only now; keep it safe\): (\S+)", created.stdout)
    listed = cli(db, "users list --json")
    assert json.loads(listed.stdout)[0]["email"] == "admin@example.com"
    assert password not in listed.stdout and "argon2" not in listed.stdout
    made = cli(db, "tokens create --user admin@example.com --role viewer --json")
    token = json.loads(made.stdout)["token"]

    with server("--db", db, "serve", cwd=tmp_path) as (base, log), httpx2.Client(base_url=base) as client:
        signed_in = sign_in(client, "admin@example.com", password)
        me = client.get("/api/v1/me")
        by_token = httpx2.get(base + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        users_page = client.get("/admin/users")

    assert signed_in.status_code == 303 and "httponly" in signed_in.headers["set-cookie"].lower()
    assert me.json()["email"] == "admin@example.com" and me.json()["role"] == "admin"
    assert by_token.json()["via"] == "token" and by_token.json()["role"] == "viewer"
    assert users_page.status_code == 200 and "admin@example.com" in users_page.text
    assert f"cxloop serving {base}" in log.read_text()


def test_users_and_tokens_are_managed_from_the_command_line(tmp_path: Path) -> None:
    db = str(tmp_path / "web.duckdb")
    created = cli(db, "users create bo@example.com --role Analyst --password-stdin", stdin=SECRET + "\n")
    assert created.exit_code == 0 and SECRET not in created.stdout
    made = json.loads(cli(db, "tokens create --user bo@example.com --role viewer --json").stdout)
    assert cli(db, "users set-role bo@example.com viewer").exit_code == 0
    assert cli(db, "tokens revoke " + made["id"]).exit_code == 0
    assert cli(db, "users disable bo@example.com").exit_code == 0
    disabled = cli(db, "tokens create --user bo@example.com --role viewer")
    unknown = cli(db, "users disable nobody@example.com")
    short = cli(db, "users create cy@example.com --role viewer --password-stdin", stdin="short\n")

    (user,) = json.loads(cli(db, "users list --json").stdout)
    (token,) = json.loads(cli(db, "tokens list --json").stdout)
    assert user["role"] == "viewer" and user["active"] is False and "password_hash" not in user
    assert token["revoked_at"] is not None and "token_hash" not in token and made["token"] not in str(token)
    assert disabled.exit_code == 1 and "is disabled" in disabled.stderr
    assert unknown.exit_code == 1 and "no user with the email nobody@example.com" in unknown.stderr
    assert short.exit_code == 1 and "too short" in short.stderr


def test_serve_refuses_several_workers_on_a_duckdb_file(tmp_path: Path) -> None:
    result = cli(str(tmp_path / "x.duckdb"), "serve --workers 2")

    assert result.exit_code == 1
    assert "DuckDB allows one writing process" in result.stderr and "PostgreSQL" in result.stderr


@pytest.mark.postgres
def test_several_workers_on_postgresql_share_sessions_and_the_rate_limit(
    tmp_path: Path, pg_schema_url: str
) -> None:
    created = cli(
        pg_schema_url, "users create ana@example.com --role analyst --password-stdin", stdin=SECRET + "\n"
    )
    assert created.exit_code == 0, created.output

    with server("--db", pg_schema_url, "serve", "--workers", "2", cwd=tmp_path) as (base, log):
        with httpx2.Client(base_url=base) as client:
            assert sign_in(client, "ana@example.com", SECRET).status_code == 303
            # Each request may land on either worker: the session is in the database.
            assert all(client.get("/api/v1/me").status_code == 200 for _ in range(8))
        with httpx2.Client(base_url=base) as client:
            failures = [sign_in(client, "ana@example.com", "wrong password!").status_code for _ in range(6)]

    assert failures == [400] * 5 + [429]
    assert "2 worker processes" in log.read_text()


def test_creating_the_readme_admin_twice_keeps_the_first_password(tmp_path: Path) -> None:
    # README command 1 creates admin@example.com on every run: the second run must not fail.
    db = str(tmp_path / "web.duckdb")
    first = cli(db, "users create admin@example.com --role admin --exist-ok")
    again = cli(db, "users create admin@example.com --role admin --exist-ok")
    plain = cli(db, "users create admin@example.com --role admin")

    assert first.exit_code == 0 and "Password (shown only now" in first.stdout
    assert again.exit_code == 0 and "exists already (admin)" in again.stdout and "Password" not in again.stdout
    assert plain.exit_code == 1
    assert len(json.loads(cli(db, "users list --json").stdout)) == 1
