"""Where sentiment lives in the store: scores cached by text and model, and the fitted models.

* ``text_sentiment``: one row per (SHA-256 of the text, model name): language, supported, score,
  label. Looked up with one join against the wanted hashes, written in bulk (an Arrow table
  inserted by DuckDB; ``COPY`` on PostgreSQL), never row by row. A row already there is kept
  (``ON CONFLICT DO NOTHING``), so two processes scoring the same texts do not fail.
* ``sentiment_models``: each fitted model, as plain arrays (see
  :mod:`cxloop.voice.sentiment_model`); the most recently fitted one is the store's model.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from cxloop.store import schema
from cxloop.store.store import Store
from cxloop.voice.sentiment_model import SentimentModel

COLUMNS = ("content_hash", "language", "supported", "score", "label")
_ARROW = pa.schema(
    [
        ("content_hash", pa.string()),
        ("model", pa.string()),
        ("language", pa.string()),
        ("supported", pa.bool_()),
        ("score", pa.float64()),
        ("label", pa.string()),
        ("scored_at", pa.timestamp("us")),
    ]
)
_SELECT = (
    "SELECT s.content_hash, s.language, s.supported, s.score, s.label FROM {table} s "
    "JOIN cx_sentiment_keys k ON k.content_hash = s.content_hash WHERE s.model = {model}"
)


def lookup(store: Store, model: str, hashes: Sequence[str]) -> pd.DataFrame:
    """The cached rows of ``model`` among ``hashes`` (distinct SHA-256 hex digests)."""
    if not hashes:
        return _empty()
    keys = pa.table({"content_hash": pa.array(hashes, pa.string())})
    if store.dialect == "duckdb":
        with store.duckdb_connection() as conn:
            conn.register("cx_sentiment_keys", keys)
            try:
                sql = _SELECT.format(table="main.text_sentiment", model="?")
                return _typed(conn.execute(sql, [model]).to_arrow_table().to_pandas())
            finally:
                conn.unregister("cx_sentiment_keys")
    with _postgres(store) as pg, pg.cursor() as cur:
        cur.execute("CREATE TEMP TABLE cx_sentiment_keys (content_hash text) ON COMMIT DROP")
        with cur.copy("COPY cx_sentiment_keys (content_hash) FROM STDIN") as copy:
            copy.write("\n".join(hashes) + "\n")  # hex digests: nothing to escape
        from psycopg import sql as pgsql

        select = _SELECT.format(table="text_sentiment", model="{model}")
        template = f"COPY ({select}) TO STDOUT (FORMAT csv, HEADER true)"
        statement = pgsql.SQL(template).format(model=pgsql.Literal(model))  # type: ignore[arg-type,unused-ignore]
        out = io.BytesIO()
        with cur.copy(statement) as copy:
            for data in copy:
                out.write(data)
    table = pacsv.read_csv(
        io.BytesIO(out.getvalue()),
        convert_options=pacsv.ConvertOptions(
            column_types={"supported": pa.bool_(), "score": pa.float64(), "label": pa.string()},
            true_values=["t"],
            false_values=["f"],
            strings_can_be_null=True,
        ),
    )
    return _typed(table.to_pandas())


def insert(store: Store, model: str, scored: pd.DataFrame, now: dt.datetime) -> int:
    """Add scores of ``model`` (columns :data:`COLUMNS`); rows already cached are kept."""
    if scored.empty:
        return 0
    table = pa.table(
        {
            "content_hash": pa.array(scored["content_hash"], pa.string()),
            "model": pa.array([model] * len(scored), pa.string()),
            "language": pa.array(scored["language"], pa.string(), from_pandas=True),
            "supported": pa.array(scored["supported"], pa.bool_()),
            "score": pa.array(scored["score"], pa.float64(), from_pandas=True),
            "label": pa.array(scored["label"], pa.string(), from_pandas=True),
            "scored_at": pa.array([now.replace(tzinfo=None)] * len(scored), pa.timestamp("us")),
        },
        schema=_ARROW,
    )
    names = ", ".join(_ARROW.names)
    if store.dialect == "duckdb":
        with store.duckdb_connection() as conn:
            conn.register("cx_sentiment_new", table)
            try:
                conn.execute(
                    f"INSERT INTO main.text_sentiment ({names}) SELECT {names} FROM cx_sentiment_new "
                    "ON CONFLICT DO NOTHING"
                )
            finally:
                conn.unregister("cx_sentiment_new")
        return len(scored)
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    with _postgres(store) as pg, pg.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE cx_sentiment_new ON COMMIT DROP AS "
            f"SELECT {names} FROM text_sentiment WITH NO DATA"
        )
        with cur.copy(f"COPY cx_sentiment_new ({names}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(buffer.getbuffer())
        cur.execute(
            f"INSERT INTO text_sentiment ({names}) SELECT {names} FROM cx_sentiment_new "
            "ON CONFLICT DO NOTHING"
        )
    return len(scored)


def save_model(store: Store, model: SentimentModel, now: dt.datetime) -> None:
    """Keep a fitted model (again: its time is updated, which makes it the current one)."""
    table = schema.sentiment_models
    row = {
        "model": model.name,
        "fitted_at": now.replace(tzinfo=None),
        "languages": ",".join(sorted(model.classifiers)),
        "details": json.dumps(model.details, sort_keys=True),
        "data": model.to_bytes(),
    }
    with store.engine.begin() as conn:
        conn.execute(sa.delete(table).where(table.c.model == model.name))
        conn.execute(sa.insert(table).values(**row))


def latest_model(store: Store) -> SentimentModel | None:
    """The most recently fitted model kept in the store, or None."""
    table = schema.sentiment_models
    query = sa.select(table.c.data).order_by(table.c.fitted_at.desc(), table.c.model).limit(1)
    with store.engine.connect() as conn:
        data = conn.execute(query).scalar()
    return None if data is None else SentimentModel.from_bytes(bytes(data))


@contextmanager
def _postgres(store: Store) -> Iterator[Any]:
    """A psycopg connection from the store's pool, committed at the end (rolled back on error)."""
    raw = store.engine.raw_connection()
    pg: Any = raw.driver_connection
    try:
        yield pg
        pg.commit()
    except BaseException:
        pg.rollback()
        raise
    finally:
        raw.close()


def _empty() -> pd.DataFrame:
    return _typed(pd.DataFrame({c: [] for c in COLUMNS}))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "content_hash": frame["content_hash"].astype(object),
            "language": frame["language"].astype(object).where(frame["language"].notna(), None),
            "supported": frame["supported"].astype(bool),
            "score": frame["score"].astype("float64"),
            "label": frame["label"].astype(object).where(frame["label"].notna(), None),
        }
    )
