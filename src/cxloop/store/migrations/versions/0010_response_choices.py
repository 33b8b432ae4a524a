"""survey responses: a choice question's answer in its own column, ``choices``, out of ``comment``

Until now cxloop stored the ids a respondent chose (single and multiple choice questions) in
``survey_responses.comment``, where everything reading customer text (the voice corpus: sentiment,
themes; the closed loop's comment judge) took them for something the customer wrote. The answers
already stored move: for every survey version with choice questions, the rows of cxloop's own
replies to that version and question get their ``comment`` as ``choices`` and no comment.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 00:30:00
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CHOICE_TYPES = ("single", "multiple")


def upgrade() -> None:
    op.add_column(
        "survey_responses",
        sa.Column(
            "choices",
            sa.Text(),
            nullable=True,
            comment="A choice question's answer: the chosen choices' ids, comma-separated",
        ),
    )
    conn = op.get_bind()
    versions = conn.execute(sa.text("SELECT survey_id, version, definition FROM survey_versions")).all()
    move = sa.text(
        "UPDATE survey_responses SET choices = comment, comment = NULL"
        " WHERE source = 'cxloop' AND kind = 'custom' AND survey_id = :sid AND question_id = :qid"
        " AND comment IS NOT NULL AND response_id IN"
        " (SELECT reply_id FROM survey_replies WHERE survey_id = :sid AND version = :version)"
    )
    for survey_id, version, definition in versions:
        questions = json.loads(definition).get("questions") or []
        for q in questions:
            if q.get("type") in CHOICE_TYPES:
                conn.execute(move, {"sid": survey_id, "qid": q["id"], "version": version})


def downgrade() -> None:
    op.execute("UPDATE survey_responses SET comment = choices WHERE choices IS NOT NULL AND comment IS NULL")
    op.drop_column("survey_responses", "choices")
