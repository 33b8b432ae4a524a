"""The presets shipped with cxloop: each parses, and each imports a realistic sample export.

Every fixture in tests/fixtures/presets is a few rows in the shape of the real export, with the
awkward cases the preset exists for. The stores use a business time zone other than UTC where
the export carries offsets, so that times are shown to be converted exactly.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cxloop import ImportOptions, ImportResult, InputError, Store, import_file
from cxloop.config import Settings
from cxloop.ingest.entities import ENTITIES
from cxloop.ingest.mapping import entity_spec_mapping, list_presets, preset_dirs

FIXTURES = Path(__file__).parent / "fixtures" / "presets"
CXLOOP = Path(sys.executable).parent / "cxloop"
EXPECTED = {
    "cdnow",
    "google-reviews",
    "olist",
    "online-retail",
    "shopify",
    "survey",
    "telco",
    "trustpilot",
    "x-posts",
    "zendesk",
}


def open_store(tmp_path: Path, timezone: str = "UTC") -> Store:
    url = str(tmp_path / "store.duckdb")
    return Store.open(url, settings=Settings(database_url=url, timezone=timezone))


@pytest.fixture
def utc_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(tmp_path)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def paris_store(tmp_path: Path) -> Iterator[Store]:
    """A business time zone an hour or two east of UTC: offsets must be honoured exactly."""
    store = open_store(tmp_path, "Europe/Paris")
    try:
        yield store
    finally:
        store.close()


def load(store: Store, entity: str, path: Path, tmp_path: Path, **options: Any) -> ImportResult:
    options.setdefault("rejects_dir", tmp_path / "rejects")
    return import_file(store, entity, path, ImportOptions(**options))


def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def counts(result: ImportResult) -> tuple[int, int, int, int, int]:
    return (result.rows_read, result.loaded, result.updated, result.unchanged, result.rejected)




# ---------------------------------------------------------------- the preset files


def test_every_preset_parses_with_a_unique_name_and_a_doc() -> None:
    presets = list_presets()
    names = [p.name for p in presets]
    assert len(names) == len(set(names))
    assert set(names) == EXPECTED
    files = sorted(p.stem for p in preset_dirs()[0].glob("*.toml"))
    assert files == sorted(EXPECTED), "one file per preset, named after it"
    for preset in presets:
        assert preset.title.strip()
        assert len(preset.doc) > 200, f"{preset.name}: the doc should say what export it is"
        assert preset.entities, preset.name
        for entity, spec in preset.entities.items():
            assert entity in ENTITIES, f"{preset.name}: unknown entity {entity}"
            fields, _, _, _ = entity_spec_mapping(spec, where=f"{preset.name}.{entity}", allow_expr=True)
            assert fields
            assert set(fields) <= set(ENTITIES[entity].field_names), f"{preset.name}.{entity}"


def test_presets_list_json_shows_every_preset() -> None:
    done = subprocess.run(
        [str(CXLOOP), "presets", "list", "--json"], capture_output=True, text=True, check=True, timeout=60
    )
    listed = json.loads(done.stdout)
    assert {p["name"] for p in listed} == EXPECTED
    by_name = {p["name"]: p for p in listed}
    assert by_name["olist"]["entities"] == "customers, orders, order-lines, reviews"
    assert by_name["cdnow"]["entities"] == "order-lines"


# ---------------------------------------------------------------- shopify


def test_shopify_lines_make_orders_from_their_first_line(paris_store: Store, tmp_path: Path) -> None:
    path = FIXTURES / "shopify_orders.csv"
    result = load(paris_store, "order-lines", path, tmp_path, preset="shopify")

    assert counts(result) == (5, 5, 0, 0, 0)
    assert result.tables["orders"].loaded == 3
    assert rows(
        paris_store,
        "SELECT order_id, customer_id, ordered_at, status, currency, country, total_amount, source "
        "FROM orders ORDER BY order_id",
    ) == [
        # 14:01:22 +0100 is 13:01:22 UTC; the second line's blank order columns change nothing.
        (
            "#1001",
            "sophie.martin@example.com",
            dt.datetime(2024, 3, 5, 13, 1, 22),
            "paid",
            "EUR",
            "FR",
            None,
            "shopify",
        ),
        (
            "#1002",
            "jan@example.nl",
            dt.datetime(2024, 3, 6, 8, 14, 10),
            "refunded",
            "EUR",
            "NL",
            None,
            "shopify",
        ),
        # A POS sale without an e-mail is a guest order; +0200 in summer.
        ("#1003", None, dt.datetime(2024, 7, 1, 16, 29, 59), "paid", "EUR", None, None, "shopify"),
    ]
    assert rows(
        paris_store,
        "SELECT order_id, line_no, product_id, product_name, quantity, unit_price, amount "
        "FROM order_lines ORDER BY order_id, line_no",
    ) == [
        (
            "#1001",
            1,
            "MASK-50",
            "Masque au collagène, 50 ml",
            Decimal("2"),
            Decimal("24.95"),
            Decimal("49.90"),
        ),
        ("#1001", 2, "SER-30", 'Sérum "éclat" 30 ml', Decimal("1"), Decimal("24.90"), Decimal("24.90")),
        ("#1002", 1, None, "Gift card", Decimal("1"), Decimal("19.00"), Decimal("19.00")),
        ("#1003", 1, "SOAP", "Savon", Decimal("3"), Decimal("3.00"), Decimal("9.00")),
        ("#1003", 2, "BAG", "Sac", Decimal("1"), Decimal("3.00"), Decimal("3.00")),
    ]

    again = load(paris_store, "order-lines", path, tmp_path, preset="shopify")
    assert counts(again) == (5, 0, 0, 5, 0)
    assert again.tables["orders"].unchanged == 3


def test_shopify_line_without_any_created_at_in_its_order_is_rejected(
    utc_store: Store, tmp_path: Path
) -> None:
    text = (FIXTURES / "shopify_orders.csv").read_text(encoding="utf-8")
    header, first, *_ = text.splitlines()
    # An order whose only line has no Created at cannot be dated: refused, with the reason.
    broken = first.replace("#1001", "#2001").replace("2024-03-05 14:01:22 +0100", "")
    path = tmp_path / "orders_export.csv"
    path.write_text(f"{header}\n{broken}\n{first}\n", encoding="utf-8")

    result = load(utc_store, "order-lines", path, tmp_path, preset="shopify")

    assert counts(result) == (2, 1, 0, 0, 1)
    assert [(r["line"], r["field"], r["reason"]) for r in result.reject_sample] == [
        (2, "ordered_at", "required value is missing")
    ]
    assert rows(utc_store, "SELECT order_id, ordered_at FROM orders") == [
        ("#1001", dt.datetime(2024, 3, 5, 13, 1, 22))
    ]


# ---------------------------------------------------------------- online retail


def test_online_retail_cancellations_guests_and_both_date_forms(utc_store: Store, tmp_path: Path) -> None:
    result = load(utc_store, "order-lines", FIXTURES / "online_retail.csv", tmp_path, preset="online-retail")

    assert counts(result) == (7, 7, 0, 0, 0)
    assert rows(
        utc_store,
        "SELECT order_id, customer_id, ordered_at, status, currency, country FROM orders ORDER BY 1",
    ) == [
        ("536365", "17850", dt.datetime(2010, 12, 1, 8, 26), "completed", "GBP", "United Kingdom"),
        ("536544", None, dt.datetime(2010, 12, 1, 14, 32), "completed", "GBP", "United Kingdom"),
        ("581587", "12680", dt.datetime(2011, 12, 9, 12, 50), "completed", "GBP", "France"),
        ("C536379", "14527", dt.datetime(2010, 12, 1, 9, 41), "cancelled", "GBP", "United Kingdom"),
        ("C536383", "15311", dt.datetime(2010, 12, 1, 9, 49), "cancelled", "GBP", "United Kingdom"),
    ]
    assert rows(
        utc_store,
        "SELECT order_id, line_no, product_id, product_name, quantity, unit_price, amount "
        "FROM order_lines ORDER BY order_id, line_no",
    ) == [
        (
            "536365",
            1,
            "85123A",
            "WHITE HANGING HEART T-LIGHT HOLDER",
            Decimal(6),
            Decimal("2.55"),
            Decimal("15.30"),
        ),
        # The exact duplicate line is kept as the file has it.
        ("536365", 2, "71053", "WHITE METAL LANTERN", Decimal(6), Decimal("3.39"), Decimal("20.34")),
        ("536365", 3, "71053", "WHITE METAL LANTERN", Decimal(6), Decimal("3.39"), Decimal("20.34")),
        (
            "536544",
            1,
            "21773",
            'DECORATIVE ROSE BATHROOM BOTTLE, "VINTAGE"',
            Decimal(1),
            Decimal("4.21"),
            Decimal("4.21"),
        ),
        ("581587", 1, "22138", "BAKING SET 9 PIECE RETROSPOT", Decimal(3), Decimal("4.95"), Decimal("14.85")),
        ("C536379", 1, "D", "Discount", Decimal(-1), Decimal("27.50"), Decimal("-27.50")),
        (
            "C536383",
            1,
            "35004C",
            "SET OF 3 COLOURED  FLYING DUCKS",
            Decimal(-1),
            Decimal("4.65"),
            Decimal("-4.65"),
        ),
    ]


def test_online_retail_reads_the_original_xlsx_workbook(utc_store: Store, tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Online Retail"
    sheet.append(
        [
            "InvoiceNo",
            "StockCode",
            "Description",
            "Quantity",
            "InvoiceDate",
            "UnitPrice",
            "CustomerID",
            "Country",
        ]
    )
    sheet.append(
        [
            536365,
            "85123A",
            "WHITE HANGING HEART T-LIGHT HOLDER",
            6,
            dt.datetime(2010, 12, 1, 8, 26),
            2.55,
            17850.0,
            "United Kingdom",
        ]
    )
    sheet.append(
        ["C536379", "D", "Discount", -1, dt.datetime(2010, 12, 1, 9, 41), 27.5, None, "United Kingdom"]
    )
    path = tmp_path / "Online Retail.xlsx"
    book.save(path)

    result = load(utc_store, "order-lines", path, tmp_path, preset="online-retail")

    assert counts(result) == (2, 2, 0, 0, 0)
    assert rows(utc_store, "SELECT order_id, customer_id, ordered_at, status FROM orders ORDER BY 1") == [
        ("536365", "17850", dt.datetime(2010, 12, 1, 8, 26), "completed"),
        ("C536379", None, dt.datetime(2010, 12, 1, 9, 41), "cancelled"),
    ]
    assert rows(utc_store, "SELECT order_id, amount FROM order_lines ORDER BY 1") == [
        ("536365", Decimal("15.30")),
        ("C536379", Decimal("-27.50")),
    ]


# ---------------------------------------------------------------- zendesk


def test_zendesk_tickets_with_first_reply_minutes(paris_store: Store, tmp_path: Path) -> None:
    result = load(paris_store, "tickets", FIXTURES / "zendesk_tickets.csv", tmp_path, preset="zendesk")

    assert counts(result) == (3, 3, 0, 0, 0)
    assert rows(
        paris_store,
        "SELECT source, ticket_id, customer_id, opened_at, first_response_at, resolved_at, channel, category, "
        "priority, status, agent_id, reopens, subject, body FROM tickets ORDER BY ticket_id",
    ) == [
        # Created 14:01:22 +0100 = 13:01:22 UTC; first reply 95 minutes later.
        (
            "zendesk",
            "4521",
            "389001",
            dt.datetime(2024, 3, 5, 13, 1, 22),
            dt.datetime(2024, 3, 5, 14, 36, 22),
            dt.datetime(2024, 3, 6, 8, 0),
            "Mail",
            "Incident",
            "High",
            "Closed",
            "Paul Agent",
            1,
            "Colis non reçu, commande #1001",
            None,
        ),
        # No reply yet: no first response; -0500 crosses midnight in UTC.
        (
            "zendesk",
            "4522",
            "389002",
            dt.datetime(2024, 3, 7, 4, 50),
            None,
            None,
            "Web form",
            "Question",
            "Normal",
            "Open",
            None,
            0,
            "Question about sizes",
            None,
        ),
        (
            "zendesk",
            "4523",
            "389003",
            dt.datetime(2024, 6, 30, 23, 59),
            dt.datetime(2024, 7, 1, 0, 1),
            dt.datetime(2024, 7, 1, 0, 30),
            "Chat",
            None,
            None,
            "Solved",
            "Paul Agent",
            0,
            "Refund",
            None,
        ),
    ]


# ---------------------------------------------------------------- survey


def test_survey_typeform_export_with_the_question_columns_named(paris_store: Store, tmp_path: Path) -> None:
    result = load(
        paris_store,
        "responses",
        FIXTURES / "survey_typeform.csv",
        tmp_path,
        preset="survey",
        maps={
            "score": "How likely are you to recommend us to a friend?",
            "comment": "What is the main reason for your score?",
            "customer_id": "email",
        },
        sets={"kind": "nps"},
    )

    assert counts(result) == (3, 3, 0, 0, 0)
    assert rows(
        paris_store,
        "SELECT source, response_id, question_id, survey_id, kind, scale_min, scale_max, score, comment, "
        "customer_id, responded_at FROM survey_responses ORDER BY responded_at",
    ) == [
        # "Submit Date (UTC)" is UTC, not Paris time.
        (
            "survey",
            "k3v9x2m8q1w7e5r4t6y0",
            "nps",
            "survey",
            "nps",
            0,
            10,
            Decimal(10),
            "Livraison rapide, produits top !",
            "sophie.martin@example.com",
            dt.datetime(2024, 3, 10, 9, 0, 12),
        ),
        (
            "survey",
            "p0o9i8u7y6t5r4e3w2q1",
            "nps",
            "survey",
            "nps",
            0,
            10,
            Decimal(3),
            "Delivery took two weeks,\nand nobody answered my e-mails.",
            "jan@example.nl",
            dt.datetime(2024, 3, 11, 23, 1, 45),
        ),
        # Skipped the question: kept, without a score.
        (
            "survey",
            "z1x2c3v4b5n6m7a8s9d0",
            "nps",
            "survey",
            "nps",
            0,
            10,
            None,
            None,
            None,
            dt.datetime(2024, 3, 12, 10, 0, 30),
        ),
    ]


def test_survey_without_a_kind_says_how_to_set_it(utc_store: Store, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"--set kind=nps"):
        load(utc_store, "responses", FIXTURES / "survey_typeform.csv", tmp_path, preset="survey")


# ---------------------------------------------------------------- reviews


def test_trustpilot_reviews(paris_store: Store, tmp_path: Path) -> None:
    result = load(paris_store, "reviews", FIXTURES / "trustpilot_reviews.csv", tmp_path, preset="trustpilot")

    assert counts(result) == (2, 2, 0, 0, 0)
    assert rows(
        paris_store,
        "SELECT source, review_id, kind, author, rating, title, text, posted_at, brand, is_competitor "
        "FROM reviews ORDER BY posted_at",
    ) == [
        (
            "trustpilot",
            "65f00a1b2c3d4e5f6a7b8c9d",
            "review",
            None,
            Decimal(5),
            "Great service!",
            "Parcel arrived next day.\nWill order again, thanks",
            dt.datetime(2024, 3, 12, 8, 15),
            "own",
            False,
        ),
        (
            "trustpilot",
            "65f00a1b2c3d4e5f6a7b8c9e",
            "review",
            None,
            Decimal(1),
            "Never again",
            'Wrong size, "free" returns cost me €6.',
            dt.datetime(2024, 3, 14, 21, 40, 33),
            "own",
            False,
        ),
    ]


def test_trustpilot_review_id_column_in_either_case(utc_store: Store, tmp_path: Path) -> None:
    text = (
        (FIXTURES / "trustpilot_reviews.csv").read_text(encoding="utf-8").replace("Review Id", "Review ID", 1)
    )
    path = tmp_path / "trustpilot.csv"
    path.write_text(text, encoding="utf-8")

    result = load(utc_store, "reviews", path, tmp_path, preset="trustpilot", maps={"author": "Webshop Name"})

    assert counts(result) == (2, 2, 0, 0, 0)
    assert rows(utc_store, "SELECT review_id, author FROM reviews ORDER BY 1") == [
        ("65f00a1b2c3d4e5f6a7b8c9d", "Example Shop"),
        ("65f00a1b2c3d4e5f6a7b8c9e", "Example Shop"),
    ]


def test_google_reviews_star_words_and_utc_times(paris_store: Store, tmp_path: Path) -> None:
    result = load(
        paris_store, "reviews", FIXTURES / "google_reviews.jsonl", tmp_path, preset="google-reviews"
    )

    assert counts(result) == (3, 3, 0, 0, 0)
    assert rows(
        paris_store,
        "SELECT source, review_id, kind, author, rating, title, text, posted_at FROM reviews ORDER BY 2",
    ) == [
        (
            "google",
            "AbFvOq1",
            "review",
            "Marie Dubois",
            Decimal(5),
            None,
            "Super accueil, je recommande.",
            dt.datetime(2024, 3, 5, 13, 1, 22, 123456),
        ),
        (
            "google",
            "AbFvOq2",
            "review",
            "A Google user",
            Decimal(2),
            None,
            "(Translated by Google) Long wait\n\n(Original)\nLange Wartezeit",
            dt.datetime(2024, 3, 7, 18, 45),
        ),
        # STAR_RATING_UNSPECIFIED: no rating rather than a refusal; no comment either.
        ("google", "AbFvOq3", "review", "Tom", None, None, None, dt.datetime(2024, 3, 8, 7, 0)),
    ]


def test_google_reviews_refuse_an_unknown_rating_word(utc_store: Store, tmp_path: Path) -> None:
    path = tmp_path / "reviews.jsonl"
    path.write_text(
        '{"reviewId":"g1","reviewer":{"displayName":"Zoe"},"starRating":"SIX","comment":"?","createTime":"2024-03-05T13:01:22Z"}\n'
        '{"reviewId":"g2","reviewer":{"displayName":"Yan"},"starRating":"ONE","createTime":"2024-03-05T13:01:23Z"}\n',
        encoding="utf-8",
    )

    result = load(utc_store, "reviews", path, tmp_path, preset="google-reviews")

    assert counts(result) == (2, 1, 0, 0, 1)
    assert [(r["field"], r["value"]) for r in result.reject_sample] == [("rating", "SIX")]
    assert rows(utc_store, "SELECT review_id, rating FROM reviews") == [("g2", Decimal(1))]


def test_x_posts_in_classic_and_iso_time_formats(paris_store: Store, tmp_path: Path) -> None:
    result = load(
        paris_store,
        "reviews",
        FIXTURES / "x_posts.csv",
        tmp_path,
        preset="x-posts",
        maps={"author": "author.username", "language": "lang"},
    )

    assert counts(result) == (3, 3, 0, 0, 0)
    assert rows(
        paris_store,
        "SELECT source, review_id, kind, url, author, rating, text, posted_at, language, brand FROM reviews "
        "ORDER BY posted_at",
    ) == [
        (
            "x",
            "1050118621198921728",
            "post",
            "https://x.com/i/web/status/1050118621198921728",
            "TwitterAPI",
            None,
            "To make room for more expression, we will now count all emojis as equal—including those with "
            "gender\u200d\u200d\u200d \u200d\u200dand skin t… https://t.co/MkGjXf9aXm",
            dt.datetime(2018, 10, 10, 20, 19, 24),
            "en",
            "own",
        ),
        (
            "x",
            "1767183208216641899",
            "post",
            "https://x.com/i/web/status/1767183208216641899",
            "jan_nl",
            None,
            "@ExampleShop my order #1002 still hasn't shipped, 2 weeks now. #fail",
            dt.datetime(2024, 3, 11, 13, 45, 2),
            "en",
            "own",
        ),
        # Mon Mar 11 14:00:00 -0500 2024 is 19:00 UTC.
        (
            "x",
            "1767183208216641900",
            "post",
            "https://x.com/i/web/status/1767183208216641900",
            "marie_d",
            None,
            'Love the new collection, "Printemps" is 🔥',
            dt.datetime(2024, 3, 11, 19, 0),
            "en",
            "own",
        ),
    ]


# ---------------------------------------------------------------- olist and cdnow (small samples)


def test_olist_sample_resolves_per_order_customer_ids(utc_store: Store, tmp_path: Path) -> None:
    results = [
        load(utc_store, entity, FIXTURES / name, tmp_path, preset="olist")
        for entity, name in (
            ("customers", "olist_customers.csv"),
            ("orders", "olist_orders.csv"),
            ("order-lines", "olist_order_items.csv"),
            ("reviews", "olist_order_reviews.csv"),
        )
    ]

    assert [counts(r) for r in results] == [
        (3, 2, 0, 0, 0),
        (3, 3, 0, 0, 0),
        (4, 4, 0, 0, 0),
        (3, 3, 0, 0, 0),
    ]
    assert rows(utc_store, "SELECT customer_id, region, country, attributes FROM customers ORDER BY 1") == [
        (
            "290c77bc529b7ac935b93aa66c333dc3",
            "SP",
            "BR",
            '{"customer_zip_code_prefix":"09790","customer_city":"sao bernardo do campo"}',
        ),
        (
            "861eff4711a542e4b93843c6dd7febb0",
            "SP",
            "BR",
            '{"customer_zip_code_prefix":"14409","customer_city":"franca"}',
        ),
    ]
    # Two orders by the same person, under two per-order ids, resolve to one customer.
    assert rows(
        utc_store, "SELECT order_id, customer_id, ordered_at, status, currency FROM orders ORDER BY 3"
    ) == [
        (
            "e481f51cbdc54678b7cc49136f2d6af7",
            "861eff4711a542e4b93843c6dd7febb0",
            dt.datetime(2017, 10, 2, 10, 56, 33),
            "delivered",
            "BRL",
        ),
        (
            "53cdb2fc8bc7dce0b6741e2150273451",
            "290c77bc529b7ac935b93aa66c333dc3",
            dt.datetime(2018, 7, 24, 20, 41, 37),
            "canceled",
            "BRL",
        ),
        (
            "47770eb9100c2d0c44946d9cf07ec65d",
            "861eff4711a542e4b93843c6dd7febb0",
            dt.datetime(2018, 8, 8, 8, 38, 49),
            "delivered",
            "BRL",
        ),
    ]
    assert rows(
        utc_store, "SELECT order_id, line_no, quantity, unit_price, amount FROM order_lines ORDER BY 1, 2"
    ) == [
        ("47770eb9100c2d0c44946d9cf07ec65d", 1, Decimal(1), Decimal("159.90"), Decimal("159.90")),
        ("53cdb2fc8bc7dce0b6741e2150273451", 1, Decimal(1), Decimal("118.70"), Decimal("118.70")),
        ("53cdb2fc8bc7dce0b6741e2150273451", 2, Decimal(1), Decimal("118.70"), Decimal("118.70")),
        ("e481f51cbdc54678b7cc49136f2d6af7", 1, Decimal(1), Decimal("29.99"), Decimal("29.99")),
    ]
    # One review covering two orders is kept once per order, keyed by review and order.
    message = "Entrega do produto diferente do solicitado\r\nAguardo orientação para a troca"
    assert rows(
        utc_store,
        "SELECT review_id, order_id, rating, title, text, posted_at, language FROM reviews ORDER BY 1",
    ) == [
        (
            "08528f70f579f0c830189efc523d2182-47770eb9100c2d0c44946d9cf07ec65d",
            "47770eb9100c2d0c44946d9cf07ec65d",
            Decimal(1),
            "Produto errado ",
            message,
            dt.datetime(2018, 8, 3),
            "pt",
        ),
        (
            "08528f70f579f0c830189efc523d2182-53cdb2fc8bc7dce0b6741e2150273451",
            "53cdb2fc8bc7dce0b6741e2150273451",
            Decimal(1),
            "Produto errado ",
            message,
            dt.datetime(2018, 8, 3),
            "pt",
        ),
        (
            "7bc2406110b926393aa56f80a40eba40-e481f51cbdc54678b7cc49136f2d6af7",
            "e481f51cbdc54678b7cc49136f2d6af7",
            Decimal(4),
            None,
            None,
            dt.datetime(2017, 10, 11),
            "pt",
        ),
    ]


def test_cdnow_sample_makes_one_order_per_customer_and_day(utc_store: Store, tmp_path: Path) -> None:
    result = load(
        utc_store, "order-lines", FIXTURES / "cdnow_master.txt", tmp_path, preset="cdnow"
    )

    assert counts(result) == (6, 6, 0, 0, 0)
    assert rows(utc_store, "SELECT order_id, customer_id, ordered_at, currency FROM orders ORDER BY 1") == [
        ("00001-19970101", "00001", dt.datetime(1997, 1, 1), "USD"),
        ("00002-19970112", "00002", dt.datetime(1997, 1, 12), "USD"),
        ("00003-19970102", "00003", dt.datetime(1997, 1, 2), "USD"),
        ("00003-19970330", "00003", dt.datetime(1997, 3, 30), "USD"),
        ("00455-19970102", "00455", dt.datetime(1997, 1, 2), "USD"),
    ]
    assert rows(
        utc_store, "SELECT order_id, line_no, quantity, unit_price, amount FROM order_lines ORDER BY 1, 2"
    ) == [
        ("00001-19970101", 1, Decimal(1), Decimal("11.77"), Decimal("11.77")),
        ("00002-19970112", 1, Decimal(1), Decimal("12.00"), Decimal("12.00")),
        ("00002-19970112", 2, Decimal(5), Decimal("15.40"), Decimal("77.00")),
        ("00003-19970102", 1, Decimal(2), Decimal("10.38"), Decimal("20.76")),
        ("00003-19970330", 1, Decimal(2), Decimal("10.38"), Decimal("20.76")),
        ("00455-19970102", 1, Decimal(1), Decimal("0.00"), Decimal("0.00")),
    ]
