"""Load the synthetic demo business into a store through the same import path as real data.

Each generated table is written to Parquet and imported with :func:`cxloop.ingest.import_file`,
so the demo exercises validation, hashing and bulk loading exactly as a customer's exports would.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cxloop import demo
from cxloop.ingest.pipeline import ImportOptions, ImportResult, import_file
from cxloop.store.store import Store

# Table name -> entity, in an order that satisfies references (lines need their orders).
LOAD_ORDER = (
    ("employees", "employees"),
    ("customers", "customers"),
    ("orders", "orders"),
    ("order_lines", "order-lines"),
    ("survey_responses", "responses"),
    ("tickets", "tickets"),
    ("reviews", "reviews"),
    ("subscriptions", "subscriptions"),
    ("survey_invitations", "invitations"),
)


def load_demo(
    store: Store,
    *,
    customers: int = 5_000,
    seed: int = 7,
    as_of: dt.date | None = None,
    on_table: Callable[[str], None] | None = None,
) -> list[ImportResult]:
    """Generate the demo business and import it; returns one result per imported file."""
    tables = demo.generate(customers, seed=seed, as_of=as_of)
    results = []
    with tempfile.TemporaryDirectory(prefix="cxloop-demo-") as tmp:
        for table_name, entity in LOAD_ORDER:
            if on_table:
                on_table(table_name)
            for source, part in _by_source(tables[table_name]):
                path = Path(tmp) / f"{table_name}-{source}.parquet"
                pq.write_table(part, path)
                results.append(
                    import_file(
                        store,
                        entity,
                        path,
                        ImportOptions(source=source, rejects_dir=Path(tmp) / "rejects"),
                    )
                )
    return results


def _by_source(table: pa.Table) -> list[tuple[str, pa.Table]]:
    """Split on the ``source`` column, which the importer takes as an option, not a field."""
    sources = pc.unique(table["source"]).to_pylist()
    return [
        (str(s), table.filter(pc.equal(table["source"], s)).drop_columns(["source"])) for s in sorted(sources)
    ]
