"""The command line, run as a user runs it: a real process, real files, exit codes, JSON."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write
from cxloop.store import migrate

CXLOOP = str(Path(sys.executable).parent / "cxloop")


def cxloop(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CXLOOP, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_help_lists_the_command_groups(tmp_path: Path) -> None:
    result = cxloop("--help", cwd=tmp_path)

    assert result.returncode == 0
    for group in ("demo", "status", "import", "db", "presets", "mappings"):
        assert group in result.stdout


def test_import_help_lists_the_entity_fields(tmp_path: Path) -> None:
    result = cxloop("import", "responses", "--help", cwd=tmp_path)

    assert result.returncode == 0
    assert "response_id" in result.stdout and "score" in result.stdout


def test_the_database_defaults_to_cxloop_duckdb_in_the_working_folder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CXLOOP_DATABASE_URL"}
    result = subprocess.run(
        [CXLOOP, "status", "--json"], cwd=tmp_path, capture_output=True, text=True, env=env
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["database"].endswith("cxloop.duckdb")
    assert (tmp_path / "cxloop.duckdb").exists()


def test_db_option_wins_over_the_environment(tmp_path: Path) -> None:
    result = cxloop(
        "--db",
        str(tmp_path / "a.duckdb"),
        "status",
        "--json",
        cwd=tmp_path,
        env={"CXLOOP_DATABASE_URL": str(tmp_path / "b.duckdb")},
    )

    assert json.loads(result.stdout)["database"].endswith("a.duckdb")
    env_only = cxloop(
        "status", "--json", cwd=tmp_path, env={"CXLOOP_DATABASE_URL": str(tmp_path / "b.duckdb")}
    )
    assert json.loads(env_only.stdout)["database"].endswith("b.duckdb")


def test_import_exit_codes_and_json(tmp_path: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    good = write(tmp_path / "good.csv", "order_id,ordered_at\nO1,2024-01-01\n")
    bad_rows = write(tmp_path / "bad.csv", "order_id,ordered_at\nO2,2024-01-01\nO3,soon\n")

    ok = cxloop("--db", db, "import", "orders", str(good), "--json", cwd=tmp_path)
    rejected = cxloop("--db", db, "import", "orders", str(bad_rows), "--json", cwd=tmp_path)
    failed = cxloop("--db", db, "import", "orders", str(tmp_path / "missing.csv"), cwd=tmp_path)
    usage = cxloop("--db", db, "import", "orders", cwd=tmp_path)

    assert ok.returncode == 0 and json.loads(ok.stdout)["loaded"] == 1
    assert rejected.returncode == 3
    report = json.loads(rejected.stdout)
    assert (report["loaded"], report["rejected"]) == (1, 1)
    assert report["reject_sample"][0]["line"] == 3
    assert failed.returncode == 1 and "missing.csv: no such file" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert usage.returncode == 2


def test_a_bad_option_value_is_a_clear_error(tmp_path: Path) -> None:
    result = cxloop(
        "--db",
        str(tmp_path / "s.duckdb"),
        "import",
        "orders",
        str(tmp_path / "x.csv"),
        "--map",
        "no-equals-sign",
        cwd=tmp_path,
    )

    assert result.returncode == 1 and "write it as FIELD=VALUE" in result.stderr


def test_status_json_counts_rows_and_lists_imports(tmp_path: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    cxloop(
        "--db",
        db,
        "import",
        "orders",
        str(write(tmp_path / "o.csv", "order_id,ordered_at\nO1,2024-01-01\n")),
        cwd=tmp_path,
    )

    status = json.loads(cxloop("--db", db, "status", "--json", cwd=tmp_path).stdout)

    assert {t["table"]: t["rows"] for t in status["tables"]}["orders"] == 1
    assert status["imports"][0]["entity"] == "orders" and status["imports"][0]["loaded"] == 1
    assert status["revision"] == migrate.head_revision()


def test_presets_list_json_and_csv_neutralises_formulas(tmp_path: Path) -> None:
    listed = cxloop("presets", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0 and isinstance(json.loads(listed.stdout), list)

    db = str(tmp_path / "s.duckdb")
    cxloop(
        "--db",
        db,
        "import",
        "orders",
        str(write(tmp_path / "o.csv", "order_id,ordered_at\n=1+1,2024-01-01\n")),
        "--save-mapping",
        "=cmd|' /C calc'!A0",
        cwd=tmp_path,
    )
    exported = cxloop("--db", db, "mappings", "list", "--csv", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    [row] = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert row["name"] == "'=cmd|' /C calc'!A0"


def test_demo_loads_a_coherent_business(tmp_path: Path) -> None:
    result = cxloop(
        "--db", str(tmp_path / "demo.duckdb"), "demo", "--customers", "300", "--json", cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert {r["table"] for r in loaded} >= {
        "customers",
        "orders",
        "order-lines",
        "responses",
        "tickets",
        "reviews",
    }
    assert all(r["rejected"] == 0 for r in loaded)
    customers = next(r for r in loaded if r["table"] == "customers")
    assert customers["loaded"] == 300


def test_demo_twice_with_the_same_seed_changes_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "demo.duckdb")
    cxloop("--db", db, "demo", "--customers", "100", cwd=tmp_path)

    again = json.loads(cxloop("--db", db, "demo", "--customers", "100", "--json", cwd=tmp_path).stdout)

    assert all(r["loaded"] == 0 and r["updated"] == 0 for r in again)


@pytest.mark.postgres
def test_the_cli_works_on_postgresql(pg_schema_url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", "order_id,ordered_at\nO1,2024-01-01\n")
    result = cxloop("--db", pg_schema_url, "import", "orders", str(path), "--json", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    status = json.loads(cxloop("--db", pg_schema_url, "status", "--json", cwd=tmp_path).stdout)
    assert {t["table"]: t["rows"] for t in status["tables"]}["orders"] == 1
