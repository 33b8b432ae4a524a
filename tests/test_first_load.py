"""First loads into empty tables take a fast path; it must give exactly what the full path gives.

The fast path parses, checks and hashes every row on its way into the empty tables, and falls
back to the full path (rolling back) when a row fails a check or a key repeats. These tests run
each file twice — into a store where the fast path may run, and into one where it may not — and
compare everything: the result, the stored rows and hashes, and the reject files.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import rows, snapshot, write
from cxloop import ImportOptions, ImportResult, Store, import_file
from cxloop.ingest import pipeline, stage
from test_atomicity import CXLOOP, _invoices

LINES = """invoice,sku,qty,price,amount,when,customer,status
I1,P1,2,1.50,,2024-01-05 10:00:00,C1,paid
I1,P2,1,,4.25,2024-01-05 10:00:00,C1,paid
I2,P1,-1,1.50,,2024-01-06T09:30:00+02:00,,refunded
I3,P3,3,0.99,,2024-01-07,C2,paid
"""
LINE_MAP = {
    "order_id": "invoice",
    "product_id": "sku",
    "quantity": "qty",
    "unit_price": "price",
    "ordered_at": "when",
    "customer_id": "customer",
}
NUMBERED = "line_no," + LINES.replace("\nI", "\n1,I").replace("\n1,I1,P2", "\n2,I1,P2")
RESPONSES = """response_id,kind,score,comment,responded_at
R1,nps,9,great,2024-03-01 10:00
R2,csat,4,,2024-03-02
R3,ces,,"no score, a partial answer",2024-03-03
"""
CUSTOMERS = """customer_id,name,segment,plan,first_seen_at
C1,Ada,smb,gold,2023-01-01
C2,Bob,,silver,
"""
TICKETS = """ticket_id,opened_at,resolved_at,is_complaint,reopens,subject
T1,2024-01-01 10:00,2024-01-02 10:00,yes,0,Broken
T2,2024-01-03,,no,,Question
"""
REVIEWS = """review_id,rating,text,posted_at
V1,5,Lovely,2024-02-01
V2,,A post,2024-02-02
"""

CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "order-lines": ("order-lines", LINES, {"maps": LINE_MAP}),
    "numbered order-lines": ("order-lines", NUMBERED, {"maps": LINE_MAP}),
    "responses": ("responses", RESPONSES, {"sets": {"survey_id": "S1"}}),
    "customers": ("customers", CUSTOMERS, {}),
    "tickets": ("tickets", TICKETS, {}),
    "reviews": ("reviews", REVIEWS, {}),
}


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts how often each path ran (``fast``: started, ``full``: ran)."""
    seen = {"fast": 0, "full": 0}
    fast, full = pipeline._fast_import, pipeline._full_import

    def counting_fast(*a: Any, **kw: Any) -> Any:
        seen["fast"] += 1
        return fast(*a, **kw)

    def counting_full(*a: Any, **kw: Any) -> Any:
        seen["full"] += 1
        return full(*a, **kw)

    monkeypatch.setattr(pipeline, "_fast_import", counting_fast)
    monkeypatch.setattr(pipeline, "_full_import", counting_full)
    return seen


def _import(
    store: Store, entity: str, path: Path, rejects: Path, *, fast: bool, **options: Any
) -> ImportResult:
    if fast:
        return import_file(store, entity, path, ImportOptions(rejects_dir=rejects, **options))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stage, "fast_path_applies", lambda *_: False)
        return import_file(store, entity, path, ImportOptions(rejects_dir=rejects, **options))


