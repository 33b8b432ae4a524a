"""surveys: definitions and versions, answer links, replies' progress, public-link rate limits

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "surveys",
        sa.Column("survey_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False, comment="draft | live | closed"),
        sa.Column(
            "version", sa.Integer(), nullable=False, comment="The current version, answered from now on"
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("survey_id"),
    )
    op.create_table(
        "survey_versions",
        sa.Column("survey_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False, comment="JSON, as validated"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True, comment="The user's id"),
        sa.PrimaryKeyConstraint("survey_id", "version"),
    )
    op.create_table(
        "survey_links",
        sa.Column("link_id", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False, comment="SHA-256 of the URL's token"),
        sa.Column("survey_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False, comment="personal | public"),
        sa.Column("customer_id", sa.Text(), nullable=True, comment="NULL for a public link"),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("form_token", sa.Text(), nullable=False, comment="Must come back with each answer"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("opened_at", sa.DateTime(), nullable=True, comment="First time the answer page was viewed"),
        sa.PrimaryKeyConstraint("link_id"),
        sa.UniqueConstraint("token_hash"),
        comment="Answer links; the token itself is never stored",
    )
    op.create_index("ix_survey_links_survey_id", "survey_links", ["survey_id"])
    op.create_table(
        "survey_replies",
        sa.Column("reply_id", sa.Text(), nullable=False, comment="survey_responses.response_id"),
        sa.Column("survey_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Text(), nullable=True),
        sa.Column("customer_id", sa.Text(), nullable=True),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("language", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False, comment="When the score was given"),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("editable_until", sa.DateTime(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False, comment="Writes so far; in the data fingerprint"),
        sa.PrimaryKeyConstraint("reply_id"),
        comment="Each answer's progress: started (score), completed (the rest), which version",
    )
    op.create_index("ix_survey_replies_survey_id", "survey_replies", ["survey_id"])
    op.create_table(
        "survey_limits",
        sa.Column("key", sa.Text(), nullable=False, comment="<link_id>:ip:<address>"),
        sa.Column("answered_at", sa.DateTime(), nullable=False),
        comment="Recent answers through public links, for rate limiting across server processes",
    )
    op.create_index("ix_survey_limits_key_answered_at", "survey_limits", ["key", "answered_at"])


def downgrade() -> None:
    op.drop_index("ix_survey_limits_key_answered_at", table_name="survey_limits")
    op.drop_table("survey_limits")
    op.drop_index("ix_survey_replies_survey_id", table_name="survey_replies")
    op.drop_table("survey_replies")
    op.drop_index("ix_survey_links_survey_id", table_name="survey_links")
    op.drop_table("survey_links")
    op.drop_table("survey_versions")
    op.drop_table("surveys")
