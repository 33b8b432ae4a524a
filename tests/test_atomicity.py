"""All or nothing: a failure, a crash or Ctrl-C during an import leaves the store as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import rows, snapshot, write
from cxloop import Store, StoreWriteError

CXLOOP = str(Path(sys.executable).parent / "cxloop")


def _invoices(path: Path, lines: int) -> Path:
    rng = np.random.default_rng(3)
    order = np.arange(lines) // 3
    qty = rng.integers(1, 5, lines)
    with path.open("w") as fh:
        fh.write("order_id,sku,quantity,unit_price,ordered_at,customer_id\n")
        for start in range(0, lines, 100_000):
            stop = min(start + 100_000, lines)
            fh.writelines(
                f"I{order[i]},P{i % 97},{qty[i]},{(i % 50) + 0.99},2024-01-{1 + order[i] % 28:02d} 10:00,C{order[i] % 5000}\n"
                for i in range(start, stop)
            )
    return path


@pytest.mark.postgres
def test_a_failure_in_the_last_write_rolls_back_the_first(pg_schema_url: str, load, tmp_path: Path) -> None:
    store = Store.open(pg_schema_url)
    load(store, "orders", write(tmp_path / "seed.csv", "order_id,ordered_at\nO0,2024-01-01\n"))
    with store.engine.begin() as conn:  # a real failure, raised by the database itself
        conn.exec_driver_sql(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'disk full (simulated by a trigger)'; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse_lines BEFORE INSERT ON order_lines FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
    before = snapshot(store)

    with pytest.raises(StoreWriteError, match=r"nothing was written.*disk full"):
        load(store, "order-lines", _invoices(tmp_path / "lines.csv", 300))

    assert snapshot(store) == before  # the orders made from the lines were rolled back too
    store.close()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killing_an_import_leaves_all_or_nothing(sig: signal.Signals, tmp_path: Path) -> None:
    lines = 150_000
    source = _invoices(tmp_path / "lines.csv", lines)
    db = tmp_path / "store.duckdb"
    env = {**os.environ, "CXLOOP_DATABASE_URL": str(db)}
    subprocess.run(
        [
            CXLOOP,
            "import",
            "orders",
            str(write(tmp_path / "seed.csv", "order_id,ordered_at\nO0,2024-01-01\n")),
            "--rejects-dir",
            str(tmp_path / "rej"),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    started = time.monotonic()
    subprocess.run(
        [
            CXLOOP,
            "import",
            "order-lines",
            str(source),
            "--rejects-dir",
            str(tmp_path / "rej"),
            "--map",
            "product_id=sku",
            "--dry-run",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    full = time.monotonic() - started

    outcomes = set()
    for fraction in (0.2, 0.4, 0.6, 0.8, 1.5):
        proc = subprocess.Popen(
            [
                CXLOOP,
                "import",
                "order-lines",
                str(source),
                "--map",
                "product_id=sku",
                "--rejects-dir",
                str(tmp_path / "rej"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # A shell's background jobs start with SIGINT ignored; a user's terminal does not.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        time.sleep(full * fraction)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        store = Store.open(str(db))
        [(n_lines,)] = rows(store, "SELECT count(*) FROM order_lines")
        [(n_orders,)] = rows(store, "SELECT count(*) FROM orders")
        store.close()
        assert (n_lines, n_orders) in {(0, 1), (lines, 1 + lines // 3 + (lines % 3 > 0))}, err.decode()
        if n_lines == 0:
            outcomes.add("nothing")
            assert proc.returncode in (130, -signal.SIGINT, -signal.SIGKILL), err.decode()
            if sig == signal.SIGINT and proc.returncode == 130:  # -2: stopped while starting up
                assert b"interrupted: nothing was written" in err
        else:
            outcomes.add("all")
    assert "nothing" in outcomes, "no kill landed before the commit: the test proved nothing"


_LONG_QUERY_UNDER_THE_CLI = """
import sys, typer
from cxloop.cli.app import reporting_errors
from cxloop import Store

store = Store.open(sys.argv[1])
try:
    with reporting_errors(), store.engine.connect() as conn:
        print("running", flush=True)
        conn.exec_driver_sql("SELECT count(*) FROM range(100000000000) a")
except typer.Exit as exit:
    sys.exit(exit.exit_code)
"""


def test_ctrl_c_inside_any_duckdb_query_is_reported_as_an_interruption(tmp_path: Path) -> None:
    """DuckDB turns SIGINT into an error of the query it interrupts (opening the store runs
    queries too); the CLI still says 'interrupted' and exits 130, never a traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _LONG_QUERY_UNDER_THE_CLI, str(tmp_path / "store.duckdb")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"running\n"
    time.sleep(0.5)  # inside the query
    for _ in range(6):  # a signal that lands between DuckDB's interrupt checks is sent again
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=20)
            break
        except subprocess.TimeoutExpired:
            continue
    else:
        proc.kill()
        raise AssertionError("the query was never interrupted")
    assert proc.returncode == 130, err.decode()
    assert b"interrupted: nothing was written" in err
    assert b"Traceback" not in err
