"""text sentiment: scores cached by content hash and model version; fitted sentiment models

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "text_sentiment",
        sa.Column("content_hash", sa.Text(), nullable=False, comment="SHA-256 of the text, hex"),
        sa.Column("model", sa.Text(), nullable=False, comment="Model name and version"),
        sa.Column(
            "language", sa.Text(), nullable=True, comment="ISO 639-1 code detected, NULL if undetermined"
        ),
        sa.Column("supported", sa.Boolean(), nullable=False, comment="Whether the model reads that language"),
        sa.Column("score", sa.Float(), nullable=True, comment="In [-1, 1]; NULL when not supported"),
        sa.Column(
            "label",
            sa.Text(),
            nullable=True,
            comment="negative | neutral | positive; NULL when not supported",
        ),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("content_hash", "model"),
    )
    op.create_table(
        "sentiment_models",
        sa.Column("model", sa.Text(), nullable=False, comment="Name and version, as in text_sentiment.model"),
        sa.Column("fitted_at", sa.DateTime(), nullable=False),
        sa.Column(
            "languages", sa.Text(), nullable=False, comment="ISO 639-1 codes it scores, comma-separated"
        ),
        sa.Column(
            "details", sa.Text(), nullable=False, comment="JSON: labelled texts per language, options"
        ),
        sa.Column(
            "data", sa.LargeBinary(), nullable=False, comment="NumPy .npz of plain arrays, no pickles"
        ),
        sa.PrimaryKeyConstraint("model"),
    )


def downgrade() -> None:
    op.drop_table("sentiment_models")
    op.drop_table("text_sentiment")
