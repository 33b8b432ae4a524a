"""Surveys, the core library: definitions from files, versions, links, answers, tracking, results."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import rows
from cxloop import Store
from cxloop.metrics.cache import store_fingerprint
from cxloop.surveys import answers, links, results, tracking, versions
from cxloop.surveys.definitions import load_definition

T0 = dt.datetime(2026, 3, 2, 10, 0)
FIXTURE = Path(__file__).parent / "fixtures" / "surveys" / "after_order.toml"


def customers(store: Store, n: int = 4) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO customers (customer_id, email, segment, source, row_hash) "
                "VALUES (:id, :email, :segment, 'test', 'h')"
            ),
            [
                {"id": f"C{i}", "email": f"c{i}@example.com", "segment": "vip" if i % 2 else "new"}
                for i in range(n)
            ],
        )


@pytest.fixture
def live(store: Store) -> versions.DefinitionCache:
    versions.create_survey(store, load_definition(FIXTURE), now=T0)
    versions.set_state(store, "after-order", "live", now=T0)
    customers(store)
    return versions.DefinitionCache(store)


def answer(
    store: Store, defs: versions.DefinitionCache, link: links.NewLink, score: str, at: dt.datetime = T0
) -> str:
    visit = answers.open_link(store, defs, link.token, now=at)
    return answers.save_score(
        store, defs, link.token, form_token=visit.form_token, score=score, now=at
    ).reply_id


def test_editing_makes_a_new_version_and_answers_keep_theirs(
    store: Store, live: versions.DefinitionCache
) -> None:
    [link] = links.create_links(store, "after-order", [("C1", "c1@example.com")], now=T0)
    reply = answer(store, live, link, "9")
    changed = load_definition(FIXTURE).model_copy(update={"name": "After your order (v2)"})

    survey = versions.edit_survey(store, "after-order", changed, now=T0)

    assert survey.version == 2 and versions.get_survey(store, "after-order").name == "After your order (v2)"
    assert rows(store, "SELECT version FROM survey_replies WHERE reply_id = :r", r=reply) == [(1,)]
    assert answers.open_link(store, live, link.token, now=T0).version == 1


def test_links_are_unguessable_stored_hashed_and_exported_for_a_mail_merge(
    store: Store, live: versions.DefinitionCache
) -> None:
    made = links.create_links(
        store, "after-order", links.segment_customers(store, "vip"), now=T0, channel="email"
    )

    assert [m.customer_id for m in made] == ["C1", "C3"]
    assert all(len(m.token) >= 32 for m in made)  # token_urlsafe(24): 192 bits
    stored = rows(store, "SELECT token_hash FROM survey_links")
    assert {h for (h,) in stored} == {links.token_hash(m.token) for m in made}
    assert not any(m.token in json.dumps(stored) for m in made)
    csv_text = links.links_csv(made, "https://cx.example/")
    assert csv_text.splitlines()[0] == "customer_id,email,url,expires_at"
    assert f"C1,c1@example.com,https://cx.example/s/{made[0].token}," in csv_text
    assert rows(
        store, "SELECT count(*) FROM survey_invitations WHERE source = 'cxloop' AND channel = 'email'"
    ) == [(2,)]


def test_score_first_comment_later_then_edit_within_the_window(
    store: Store, live: versions.DefinitionCache
) -> None:
    [link] = links.create_links(store, "after-order", [("C1", None)], now=T0)
    reply = answer(store, live, link, "3")
    form = answers.open_link(store, live, link.token, now=T0).form_token

    assert rows(store, "SELECT score, comment FROM survey_responses WHERE response_id = :r", r=reply) == [
        (3, None)
    ]
    answers.save_details(
        store,
        live,
        link.token,
        form_token=form,
        comment="Late <b>again</b>",
        answers={"delivery": ["slow"], "again": ["no"]},
        now=T0,
    )
    got = rows(
        store, "SELECT question_id, score, comment, choices FROM survey_responses ORDER BY question_id"
    )
    assert got == [
        ("again", 0, None, None),
        ("delivery", None, None, "slow"),  # a choice is not something the customer wrote
        ("main", 3, "Late <b>again</b>", None),
    ]
    assert answers.open_link(store, live, link.token, now=T0, with_answers=True).answers["delivery"] == "slow"

    answers.save_score(store, live, link.token, form_token=form, score="7", now=T0 + dt.timedelta(hours=23))
    assert rows(store, "SELECT score, comment FROM survey_responses WHERE question_id = 'main'") == [
        (7, "Late <b>again</b>")
    ]
    with pytest.raises(answers.AnswerError, match="can no longer be changed") as late:
        answers.save_score(
            store, live, link.token, form_token=form, score="9", now=T0 + dt.timedelta(hours=25)
        )
    assert late.value.status == 409


def test_bad_answers_are_refused_with_a_reason(store: Store, live: versions.DefinitionCache) -> None:
    [link] = links.create_links(store, "after-order", [("C1", None)], now=T0, expires_in_days=1)
    form = answers.open_link(store, live, link.token, now=T0).form_token

    def refused(status: int, **kw: object) -> answers.AnswerError:
        args = {"token": link.token, "form_token": form, "score": "5", "now": T0} | kw
        with pytest.raises(answers.AnswerError) as caught:
            answers.save_score(store, live, **args)  # type: ignore[arg-type]
        assert caught.value.status == status
        return caught.value

    assert refused(404, token=link.token[:-2] + "xx").reason.startswith("this survey link is not valid")
    assert refused(403, form_token="forged").status == 403
    assert refused(422, score="11").field == "score"
    assert refused(422, score="<script>").field == "score"
    assert refused(410, now=T0 + dt.timedelta(days=2)).reason == "this survey link has expired"
    answer(store, live, link, "5")
    with pytest.raises(answers.AnswerError, match="at most 5,000 characters") as long:
        answers.save_details(
            store, live, link.token, form_token=form, comment="x" * 100_000, answers={}, now=T0
        )
    assert long.value.field == "comment"
    versions.set_state(store, "after-order", "closed", now=T0)
    assert refused(409).reason == "this survey is closed"


def test_a_double_submit_keeps_one_answer(store: Store, live: versions.DefinitionCache) -> None:
    [link] = links.create_links(store, "after-order", [("C1", None)], now=T0)
    form = answers.open_link(store, live, link.token, now=T0).form_token
    for _ in range(2):
        answers.save_score(store, live, link.token, form_token=form, score="10", now=T0)

    assert rows(store, "SELECT count(*) FROM survey_responses") == [(1,)]
    assert rows(store, "SELECT revision FROM survey_replies") == [(2,)]


def test_a_public_link_is_rate_limited_per_address_and_a_browser_edits_its_own(
    store: Store, live: versions.DefinitionCache
) -> None:
    public = links.create_public_link(store, "after-order", now=T0)
    form = answers.open_link(store, live, public.token, now=T0).form_token
    limits = answers.PublicLimits(per_ip=2)

    def post(score: str, hint: str | None = None, ip: str = "10.0.0.1") -> answers.Saved:
        return answers.save_score(
            store,
            live,
            public.token,
            form_token=form,
            score=score,
            now=T0,
            ip=ip,
            limits=limits,
            reply_hint=hint,
        )

    first = post("9")
    assert post("8", hint=first.reply_id) == answers.Saved(first.reply_id, False, public=True)  # an edit
    post("7")
    with pytest.raises(answers.AnswerError, match="too many answers") as caught:
        post("6")
    assert caught.value.status == 429
    post("6", ip="10.0.0.2")
    assert rows(store, "SELECT count(*) FROM survey_replies") == [(3,)]


def test_answers_collected_elsewhere_are_saved_once_per_reply_id(
    store: Store, live: versions.DefinitionCache
) -> None:
    for _ in range(2):
        answers.submit_answer(
            store,
            live,
            "after-order",
            score=10,
            comment="great",
            customer_id="C2",
            channel="kiosk",
            answered_at=T0,
            now=T0,
            reply_id="kiosk-1",
            answers={"again": ["yes"]},
        )

    assert rows(store, "SELECT question_id, score, channel FROM survey_responses ORDER BY 1") == [
        ("again", 1, "kiosk"),
        ("main", 10, "kiosk"),
    ]
    with pytest.raises(answers.AnswerError, match="choose a score from 0 to 10"):
        answers.submit_answer(store, live, "after-order", score=11, answered_at=T0, now=T0)


def test_an_answer_changes_the_data_fingerprint_at_once(store: Store, live: versions.DefinitionCache) -> None:
    [link] = links.create_links(store, "after-order", [("C1", None)], now=T0)
    before = store_fingerprint(store)
    reply = answer(store, live, link, "9")
    after_score = store_fingerprint(store)
    answers.save_details(
        store,
        live,
        link.token,
        form_token=answers.open_link(store, live, link.token, now=T0).form_token,
        comment="ok",
        answers={},
        now=T0,
    )

    assert reply and len({before, after_score, store_fingerprint(store)}) == 3


def test_tracking_counts_sent_opened_started_completed_as_the_response_rate_kpi_does(
    store: Store, live: versions.DefinitionCache
) -> None:
    from cxloop.metrics import compute

    made = links.create_links(
        store, "after-order", links.segment_customers(store, None), now=T0, channel="email"
    )
    answers.open_link(store, live, made[0].token, now=T0)  # opened only
    answer(store, live, made[1], "9")  # started
    reply = answer(store, live, made[2], "2")
    form = answers.open_link(store, live, made[2].token, now=T0).form_token
    answers.save_details(store, live, made[2].token, form_token=form, comment=None, answers={}, now=T0)
    del reply

    [total] = tracking.funnel(store, "after-order")
    assert (total.sent, total.opened, total.started, total.completed) == (4, 3, 2, 1)
    assert total.response_rate == 0.5
    by_segment = {f.group: (f.sent, f.started) for f in tracking.funnel(store, "after-order", by="segment")}
    assert by_segment == {"new": (2, 1), "vip": (2, 1)}  # C1 (vip) and C2 (new) answered
    kpi = compute(
        store,
        "response_rate",
        grain="day",
        start=T0 - dt.timedelta(hours=10),
        as_of=T0 + dt.timedelta(days=1),
    )
    assert kpi["value"].tolist() == [pytest.approx(total.response_rate * 100)]


def test_results_over_time_and_comments(store: Store, live: versions.DefinitionCache) -> None:
    made = links.create_links(store, "after-order", links.segment_customers(store, None), now=T0)
    for link, score, day in zip(made, ["10", "9", "3", "8"], [0, 0, 7, 7], strict=True):
        answer(store, live, link, score, at=T0 + dt.timedelta(days=day))

    kind, periods = results.over_time(store, "after-order", grain="week")
    assert kind == "nps"
    assert [(p.answers, p.value) for p in periods] == [(2, 100.0), (2, -50.0)]


def test_two_submits_racing_each_other_keep_one_answer(store: Store, live: versions.DefinitionCache) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from cxloop.web.storage import open_server_store

    made = links.create_links(store, "after-order", [(f"C{i}", None) for i in range(4)], now=T0)
    forms = {m.token: answers.open_link(store, live, m.token, now=T0).form_token for m in made}

    server = open_server_store(store.url, store.settings)  # as the server opens it: safe for threads

    def submit(token: str) -> answers.Saved:
        return answers.save_score(server, live, token, form_token=forms[token], score="9", now=T0)

    with ThreadPoolExecutor(8) as pool:
        saved = list(pool.map(submit, [m.token for m in made for _ in range(2)]))
    server.close()

    assert sorted(s.created for s in saved) == [False] * 4 + [True] * 4
    assert rows(store, "SELECT count(*), count(DISTINCT response_id) FROM survey_responses") == [(4, 4)]


def test_a_group_commit_saves_each_answer_once_and_refuses_only_the_bad_ones(duck_store: Store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from cxloop.surveys.writer import GroupCommit
    from cxloop.web.storage import open_server_store

    versions.create_survey(duck_store, load_definition(FIXTURE), now=T0)
    versions.set_state(duck_store, "after-order", "live", now=T0)
    store = open_server_store(duck_store.url, duck_store.settings)
    defs = versions.DefinitionCache(store)
    made = links.create_links(store, "after-order", [(f"C{i}", None) for i in range(40)], now=T0)
    forms = {m.token: answers.open_link(store, defs, m.token, now=T0).form_token for m in made}
    writer = GroupCommit(store)

    def submit(i: int) -> answers.Saved | str:
        token = made[i % 40].token
        try:
            return answers.save_score(
                store,
                defs,
                token,
                form_token=forms[token],
                score="11" if i in (3, 13, 23, 33) else "9",
                now=T0,
                transact=writer,
            )
        except answers.AnswerError as refused:
            return refused.reason

    with ThreadPoolExecutor(16) as pool:
        done = list(pool.map(submit, range(80)))
    writer.close()

    assert sum(isinstance(d, str) for d in done) == 4  # the scores off the scale, alone
    assert rows(store, "SELECT count(*), count(DISTINCT response_id), min(score) FROM survey_responses") == [
        (40, 40, 9)
    ]
    assert 0 < writer.groups < 72  # several answers per commit
    store.close()


# -- choice answers: kept apart from what customers wrote -----------------------------------------

CHOICES = {
    "id": "after-visit",
    "name": "After your visit",
    "main": {"kind": "nps"},
    "questions": [
        {"id": "reason", "type": "single", "text": "The main reason?", "choices": ["price", "slow", "staff"]},
        {"id": "topics", "type": "multiple", "text": "What mattered?", "choices": ["delivery", "returns"]},
        {"id": "why", "type": "text", "text": "Anything else?"},
    ],
}


def test_choice_answers_are_not_read_as_customer_text(store: Store) -> None:
    from cxloop.cases import open_cases
    from cxloop.metrics.source import store_source
    from cxloop.surveys.definitions import parse_definition
    from cxloop.voice.corpus import corpus_frame

    versions.create_survey(store, parse_definition(CHOICES), now=T0)
    versions.set_state(store, "after-visit", "live", now=T0)
    defs = versions.DefinitionCache(store)
    [link] = links.create_links(store, "after-visit", [("C1", None)], now=T0)
    answer(store, defs, link, "8")  # a passive, on the answer page
    form = answers.open_link(store, defs, link.token, now=T0).form_token
    chosen = {"reason": ["slow"], "topics": ["delivery", "returns"], "why": ["The box was dented"]}
    answers.save_details(
        store, defs, link.token, form_token=form, comment="Nice shop", answers=chosen, now=T0
    )
    answers.submit_answer(  # a promoter, through the API, choices only
        store, defs, "after-visit", score=10, answers={"reason": ["slow"], "topics": ["returns"]},
        customer_id="C2", answered_at=T0, now=T0, reply_id="kiosk-1",
    )  # fmt: skip

    stored = rows(
        store,
        "SELECT question_id, comment, choices FROM survey_responses WHERE kind = 'custom'"
        " ORDER BY question_id, choices",
    )
    assert stored == [
        ("reason", None, "slow"),
        ("reason", None, "slow"),
        ("topics", None, "delivery,returns"),
        ("topics", None, "returns"),
        ("why", "The box was dented", None),
    ]
    with store_source(store) as source:
        texts = corpus_frame(source, kinds=["survey"])
    assert sorted(texts["text"]) == ["Nice shop", "The box was dented"]
    # "slow" is a word of complaint, but a choice is no comment: a passive and a promoter, no case.
    assert open_cases(store, now=T0 + dt.timedelta(hours=1)) == []
    assert answers.open_link(store, defs, link.token, now=T0, with_answers=True).answers["topics"] == (
        "delivery,returns"
    )


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return str(tmp_path / "old.duckdb")
    url: str = request.getfixturevalue("pg_schema_url")
    return url


def test_choice_answers_stored_before_migration_0010_move_out_of_the_comment(database_url: str) -> None:
    from cxloop.store import migrate
    from cxloop.surveys.definitions import parse_definition

    old = Store.open(database_url, upgrade=False)
    try:
        migrate.upgrade(old.engine, "0009")
        versions.create_survey(old, parse_definition(CHOICES), now=T0)
        reply = {"survey_id": "after-visit", "now": T0}
        with old.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO survey_replies (reply_id, survey_id, version, started_at, updated_at,"
                    " editable_until, revision) VALUES (:rid, :survey_id, 1, :now, :now, :now, 1)"
                ),
                [{"rid": "r1", **reply}],
            )
            conn.execute(
                sa.text(
                    "INSERT INTO survey_responses (source, response_id, question_id, survey_id, kind,"
                    " scale_min, scale_max, score, comment, responded_at, row_hash)"
                    " VALUES (:source, :rid, :qid, :survey_id, :kind, :lo, :hi, :score, :comment, :now, 'h')"
                ),
                [
                    {"source": "cxloop", "rid": "r1", "qid": "main", "kind": "nps", "lo": 0, "hi": 10,
                     "score": 3, "comment": "Too slow", **reply},
                    {"source": "cxloop", "rid": "r1", "qid": "reason", "kind": "custom", "lo": 0, "hi": 0,
                     "score": None, "comment": "slow", **reply},
                    {"source": "cxloop", "rid": "r1", "qid": "topics", "kind": "custom", "lo": 0, "hi": 0,
                     "score": None, "comment": "delivery,returns", **reply},
                    {"source": "cxloop", "rid": "r1", "qid": "why", "kind": "custom", "lo": 0, "hi": 0,
                     "score": None, "comment": "Dented box", **reply},
                    # Imported answers are what their file said: left alone.
                    {"source": "shop", "rid": "r1", "qid": "reason", "kind": "custom", "lo": 0, "hi": 0,
                     "score": None, "comment": "slow service", **reply},
                ],
            )  # fmt: skip
        migrate.upgrade(old.engine)
        assert migrate.is_current(old.engine)
        assert rows(
            old, "SELECT source, question_id, comment, choices FROM survey_responses ORDER BY 1, 2"
        ) == [
            ("cxloop", "main", "Too slow", None),
            ("cxloop", "reason", None, "slow"),
            ("cxloop", "topics", None, "delivery,returns"),
            ("cxloop", "why", "Dented box", None),
            ("shop", "reason", "slow service", None),
        ]
    finally:
        old.close()
