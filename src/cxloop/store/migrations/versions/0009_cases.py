"""closed loop and distribution: follow-up cases, their notes and assignment rules; survey opt-outs,
every mail sent or attempted, and triggers after an order or a resolved ticket

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_notes",
        sa.Column("case_id", sa.Text(), nullable=False),
        sa.Column("note_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("noted_at", sa.DateTime(), nullable=False),
        sa.Column(
            "author", sa.Text(), nullable=True, comment="Email of the user, or the command that wrote it"
        ),
        sa.Column("kind", sa.Text(), nullable=False, comment="contact | note | closed"),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "note_no"),
        comment="What was done on a case: contacts with the customer, notes, the closing",
    )
    op.create_table(
        "case_rules",
        sa.Column(
            "position",
            sa.Integer(),
            autoincrement=False,
            nullable=False,
            comment="Rules are tried in this order",
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "segment", sa.Text(), nullable=True, comment="Matches customers of this segment (NULL: any)"
        ),
        sa.Column("region", sa.Text(), nullable=True, comment="Matches customers of this region (NULL: any)"),
        sa.Column("team", sa.Text(), nullable=True, comment="Round robin among the employees of this team"),
        sa.Column("assignees", sa.Text(), nullable=True, comment="Or among these emails, comma-separated"),
        sa.Column("sla_hours", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("position"),
        comment="Who works a new case and how soon: the first rule that matches the customer",
    )
    op.create_table(
        "cases",
        sa.Column("case_id", sa.Text(), nullable=False, comment="K + 12 hex digits of the response's key"),
        sa.Column("response_source", sa.Text(), nullable=False),
        sa.Column("response_id", sa.Text(), nullable=False),
        sa.Column("survey_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=False, comment="detractor, low_csat, negative_comment"),
        sa.Column("kind", sa.Text(), nullable=True, comment="The answer's kind: nps | csat | ces | custom"),
        sa.Column("score", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("scale_min", sa.Integer(), nullable=True),
        sa.Column("scale_max", sa.Integer(), nullable=True),
        sa.Column(
            "comment", sa.Text(), nullable=True, comment="The answer's comment as written (untrusted text)"
        ),
        sa.Column("responded_at", sa.DateTime(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False, comment="The assignment rule that matched"),
        sa.Column("assignee", sa.Text(), nullable=True, comment="Lower-cased email of the person working it"),
        sa.Column("sla_hours", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False, comment="First follow-up due by: opened_at + SLA"),
        sa.Column("status", sa.Text(), nullable=False, comment="open | closed"),
        sa.Column("first_contact_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("closed_by", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("root_cause", sa.Text(), nullable=True),
        sa.Column(
            "resurvey_delivery_id", sa.Text(), nullable=True, comment="The re-survey sent on closing, if any"
        ),
        sa.PrimaryKeyConstraint("case_id"),
        sa.UniqueConstraint("response_source", "response_id", name="uq_cases_response"),
        comment="Follow-up cases of unhappy answers (the closed loop), one per response",
    )
    op.create_index("ix_cases_status_due_at", "cases", ["status", "due_at"], unique=False)
    op.create_table(
        "survey_deliveries",
        sa.Column("delivery_id", sa.Text(), nullable=False),
        sa.Column("survey_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False, comment="invitation | reminder | resurvey"),
        sa.Column("channel", sa.Text(), nullable=False, comment="email"),
        sa.Column("status", sa.Text(), nullable=False, comment="pending | sent | failed | skipped"),
        sa.Column("reason", sa.Text(), nullable=True, comment="Why it failed or was skipped"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column(
            "link",
            sa.Text(),
            nullable=True,
            comment="The link mailed: survey_links.link_id (its token is never stored)",
        ),
        sa.Column("optout_hash", sa.Text(), nullable=True, comment="SHA-256 of the mail's opt-out token"),
        sa.Column("trigger_key", sa.Text(), nullable=True, comment="trigger id:event id, once per event"),
        sa.Column("parent_id", sa.Text(), nullable=True, comment="The invitation a reminder follows"),
        sa.PrimaryKeyConstraint("delivery_id"),
        sa.UniqueConstraint("optout_hash", name="uq_survey_deliveries_optout_hash"),
        sa.UniqueConstraint("trigger_key", name="uq_survey_deliveries_trigger_key"),
        comment="Every mail sent or attempted (invitations, reminders, re-surveys), with its outcome",
    )
    op.create_index(
        "ix_survey_deliveries_survey_customer",
        "survey_deliveries",
        ["survey_id", "customer_id"],
        unique=False,
    )
    op.create_table(
        "survey_optouts",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(), nullable=False),
        sa.Column("via", sa.Text(), nullable=False, comment="link | api | cli | page"),
        sa.PrimaryKeyConstraint("customer_id"),
        comment="Customers who asked never to be surveyed again: honoured for good",
    )
    op.create_table(
        "survey_triggers",
        sa.Column("trigger_id", sa.Text(), nullable=False),
        sa.Column("survey_id", sa.Text(), nullable=False),
        sa.Column("event", sa.Text(), nullable=False, comment="order | ticket_resolved"),
        sa.Column("delay_hours", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False, comment="Only events from this moment on"),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("trigger_id"),
        comment="Send a survey some time after an order or a resolved ticket",
    )


def downgrade() -> None:
    op.drop_table("survey_triggers")
    op.drop_table("survey_optouts")
    op.drop_index("ix_survey_deliveries_survey_customer", table_name="survey_deliveries")
    op.drop_table("survey_deliveries")
    op.drop_index("ix_cases_status_due_at", table_name="cases")
    op.drop_table("cases")
    op.drop_table("case_rules")
    op.drop_table("case_notes")
