"""voice themes: the fitted theme models and the curated, versioned taxonomy

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 22:20:00

(Allocated so that the surveys migrations can follow; the themes tables are added here.)
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
