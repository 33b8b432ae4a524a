"""voice themes: the fitted theme models and the curated, versioned taxonomy

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 22:20:00

(Allocated first, empty, so that the surveys migrations could follow; the themes tables are added here.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "theme_models",
        sa.Column("model_id", sa.Text(), nullable=False),
        sa.Column("fitted_at", sa.DateTime(), nullable=False),
        sa.Column(
            "details",
            sa.Text(),
            nullable=False,
            comment="JSON: method, texts, k and how it was chosen, selection",
        ),
        sa.Column(
            "data",
            sa.LargeBinary(),
            nullable=False,
            comment="NumPy .npz of plain arrays (vocabulary, idf, components, thresholds), no pickles",
        ),
        sa.PrimaryKeyConstraint("model_id"),
    )
    op.create_table(
        "theme_taxonomy",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("model_id", sa.Text(), nullable=False, comment="The theme model whose topics it maps"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "action", sa.Text(), nullable=False, comment="discover | rename | merge | split | delete | rule"
        ),
        sa.Column("details", sa.Text(), nullable=False, comment="JSON: what changed"),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "themes",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("theme_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("topics", sa.Text(), nullable=False, comment="JSON array: the model's topics it gathers"),
        sa.Column("keywords", sa.Text(), nullable=False, comment="JSON array: keyword rules"),
        sa.Column("terms", sa.Text(), nullable=False, comment="JSON array: top terms"),
        sa.Column("curated", sa.Boolean(), nullable=False, comment="Changed by a user: label kept"),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("version", "theme_id"),
    )


def downgrade() -> None:
    op.drop_table("themes")
    op.drop_table("theme_taxonomy")
    op.drop_table("theme_models")
