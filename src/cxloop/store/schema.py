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
