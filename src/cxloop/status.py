"""What the store holds: rows and time span per table, and the most recent imports."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cxloop.store import migrate, schema
from cxloop.store.store import Store

# The column that says when each table's rows happened.
TIME_COLUMNS = {
    "customers": "first_seen_at",
    "orders": "ordered_at",
    "survey_responses": "responded_at",
    "tickets": "opened_at",
    "reviews": "posted_at",
    "subscriptions": "started_at",
    "survey_invitations": "sent_at",
}


def table_summary(conn: sa.Connection) -> list[dict[str, Any]]:
    rows = []
    for table in schema.DATA_TABLES:
        time_column = TIME_COLUMNS.get(table.name)
        columns: list[Any] = [sa.func.count().label("rows")]
        if time_column:
            columns += [sa.func.min(table.c[time_column]), sa.func.max(table.c[time_column])]
        found = conn.execute(sa.select(*columns).select_from(table)).one()
        rows.append(
            {
                "table": table.name,
                "rows": int(found[0]),
                "first": found[1] if time_column else None,
                "last": found[2] if time_column else None,
            }
        )
    return rows


def recent_imports(conn: sa.Connection, limit: int) -> list[dict[str, Any]]:
    t = schema.imports
    query = (
        sa.select(
            t.c.started_at,
            t.c.entity,
            t.c.file_name,
            t.c.source,
            t.c.rows_read,
            t.c.loaded,
            t.c.updated,
            t.c.unchanged,
            t.c.rejected,
        )
        .order_by(t.c.started_at.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def store_status(store: Store, recent_imports_limit: int = 5) -> dict[str, Any]:
    """Everything ``cxloop status`` shows, as plain data."""
    limit = recent_imports_limit
    with store.engine.connect() as conn:
        return {
            "database": store.url,
            "revision": migrate.current_revision(conn),
            "tables": table_summary(conn),
            "imports": recent_imports(conn, limit),
        }
