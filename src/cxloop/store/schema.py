"""The canonical schema: one SQLAlchemy ``MetaData`` shared by DuckDB and PostgreSQL.

Keys are the business's natural keys, never surrogates, so that importing the same export twice
is idempotent and an updated export updates rows in place:

* customers and orders use the business's own ids (one id space per store: a customer is the same
  person in the shop, the help desk and the survey tool);
* order lines are keyed by (order_id, line_no);
* survey responses, tickets and reviews come from many tools whose ids may collide, so their key
  includes ``source`` (the tool or export they came from).

Every imported table carries ``row_hash`` (md5 of the row's content, computed at import) and
``import_id`` (the import that last wrote the row). Timestamps are naive and in UTC. Money and
quantities are exact decimals. Free attributes are JSON text, portable across both engines.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

MONEY = sa.Numeric(18, 4)


def _provenance() -> list[sa.Column[object]]:
    return [
        sa.Column("row_hash", sa.Text, nullable=False),
        sa.Column("import_id", sa.Text, nullable=True),
    ]


customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("segment", sa.Text),
    sa.Column("region", sa.Text),
    sa.Column("country", sa.Text),
    sa.Column("acquisition_channel", sa.Text),
    sa.Column("first_seen_at", sa.DateTime),
    sa.Column("attributes", sa.Text, comment="JSON object of columns without a canonical field"),
    sa.Column("source", sa.Text, nullable=False),
    *_provenance(),
)

customer_aliases = sa.Table(
    "customer_aliases",
    metadata,
    sa.Column("alias", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    *_provenance(),
    comment="Other ids a customer is known by in exports (Olist's per-order customer_id, say)",
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, comment="NULL for guest or anonymous orders"),
    sa.Column("ordered_at", sa.DateTime, nullable=False),
    sa.Column("status", sa.Text),
    sa.Column("channel", sa.Text),
    sa.Column("currency", sa.Text),
    sa.Column("country", sa.Text),
    sa.Column("total_amount", MONEY, comment="As exported; NULL when only lines are known"),
    sa.Column("source", sa.Text, nullable=False),
    *_provenance(),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("product_id", sa.Text),
    sa.Column("product_name", sa.Text),
    sa.Column("category", sa.Text),
    sa.Column("quantity", MONEY, nullable=False, comment="Negative for a return"),
    sa.Column("unit_price", MONEY),
    sa.Column("amount", MONEY, nullable=False, comment="quantity * unit_price unless exported"),
    sa.Column("source", sa.Text, nullable=False),
    *_provenance(),
)

survey_responses = sa.Table(
    "survey_responses",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("response_id", sa.Text, primary_key=True),
    sa.Column("question_id", sa.Text, primary_key=True),
    sa.Column("survey_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False, comment="nps | csat | ces | custom"),
    sa.Column("scale_min", sa.Integer, nullable=False),
    sa.Column("scale_max", sa.Integer, nullable=False),
    sa.Column("score", MONEY),
    sa.Column("comment", sa.Text),
    sa.Column(
        "choices",
        sa.Text,
        comment="A choice question's answer: the chosen choices' ids, comma-separated",
        info={"hashed_when_set": True},  # added by 0010: rows without it keep their row_hash
    ),
    sa.Column("channel", sa.Text),
    sa.Column("touchpoint", sa.Text),
    sa.Column("customer_id", sa.Text),
    sa.Column("responded_at", sa.DateTime, nullable=False),
    *_provenance(),
)

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("ticket_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text),
    sa.Column("opened_at", sa.DateTime, nullable=False),
    sa.Column("first_response_at", sa.DateTime),
    sa.Column("resolved_at", sa.DateTime),
    sa.Column("channel", sa.Text),
    sa.Column("category", sa.Text),
    sa.Column("priority", sa.Text),
    sa.Column("status", sa.Text),
    sa.Column("agent_id", sa.Text),
    sa.Column("is_complaint", sa.Boolean),
    sa.Column("reopens", sa.Integer),
    sa.Column("subject", sa.Text),
    sa.Column("body", sa.Text),
    *_provenance(),
)

reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("review_id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False, comment="review | post"),
    sa.Column("url", sa.Text),
    sa.Column("author", sa.Text),
    sa.Column("rating", MONEY, comment="On a 1-5 scale; NULL for social posts"),
    sa.Column("title", sa.Text),
    sa.Column("text", sa.Text),
    sa.Column("posted_at", sa.DateTime, nullable=False),
    sa.Column("brand", sa.Text, nullable=False, comment="Whose brand the text is about"),
    sa.Column("is_competitor", sa.Boolean, nullable=False),
    sa.Column("language", sa.Text),
    sa.Column("customer_id", sa.Text),
    sa.Column("order_id", sa.Text),
    *_provenance(),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("subscription_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("plan", sa.Text),
    sa.Column("mrr", MONEY, nullable=False, comment="Monthly recurring revenue while it runs"),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("ended_at", sa.DateTime, comment="NULL while it runs"),
    *_provenance(),
    comment="Recurring contracts; a plan change is a new subscription (the old one ends)",
)

survey_invitations = sa.Table(
    "survey_invitations",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("invitation_id", sa.Text, primary_key=True),
    sa.Column("survey_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("channel", sa.Text),
    sa.Column("sent_at", sa.DateTime, nullable=False),
    *_provenance(),
    comment="Who was asked to answer which survey, when: the denominator of the response rate",
)

employees = sa.Table(
    "employees",
    metadata,
    sa.Column("employee_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("team", sa.Text),
    sa.Column("role", sa.Text),
    sa.Column("source", sa.Text, nullable=False),
    *_provenance(),
)

imports = sa.Table(
    "imports",
    metadata,
    sa.Column("import_id", sa.Text, primary_key=True),
    sa.Column("entity", sa.Text, nullable=False),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("file_sha256", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("preset", sa.Text),
    sa.Column("mapping", sa.Text, nullable=False, comment="JSON: field -> column or transform"),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime, nullable=False),
    sa.Column("rows_read", sa.BigInteger, nullable=False),
    sa.Column("loaded", sa.BigInteger, nullable=False),
    sa.Column("updated", sa.BigInteger, nullable=False),
    sa.Column("unchanged", sa.BigInteger, nullable=False),
    sa.Column("rejected", sa.BigInteger, nullable=False),
    sa.Column("reject_file", sa.Text),
)

saved_mappings = sa.Table(
    "saved_mappings",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("entity", sa.Text, nullable=False),
    sa.Column("spec", sa.Text, nullable=False, comment="JSON of the mapping, as a preset entity"),
    sa.Column("saved_at", sa.DateTime, nullable=False),
)

DATA_TABLES = (
    customers,
    customer_aliases,
    orders,
    order_lines,
    survey_responses,
    tickets,
    reviews,
    employees,
    subscriptions,
    survey_invitations,
)

# Accounts of the web application (migration 0003). Secrets are never stored: passwords as Argon2
# hashes, session and API tokens as SHA-256 digests of high-entropy random tokens.

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("email", sa.Text, nullable=False, unique=True, comment="Lower-cased"),
    sa.Column("password_hash", sa.Text, nullable=False, comment="Argon2id, never the password"),
    sa.Column("role", sa.Text, nullable=False, comment="admin | manager | analyst | agent | viewer"),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_login_at", sa.DateTime),
    comment="People who sign in to the web application",
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True, comment="SHA-256 of the cookie's token"),
    sa.Column("user_id", sa.Text, nullable=False, index=True),
    sa.Column("csrf_token", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("last_seen_at", sa.DateTime, nullable=False),
    comment="Signed-in browsers; a row deleted is a session ended",
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True, comment="SHA-256 of the token"),
    sa.Column("name", sa.Text),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False, comment="At most the user's own capabilities"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_used_at", sa.DateTime),
    sa.Column("revoked_at", sa.DateTime),
    comment="Bearer tokens for scripts, scoped to a role",
)

login_attempts = sa.Table(
    "login_attempts",
    metadata,
    sa.Column("key", sa.Text, nullable=False, comment="email:<address> or ip:<address>"),
    sa.Column("attempted_at", sa.DateTime, nullable=False),
    sa.Index("ix_login_attempts_key_attempted_at", "key", "attempted_at"),
    comment="Failed sign-ins in the recent window, shared by every server process",
)

ACCOUNT_TABLES = (users, sessions, api_tokens, login_attempts)

# Imports the web server runs in the background (migration 0004): the job's state lives here so that
# every server process (several workers on PostgreSQL) sees the same jobs.

import_jobs = sa.Table(
    "import_jobs",
    metadata,
    sa.Column("job_id", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, nullable=False, comment="queued | running | done | failed"),
    sa.Column("step", sa.Text, comment="read | check | compare | write | report"),
    sa.Column("entity", sa.Text, nullable=False),
    sa.Column("file_name", sa.Text, nullable=False, comment="As uploaded (untrusted text)"),
    sa.Column("file_bytes", sa.BigInteger, nullable=False),
    sa.Column("stored_path", sa.Text, comment="The upload on the server; NULL once deleted"),
    sa.Column("options", sa.Text, nullable=False, comment="JSON: preset, maps, sets, dry_run, ..."),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("user_id", sa.Text),
    sa.Column("worker", sa.Text, comment="host:pid of the process running it"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("started_at", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("import_id", sa.Text),
    sa.Column("rows_read", sa.BigInteger),
    sa.Column("loaded", sa.BigInteger),
    sa.Column("updated", sa.BigInteger),
    sa.Column("unchanged", sa.BigInteger),
    sa.Column("rejected", sa.BigInteger),
    sa.Column("rejects_kept", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Index("ix_import_jobs_created_at", "created_at"),
    comment="Imports run by the server in the background, shared by every server process",
)

import_job_rejects = sa.Table(
    "import_job_rejects",
    metadata,
    sa.Column("job_id", sa.Text, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False, comment="Report order: by line, then field"),
    sa.Column("line", sa.BigInteger),
    sa.Column("field", sa.Text),
    sa.Column("value", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Index("ix_import_job_rejects_job_id_seq", "job_id", "seq"),
    comment="Reject reports of import jobs (line, field, value, reason), values as in the file",
)

# A customer's rows by customer id, for the customer page (PostgreSQL only, see migration 0004).
sa.Index("ix_orders_customer_id", orders.c.customer_id)
sa.Index("ix_survey_responses_customer_id", survey_responses.c.customer_id)
sa.Index("ix_tickets_customer_id", tickets.c.customer_id)
sa.Index("ix_reviews_customer_id", reviews.c.customer_id)


# Business settings (migration 0005): one row per setting, edited by admins and managers.
business_settings = sa.Table(
    "business_settings",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("updated_by", sa.Text, comment="The user's id"),
)


# Sentiment scores (migration 0006): a cache by content and model, so only new texts are scored.
text_sentiment = sa.Table(
    "text_sentiment",
    metadata,
    sa.Column("content_hash", sa.Text, primary_key=True, comment="SHA-256 of the text, hex"),
    sa.Column("model", sa.Text, primary_key=True, comment="Model name and version"),
    sa.Column("language", sa.Text, comment="ISO 639-1 code detected, NULL if undetermined"),
    sa.Column("supported", sa.Boolean, nullable=False, comment="Whether the model reads that language"),
    sa.Column("score", sa.Float, comment="In [-1, 1]; NULL when not supported"),
    sa.Column("label", sa.Text, comment="negative | neutral | positive; NULL when not supported"),
    sa.Column("scored_at", sa.DateTime, nullable=False),
)

# Sentiment models fitted on the store's own rated reviews (migration 0006): the newest is used.
sentiment_models = sa.Table(
    "sentiment_models",
    metadata,
    sa.Column("model", sa.Text, primary_key=True, comment="Name and version, as in text_sentiment.model"),
    sa.Column("fitted_at", sa.DateTime, nullable=False),
    sa.Column("languages", sa.Text, nullable=False, comment="ISO 639-1 codes it scores, comma-separated"),
    sa.Column("details", sa.Text, nullable=False, comment="JSON: labelled texts per language, options"),
    sa.Column("data", sa.LargeBinary, nullable=False, comment="NumPy .npz of plain arrays, no pickles"),
)


# Surveys run by cxloop itself (migration 0008): definitions and their versions, answer links,
# and each reply's progress. The answers themselves go to survey_responses (source 'cxloop').
surveys = sa.Table(
    "surveys",
    metadata,
    sa.Column("survey_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False, comment="draft | live | closed"),
    sa.Column("version", sa.Integer, nullable=False, comment="The current version, answered from now on"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

survey_versions = sa.Table(
    "survey_versions",
    metadata,
    sa.Column("survey_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("definition", sa.Text, nullable=False, comment="JSON, as validated"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("created_by", sa.Text, comment="The user's id"),
)

survey_links = sa.Table(
    "survey_links",
    metadata,
    sa.Column("link_id", sa.Text, primary_key=True),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True, comment="SHA-256 of the URL's token"),
    sa.Column("survey_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False, comment="personal | public"),
    sa.Column("customer_id", sa.Text, comment="NULL for a public link"),
    sa.Column("channel", sa.Text),
    sa.Column("form_token", sa.Text, nullable=False, comment="Must come back with each answer"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime),
    sa.Column("opened_at", sa.DateTime, comment="First time the answer page was viewed"),
    sa.Index("ix_survey_links_survey_id", "survey_id"),
    comment="Answer links; the token itself is never stored",
)

survey_replies = sa.Table(
    "survey_replies",
    metadata,
    sa.Column("reply_id", sa.Text, primary_key=True, comment="survey_responses.response_id"),
    sa.Column("survey_id", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("link_id", sa.Text),
    sa.Column("customer_id", sa.Text),
    sa.Column("channel", sa.Text),
    sa.Column("language", sa.Text),
    sa.Column("started_at", sa.DateTime, nullable=False, comment="When the score was given"),
    sa.Column("completed_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("editable_until", sa.DateTime, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False, comment="Writes so far; in the data fingerprint"),
    sa.Index("ix_survey_replies_survey_id", "survey_id"),
    comment="Each answer's progress: started (score), completed (the rest), which version",
)

survey_limits = sa.Table(
    "survey_limits",
    metadata,
    sa.Column("key", sa.Text, nullable=False, comment="<link_id>:ip:<address>"),
    sa.Column("answered_at", sa.DateTime, nullable=False),
    sa.Index("ix_survey_limits_key_answered_at", "key", "answered_at"),
    comment="Recent answers through public links, for rate limiting across server processes",
)


# The closed loop and survey distribution (migration 0009): follow-up cases, their notes and
# assignment rules; opt-outs, every mail sent or attempted, and triggers.
cases = sa.Table(
    "cases",
    metadata,
    sa.Column("case_id", sa.Text, primary_key=True, comment="K + 12 hex digits of the response's key"),
    sa.Column("response_source", sa.Text, nullable=False),
    sa.Column("response_id", sa.Text, nullable=False),
    sa.Column("survey_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text),
    sa.Column("reasons", sa.Text, nullable=False, comment="detractor, low_csat, negative_comment"),
    sa.Column("kind", sa.Text, comment="The answer's kind: nps | csat | ces | custom"),
    sa.Column("score", MONEY),
    sa.Column("scale_min", sa.Integer),
    sa.Column("scale_max", sa.Integer),
    sa.Column("comment", sa.Text, comment="The answer's comment as written (untrusted text)"),
    sa.Column("responded_at", sa.DateTime, nullable=False),
    sa.Column("opened_at", sa.DateTime, nullable=False),
    sa.Column("rule", sa.Text, nullable=False, comment="The assignment rule that matched"),
    sa.Column("assignee", sa.Text, comment="Lower-cased email of the person working it"),
    sa.Column("sla_hours", sa.Integer, nullable=False),
    sa.Column("due_at", sa.DateTime, nullable=False, comment="First follow-up due by: opened_at + SLA"),
    sa.Column("status", sa.Text, nullable=False, comment="open | closed"),
    sa.Column("first_contact_at", sa.DateTime),
    sa.Column("closed_at", sa.DateTime),
    sa.Column("closed_by", sa.Text),
    sa.Column("outcome", sa.Text),
    sa.Column("root_cause", sa.Text),
    sa.Column("resurvey_delivery_id", sa.Text, comment="The re-survey sent on closing, if any"),
    sa.UniqueConstraint("response_source", "response_id", name="uq_cases_response"),
    sa.Index("ix_cases_status_due_at", "status", "due_at"),
    comment="Follow-up cases of unhappy answers (the closed loop), one per response",
)

case_notes = sa.Table(
    "case_notes",
    metadata,
    sa.Column("case_id", sa.Text, primary_key=True),
    sa.Column("note_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("noted_at", sa.DateTime, nullable=False),
    sa.Column("author", sa.Text, comment="Email of the user, or the command that wrote it"),
    sa.Column("kind", sa.Text, nullable=False, comment="contact | note | closed"),
    sa.Column("text", sa.Text, nullable=False),
    comment="What was done on a case: contacts with the customer, notes, the closing",
)

case_rules = sa.Table(
    "case_rules",
    metadata,
    sa.Column(
        "position", sa.Integer, primary_key=True, autoincrement=False, comment="Rules are tried in this order"
    ),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("segment", sa.Text, comment="Matches customers of this segment (NULL: any)"),
    sa.Column("region", sa.Text, comment="Matches customers of this region (NULL: any)"),
    sa.Column("team", sa.Text, comment="Round robin among the employees of this team"),
    sa.Column("assignees", sa.Text, comment="Or among these emails, comma-separated"),
    sa.Column("sla_hours", sa.Integer, nullable=False),
    comment="Who works a new case and how soon: the first rule that matches the customer",
)

survey_optouts = sa.Table(
    "survey_optouts",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("opted_out_at", sa.DateTime, nullable=False),
    sa.Column("via", sa.Text, nullable=False, comment="link | api | cli | page"),
    comment="Customers who asked never to be surveyed again: honoured for good",
)

survey_deliveries = sa.Table(
    "survey_deliveries",
    metadata,
    sa.Column("delivery_id", sa.Text, primary_key=True),
    sa.Column("survey_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("purpose", sa.Text, nullable=False, comment="invitation | reminder | resurvey"),
    sa.Column("channel", sa.Text, nullable=False, comment="email"),
    sa.Column("status", sa.Text, nullable=False, comment="pending | sent | failed | skipped"),
    sa.Column("reason", sa.Text, comment="Why it failed or was skipped"),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_attempt_at", sa.DateTime),
    sa.Column("sent_at", sa.DateTime),
    sa.Column("link", sa.Text, comment="The link mailed: survey_links.link_id (its token is never stored)"),
    sa.Column("optout_hash", sa.Text, comment="SHA-256 of the mail's opt-out token"),
    sa.Column("trigger_key", sa.Text, comment="trigger id:event id, once per event"),
    sa.Column("parent_id", sa.Text, comment="The invitation a reminder follows"),
    sa.UniqueConstraint("trigger_key", name="uq_survey_deliveries_trigger_key"),
    sa.UniqueConstraint("optout_hash", name="uq_survey_deliveries_optout_hash"),
    sa.Index("ix_survey_deliveries_survey_customer", "survey_id", "customer_id"),
    comment="Every mail sent or attempted (invitations, reminders, re-surveys), with its outcome",
)

survey_triggers = sa.Table(
    "survey_triggers",
    metadata,
    sa.Column("trigger_id", sa.Text, primary_key=True),
    sa.Column("survey_id", sa.Text, nullable=False),
    sa.Column("event", sa.Text, nullable=False, comment="order | ticket_resolved"),
    sa.Column("delay_hours", sa.Integer, nullable=False),
    sa.Column("starts_at", sa.DateTime, nullable=False, comment="Only events from this moment on"),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    comment="Send a survey some time after an order or a resolved ticket",
)

# Themes (migration 0007): fitted topic models, then every version of the curated taxonomy and
# its themes (a change writes a whole new version; see cxloop.voice.taxonomy).
theme_models = sa.Table(
    "theme_models",
    metadata,
    sa.Column("model_id", sa.Text, primary_key=True),
    sa.Column("fitted_at", sa.DateTime, nullable=False),
    sa.Column(
        "details", sa.Text, nullable=False, comment="JSON: method, texts, k and how it was chosen, selection"
    ),
    sa.Column(
        "data",
        sa.LargeBinary,
        nullable=False,
        comment="NumPy .npz of plain arrays (vocabulary, idf, components, thresholds), no pickles",
    ),
)

theme_taxonomy = sa.Table(
    "theme_taxonomy",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("model_id", sa.Text, nullable=False, comment="The theme model whose topics it maps"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False, comment="discover | rename | merge | split | delete | rule"),
    sa.Column("details", sa.Text, nullable=False, comment="JSON: what changed"),
)

themes = sa.Table(
    "themes",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("theme_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("topics", sa.Text, nullable=False, comment="JSON array: the model's topics it gathers"),
    sa.Column("keywords", sa.Text, nullable=False, comment="JSON array: keyword rules"),
    sa.Column("terms", sa.Text, nullable=False, comment="JSON array: top terms"),
    sa.Column("curated", sa.Boolean, nullable=False, comment="Changed by a user: label kept"),
    sa.Column("deleted", sa.Boolean, nullable=False),
)
