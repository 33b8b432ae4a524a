"""import jobs: uploads imported in the background, their reject reports, and customer look-ups

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# A customer's rows, found by customer id (the customer page and API). PostgreSQL only: on DuckDB
# an index is an in-memory ART that slows bulk loads and cannot spill, and a scan finds a
# customer's rows fast enough (docs/web.md has the figures).
CUSTOMER_INDEXES = {
    "ix_orders_customer_id": "orders",
    "ix_survey_responses_customer_id": "survey_responses",
    "ix_tickets_customer_id": "tickets",
    "ix_reviews_customer_id": "reviews",
}


def upgrade() -> None:
    op.create_table(
        "import_jobs",
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, comment="queued | running | done | failed"),
        sa.Column("step", sa.Text(), nullable=True, comment="read | check | compare | write | report"),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False, comment="As uploaded (untrusted text)"),
        sa.Column("file_bytes", sa.BigInteger(), nullable=False),
        sa.Column(
            "stored_path", sa.Text(), nullable=True, comment="The upload on the server; NULL once deleted"
        ),
        sa.Column("options", sa.Text(), nullable=False, comment="JSON: preset, maps, sets, dry_run, ..."),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("worker", sa.Text(), nullable=True, comment="host:pid of the process running it"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("import_id", sa.Text(), nullable=True),
        sa.Column("rows_read", sa.BigInteger(), nullable=True),
        sa.Column("loaded", sa.BigInteger(), nullable=True),
        sa.Column("updated", sa.BigInteger(), nullable=True),
        sa.Column("unchanged", sa.BigInteger(), nullable=True),
        sa.Column("rejected", sa.BigInteger(), nullable=True),
        sa.Column("rejects_kept", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("job_id"),
        comment="Imports run by the server in the background, shared by every server process",
    )
    op.create_index("ix_import_jobs_created_at", "import_jobs", ["created_at"])
    op.create_table(
        "import_job_rejects",
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False, comment="Report order: by line, then field"),
        sa.Column("line", sa.BigInteger(), nullable=True),
        sa.Column("field", sa.Text(), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        comment="Reject reports of import jobs (line, field, value, reason), values as in the file",
    )
    if op.get_bind().dialect.name != "duckdb":
        # On DuckDB the rows of one job are appended together: zone maps find them.
        op.create_index("ix_import_job_rejects_job_id_seq", "import_job_rejects", ["job_id", "seq"])
        for name, table in CUSTOMER_INDEXES.items():
            op.create_index(name, table, ["customer_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "duckdb":
        for name, table in CUSTOMER_INDEXES.items():
            op.drop_index(name, table_name=table)
        op.drop_index("ix_import_job_rejects_job_id_seq", table_name="import_job_rejects")
    op.drop_table("import_job_rejects")
    op.drop_index("ix_import_jobs_created_at", table_name="import_jobs")
    op.drop_table("import_jobs")
