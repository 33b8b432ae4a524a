"""Smoke test of the web load benchmark (benchmarks/web_load.py): its measuring code, end to end,
at a tiny size against a real `cxloop serve` process.

The store, the user and the token are made in-process (Typer's runner) rather than by the
benchmark's `cxloop` subprocesses, which would cost a process start-up each.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxloop.cli.app import app
from cxloop.web import accounts

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import web_load  # noqa: E402


def cli(db: Path, *args: str) -> str:
    result = CliRunner(env={"CXLOOP_DATABASE_URL": None, "COLUMNS": "200"}).invoke(
        app, ["--db", str(db), *args]
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_web_load_benchmark_measures_a_served_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", lambda: cheap)
    db = tmp_path / "store.duckdb"
    cli(db, "demo", "--customers", "50")
    cli(db, "users", "create", web_load.EMAIL, "--role", "analyst")
    token = json.loads(cli(db, "tokens", "create", "--user", web_load.EMAIL, "--role", "analyst", "--json"))[
        "token"
    ]
    # The in-process commands' DuckDB connections must be gone before the server opens the file:
    # an object cycle can keep one alive until the next collection.
    gc.collect()
    # Two cheap endpoints (the dashboard page takes seconds even at this size; issue 4's figures
    # are the benchmark's job), and no waiting for the server to go idle between phases.
    options = "--customers 50 --clients 2 --requests 2 --after-repeats 1 --settle 0"
    args = web_load.parse_args([*options.split(), "--endpoints", "api-nps-values,api-rfm-segments"])

    size = {
        "customers": 50,
        "store_mb": 0.0,
        "target_p95_s": 0.3,
        **web_load.measure(db, token, tmp_path, args),
    }
    web_load.verdicts(size)
    text = web_load.render(size)

    phases = {p["endpoint"]: p for p in size["phases"]}
    assert list(phases) == ["healthz", "api nps values", "api rfm segments"]
    assert all(p["requests"] == 2 and p["errors"] == 0 and p["p95_s"] > 0 for p in phases.values())
    assert all(c["error"] is None for c in size["cold"])
    assert size["rss_mb"]["peak"] > 0 and size["server_log_problems"]["tracebacks"] == 0
    imported = size["import"]
    if not imported["skipped"]:  # the imports API is there: the import ran and the answers changed
        assert imported["ok"], imported
        assert all(e["first_error"] is None for e in imported["endpoints"])
        assert [e["answer_changed"] for e in imported["endpoints"]] == [False, True]  # NPS, RFM
    assert "api rfm segments" in text and "server RSS MB" in text and "dashboard" not in text
