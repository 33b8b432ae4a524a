"""subscriptions and survey invitations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def natural_key(*columns: str) -> list[sa.PrimaryKeyConstraint]:
    """PostgreSQL only, as in 0001 (DuckDB: the importer keeps keys unique; see 0001)."""
    if op.get_bind().dialect.name == "duckdb":
        return []
    return [sa.PrimaryKeyConstraint(*columns)]


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("subscription_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=True),
        sa.Column(
            "mrr",
            sa.Numeric(precision=18, scale=4),
            nullable=False,
            comment="Monthly recurring revenue while it runs",
        ),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True, comment="NULL while it runs"),
        sa.Column("row_hash", sa.Text(), nullable=False),
        sa.Column("import_id", sa.Text(), nullable=True),
        *natural_key("source", "subscription_id"),
        comment="Recurring contracts; a plan change is a new subscription (the old one ends)",
    )
    op.create_table(
        "survey_invitations",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("invitation_id", sa.Text(), nullable=False),
        sa.Column("survey_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("row_hash", sa.Text(), nullable=False),
        sa.Column("import_id", sa.Text(), nullable=True),
        *natural_key("source", "invitation_id"),
        comment="Who was asked to answer which survey, when: the denominator of the response rate",
    )


def downgrade() -> None:
    op.drop_table("survey_invitations")
    op.drop_table("subscriptions")