@pytest.fixture
def other(store: Store, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A second empty store on the same backend as ``store``."""
    if store.dialect == "duckdb":
        url = str(tmp_path / "other.duckdb")
        schema = None
    else:
        import psycopg

        schema = f"cx_test_{uuid.uuid4().hex[:12]}"
        base = request.getfixturevalue("pg_url")
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    opened = Store.open(url)
    try:
        yield opened
    finally:
        opened.close()
        if schema:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _same_result(a: ImportResult, b: ImportResult) -> dict[str, Any]:
    skip = {"import_id", "reject_file", "rejected_rows_file"}
    left = {k: v for k, v in a.to_dict().items() if k not in skip}
    right = {k: v for k, v in b.to_dict().items() if k not in skip}
    assert left == right
    return left


def _stored(store: Store, result: ImportResult) -> dict[str, Any]:
    """Every table, with this import's id replaced so two stores compare equal."""
    snap = snapshot(store)
    snap.pop("imports")
    return {k: [r.replace(result.import_id, "<import>") for r in v] for k, v in snap.items()}


def _files(result: ImportResult) -> tuple[str, str] | None:
    if result.reject_file is None:
        return None
    assert result.rejected_rows_file is not None
    return Path(result.reject_file).read_text(), Path(result.rejected_rows_file).read_text()


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_first_load_gives_the_full_paths_rows_and_hashes(
    case: str, store: Store, other: Store, tmp_path: Path, paths: dict[str, int]
) -> None:
    entity, text, options = CASES[case]
    path = write(tmp_path / f"{case}.csv", text)
    fast = _import(store, entity, path, tmp_path / "rej-fast", fast=True, **options)
    assert paths == {"fast": 1, "full": 0}, "the first load took the fast path"
    full = _import(other, entity, path, tmp_path / "rej-full", fast=False, **options)

    counts = _same_result(fast, full)
    assert counts["rejected"] == 0 and counts["loaded"] == counts["rows_read"]
    assert _stored(store, fast) == _stored(other, full)  # row_hash and import_id included
    # The hashes decide "unchanged": re-importing into the fast-loaded store changes nothing.
    again = _import(store, entity, path, tmp_path / "rej-fast", fast=True, **options)
    assert (again.loaded, again.updated, again.rejected) == (0, 0, 0)
    assert again.unchanged == fast.loaded


BAD_FILES = {
    "an unparseable date": LINES.replace("2024-01-07", "07/01/2024"),
    "a missing required value": LINES.replace("I3,P3", ",P3"),
    "no amount": LINES.replace("I3,P3,3,0.99,", "I3,P3,3,,"),
    "a duplicate key": NUMBERED + "1,I3,P9,1,0.99,,2024-01-07,C2,paid\n",
    "a malformed record": LINES + "I4,P1,1\n",
    "a fraction for a whole number": NUMBERED.replace("\n2,I1,P2", "\n2.5,I1,P2"),
}


@pytest.mark.parametrize("problem", sorted(BAD_FILES))
def test_a_bad_row_found_on_the_fast_path_gives_the_full_paths_rejects(
    problem: str, store: Store, other: Store, tmp_path: Path, paths: dict[str, int]
) -> None:
    path = write(tmp_path / "lines.csv", BAD_FILES[problem])
    fast = _import(store, "order-lines", path, tmp_path / "rej-fast", fast=True, maps=LINE_MAP)
    assert paths["full"] == 1, "the bad row sent the import down the full path"
    full = _import(other, "order-lines", path, tmp_path / "rej-full", fast=False, maps=LINE_MAP)

    assert _same_result(fast, full)["rejected"] > 0
    assert _files(fast) == _files(full)
    assert _stored(store, fast) == _stored(other, full)
    assert rows(store, "SELECT count(*) FROM imports") == [(1,)]


def test_a_fast_dry_run_writes_nothing(store: Store, tmp_path: Path, paths: dict[str, int]) -> None:
    before = snapshot(store)
    result = _import(
        store,
        "order-lines",
        write(tmp_path / "l.csv", LINES),
        tmp_path / "rej",
        fast=True,
        maps=LINE_MAP,
        dry_run=True,
    )
    assert paths == {"fast": 1, "full": 0}
    assert (result.dry_run, result.loaded, result.tables["orders"].loaded) == (True, 4, 3)
    assert snapshot(store) == before


def test_tables_that_hold_rows_take_the_full_path(
    store: Store, tmp_path: Path, paths: dict[str, int]
) -> None:
    _import(
        store,
        "orders",
        write(tmp_path / "o.csv", "order_id,ordered_at\nO0,2024-01-01\n"),
        tmp_path,
        fast=True,
    )
    _import(
        store, "order-lines", write(tmp_path / "l.csv", LINES), tmp_path / "rej", fast=True, maps=LINE_MAP
    )
    assert paths == {"fast": 2, "full": 1}  # orders were empty, then order_lines' orders were not
    assert rows(store, "SELECT count(*) FROM order_lines") == [(4,)]
    assert rows(store, "SELECT count(*) FROM orders") == [(4,)]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killing_a_fast_first_load_leaves_all_or_nothing(sig: signal.Signals, tmp_path: Path) -> None:
    lines = 150_000
    source = _invoices(tmp_path / "lines.csv", lines)
    db = tmp_path / "store.duckdb"
    env = {**os.environ, "CXLOOP_DATABASE_URL": str(db)}
    command = [CXLOOP, "import", "order-lines", str(source), "--map", "product_id=sku"]
    command += ["--rejects-dir", str(tmp_path / "rej")]
    subprocess.run([*command, "--dry-run"], env=env, check=True, capture_output=True)
    empty = tmp_path / "empty.duckdb"
    shutil.copy(db, empty)  # migrated, and empty: a dry run writes nothing
    started = time.monotonic()
    subprocess.run([*command, "--dry-run"], env=env, check=True, capture_output=True)
    full = time.monotonic() - started
    outcomes = set()
    for fraction in (0.2, 0.4, 0.6, 0.8, 1.5):
        shutil.copy(empty, db)  # every attempt is a first load
        proc = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        time.sleep(full * fraction)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        store = Store.open(str(db))
        [(n_lines,)] = rows(store, "SELECT count(*) FROM order_lines")
        [(n_orders,)] = rows(store, "SELECT count(*) FROM orders")
        [(n_imports,)] = rows(store, "SELECT count(*) FROM imports")
        store.close()
        assert (n_lines, n_orders, n_imports) in {(0, 0, 0), (lines, lines // 3, 1)}, err.decode()
        outcomes.add("nothing" if n_lines == 0 else "all")
    assert "nothing" in outcomes, "no kill landed before the commit: the test proved nothing"


def test_blank_values_are_found_without_trimming_every_value() -> None:
    import duckdb

    from cxloop.ingest import sqlgen

    values = [
        "",
        " ",
        "a",
        " a",
        "a ",
        "  a b  ",
        "\ta\t",
        "\u00a0a",
        "a\u00a0",
        "\u3000",
        "é",
        " é ",
        "a\n",
        None,
    ]
    conn = duckdb.connect()
    conn.execute("CREATE TABLE t (v VARCHAR)")
    conn.executemany("INSERT INTO t VALUES (?)", [[v] for v in values])
    got = conn.execute(f"SELECT v, {sqlgen.blank('v')}, NULLIF(trim(v), '') FROM t").fetchall()
    assert [(v, fast) for v, fast, _ in got] == [(v, slow) for v, _, slow in got]
    assert sqlgen.blank("trim(v)") == "NULLIF(trim(trim(v)), '')"  # expressions are evaluated once


@pytest.mark.postgres
def test_a_fast_postgresql_load_keeps_its_primary_keys(pg_schema_url: str, tmp_path: Path) -> None:
    store = Store.open(pg_schema_url)
    try:
        _import(
            store, "order-lines", write(tmp_path / "l.csv", LINES), tmp_path / "rej", fast=True, maps=LINE_MAP
        )
        keys = rows(
            store,
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'p' AND conrelid::regclass::text IN ('order_lines', 'orders') ORDER BY 1",
        )
        assert keys == [
            ("order_lines", "PRIMARY KEY (order_id, line_no)"),
            ("orders", "PRIMARY KEY (order_id)"),
        ]
    finally:
        store.close()
