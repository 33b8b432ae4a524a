"""accounts: users, sessions, API tokens, login attempts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False, comment="Lower-cased"),
        sa.Column("password_hash", sa.Text(), nullable=False, comment="Argon2id, never the password"),
        sa.Column("role", sa.Text(), nullable=False, comment="admin | manager | analyst | agent | viewer"),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
        comment="People who sign in to the web application",
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Text(), nullable=False, comment="SHA-256 of the cookie's token"),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("csrf_token", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        comment="Signed-in browsers; a row deleted is a session ended",
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False, comment="SHA-256 of the token"),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False, comment="At most the user's own capabilities"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
        comment="Bearer tokens for scripts, scoped to a role",
    )
    op.create_table(
        "login_attempts",
        sa.Column("key", sa.Text(), nullable=False, comment="email:<address> or ip:<address>"),
        sa.Column("attempted_at", sa.DateTime(), nullable=False),
        comment="Failed sign-ins in the recent window, shared by every server process",
    )
    op.create_index("ix_login_attempts_key_attempted_at", "login_attempts", ["key", "attempted_at"])


def downgrade() -> None:
    op.drop_index("ix_login_attempts_key_attempted_at", table_name="login_attempts")
    op.drop_table("login_attempts")
    op.drop_table("api_tokens")
    op.drop_index("ix_sessions_user_id", table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("users")
