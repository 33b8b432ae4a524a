"""Importing files: what lands in the store, on DuckDB and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import rows, snapshot, write
from cxloop import Store

ORDERS = """order_id,customer_id,ordered_at,status,total_amount
O1,C1,2024-01-05 10:00:00,paid,10.50
O2,C2,2024-01-06T09:30:00+02:00,paid,20
O3,,2024-01-07,refunded,5.25
"""


def test_orders_land_typed_with_times_in_utc(store: Store, load, tmp_path: Path) -> None:
    result = load(store, "orders", write(tmp_path / "orders.csv", ORDERS))

    assert (result.rows_read, result.loaded, result.updated, result.unchanged, result.rejected) == (
        3,
        3,
        0,
        0,
        0,
    )
    assert rows(
        store, "SELECT order_id, customer_id, ordered_at, status, total_amount FROM orders ORDER BY 1"
    ) == [
        ("O1", "C1", dt.datetime(2024, 1, 5, 10, 0), "paid", Decimal("10.5000")),
        ("O2", "C2", dt.datetime(2024, 1, 6, 7, 30), "paid", Decimal("20.0000")),
        ("O3", None, dt.datetime(2024, 1, 7, 0, 0), "refunded", Decimal("5.2500")),
    ]


def test_reimporting_the_same_file_changes_nothing(store: Store, load, tmp_path: Path) -> None:
    path = write(tmp_path / "orders.csv", ORDERS)
    load(store, "orders", path)
    before = snapshot(store)

    again = load(store, "orders", path)

    assert (again.loaded, again.updated, again.unchanged, again.rejected) == (0, 0, 3, 0)
    after = snapshot(store)
    assert {k: v for k, v in after.items() if k != "imports"} == {
        k: v for k, v in before.items() if k != "imports"
    }


def test_an_updated_export_updates_only_the_changed_rows(store: Store, load, tmp_path: Path) -> None:
    first = load(store, "orders", write(tmp_path / "orders.csv", ORDERS))
    changed = ORDERS.replace("O3,,2024-01-07,refunded,5.25", "O3,,2024-01-07,returned,5.25")
    second = load(store, "orders", write(tmp_path / "orders-v2.csv", changed + "O4,C1,2024-02-01,paid,1\n"))

    assert (second.loaded, second.updated, second.unchanged) == (1, 1, 2)
    by_import = dict(rows(store, "SELECT order_id, import_id FROM orders"))
    assert by_import["O1"] == by_import["O2"] == first.import_id
    assert by_import["O3"] == by_import["O4"] == second.import_id
    assert rows(store, "SELECT status FROM orders WHERE order_id = 'O3'") == [("returned",)]


def test_dry_run_counts_but_writes_nothing(store: Store, load, tmp_path: Path) -> None:
    before = snapshot(store)
    result = load(store, "orders", write(tmp_path / "orders.csv", ORDERS), dry_run=True)

    assert result.dry_run and result.loaded == 3
    assert snapshot(store) == before


def test_every_import_is_recorded(store: Store, load, tmp_path: Path) -> None:
    result = load(store, "orders", write(tmp_path / "orders.csv", ORDERS))

    [(entity, loaded, rejected, sha)] = rows(
        store,
        "SELECT entity, loaded, rejected, file_sha256 FROM imports WHERE import_id = :i",
        i=result.import_id,
    )
    assert (entity, loaded, rejected, len(sha)) == ("orders", 3, 0, 64)


def test_line_level_invoices_make_their_orders(store: Store, load, tmp_path: Path) -> None:
    lines = write(
        tmp_path / "lines.csv",
        (
            "invoice,sku,qty,price,when,customer\n"
            "I1,A,2,1.50,2024-03-01 09:00,C1\n"
            "I1,B,1,10,2024-03-01 09:00,C1\n"
            "I2,A,-1,1.50,2024-03-02 12:00,\n"
        ),
    )
    result = load(
        store,
        "order-lines",
        lines,
        maps={
            "order_id": "invoice",
            "product_id": "sku",
            "quantity": "qty",
            "unit_price": "price",
            "ordered_at": "when",
            "customer_id": "customer",
        },
    )

    assert result.tables["orders"].loaded == 2 and result.loaded == 3
    assert rows(
        store, "SELECT order_id, line_no, product_id, quantity, amount FROM order_lines ORDER BY 1, 2"
    ) == [
        ("I1", 1, "A", Decimal("2.0000"), Decimal("3.0000")),
        ("I1", 2, "B", Decimal("1.0000"), Decimal("10.0000")),
        ("I2", 1, "A", Decimal("-1.0000"), Decimal("-1.5000")),
    ]
    assert rows(store, "SELECT order_id, customer_id, ordered_at FROM orders ORDER BY 1") == [
        ("I1", "C1", dt.datetime(2024, 3, 1, 9, 0)),
        ("I2", None, dt.datetime(2024, 3, 2, 12, 0)),
    ]


def test_order_lines_need_their_order(store: Store, load, tmp_path: Path) -> None:
    load(store, "orders", write(tmp_path / "orders.csv", ORDERS))
    result = load(
        store,
        "order-lines",
        write(
            tmp_path / "lines.csv",
            ("order_id,line_no,product_id,quantity,unit_price\nO1,1,A,1,10.5\nO9,1,A,1,3\n"),
        ),
    )

    assert (result.loaded, result.rejected) == (1, 1)
    [reject] = result.reject_sample
    assert (
        reject["line"] == 3 and reject["field"] == "order_id" and "O9 is not in the store" in reject["reason"]
    )


def test_customers_keep_unmapped_columns_as_attributes(store: Store, load, tmp_path: Path) -> None:
    load(
        store,
        "customers",
        write(tmp_path / "c.csv", ("Customer ID,Segment,Plan,Zip\nC1,retail,gold,01234\n")),
    )

    [(segment, attributes)] = rows(store, "SELECT segment, attributes FROM customers")
    assert segment == "retail"
    assert json.loads(attributes) == {"Plan": "gold", "Zip": "01234"}


def test_customer_aliases_resolve_ids_used_by_other_exports(store: Store, load, tmp_path: Path) -> None:
    load(
        store,
        "customers",
        write(tmp_path / "c.csv", ("unique,per_order,state\nU1,a1,SP\nU1,a2,SP\nU2,a3,RJ\n")),
        maps={"customer_id": "unique", "alias": "per_order", "region": "state"},
    )
    load(
        store,
        "orders",
        write(
            tmp_path / "o.csv",
            (
                "order_id,customer_id,ordered_at\nO1,a1,2024-01-01\nO2,a2,2024-02-01\nO3,a3,2024-03-01\nO4,U2,2024-04-01\n"
            ),
        ),
    )

    assert rows(store, "SELECT count(*) FROM customers") == [(2,)]
    assert rows(store, "SELECT order_id, customer_id FROM orders ORDER BY 1") == [
        ("O1", "U1"),
        ("O2", "U1"),
        ("O3", "U2"),
        ("O4", "U2"),
    ]


def test_survey_answers_get_their_scale_and_defaults(store: Store, load, tmp_path: Path) -> None:
    result = load(
        store,
        "responses",
        write(
            tmp_path / "nps.csv",
            (
                "id,score,comment,date\nR1,9,Great service,2024-05-01\nR2,3,<script>alert(1)</script>,2024-05-02\nR3,,,2024-05-03\n"
            ),
        ),
        maps={"response_id": "id", "responded_at": "date"},
        sets={"kind": "NPS"},
        source="typeform",
    )

    assert (result.loaded, result.rejected) == (3, 0)
    assert rows(
        store,
        "SELECT response_id, question_id, survey_id, kind, scale_min, scale_max, score, comment "
        "FROM survey_responses ORDER BY 1",
    ) == [
        ("R1", "nps", "typeform", "nps", 0, 10, Decimal("9.0000"), "Great service"),
        ("R2", "nps", "typeform", "nps", 0, 10, Decimal("3.0000"), "<script>alert(1)</script>"),
        ("R3", "nps", "typeform", "nps", 0, 10, None, None),
    ]


def test_tickets_and_reviews(store: Store, load, tmp_path: Path) -> None:
    load(
        store,
        "tickets",
        write(
            tmp_path / "t.csv",
            (
                "ticket_id,opened_at,first_response_at,resolved_at,category,is_complaint,body\n"
                'T1,2024-01-01 10:00,2024-01-01 11:00,2024-01-02,delivery,yes,"Late, again\nand again"\n'
            ),
        ),
    )
    load(
        store,
        "reviews",
        write(
            tmp_path / "r.csv",
            (
                "review_id,rating,text,posted_at,brand,is_competitor\nV1,5,Lovely,2024-01-01,,\nV2,2,Meh,2024-01-02,Rival,true\n"
            ),
        ),
    )

    assert rows(store, "SELECT ticket_id, is_complaint, body, source FROM tickets") == [
        ("T1", True, "Late, again\nand again", "default"),
    ]
    assert rows(store, "SELECT review_id, kind, brand, is_competitor FROM reviews ORDER BY 1") == [
        ("V1", "review", "own", False),
        ("V2", "review", "Rival", True),
    ]


@pytest.mark.parametrize("kind", ["tsv", "parquet", "jsonl", "xlsx", "crlf-bom"])
def test_every_file_format_gives_the_same_rows(kind: str, duck_store: Store, load, tmp_path: Path) -> None:
    records = [
        {"order_id": "O1", "customer_id": "C1", "ordered_at": "2024-01-05 10:00:00", "total_amount": "10.5"},
        {"order_id": "O2", "customer_id": None, "ordered_at": "2024-01-06 00:00:00", "total_amount": "3"},
    ]
    path = _write_format(kind, records, tmp_path)

    result = load(duck_store, "orders", path)

    assert (result.loaded, result.rejected) == (2, 0)
    assert rows(
        duck_store, "SELECT order_id, customer_id, ordered_at, total_amount FROM orders ORDER BY 1"
    ) == [
        ("O1", "C1", dt.datetime(2024, 1, 5, 10, 0), Decimal("10.5000")),
        ("O2", None, dt.datetime(2024, 1, 6, 0, 0), Decimal("3.0000")),
    ]


def _write_format(kind: str, records: list[dict[str, str | None]], tmp_path: Path) -> Path:
    names = list(records[0])
    if kind == "tsv":
        text = "\t".join(names) + "\n" + "".join("\t".join(r[n] or "" for n in names) + "\n" for r in records)
        return write(tmp_path / "orders.tsv", text)
    if kind == "crlf-bom":
        text = (
            ",".join(names) + "\r\n" + "".join(",".join(r[n] or "" for n in names) + "\r\n" for r in records)
        )
        return write(tmp_path / "orders.csv", text, encoding="utf-8-sig")
    if kind == "parquet":
        table = pa.table(
            {
                "order_id": [r["order_id"] for r in records],
                "customer_id": [r["customer_id"] for r in records],
                "ordered_at": pa.array([dt.datetime.fromisoformat(str(r["ordered_at"])) for r in records]),
                "total_amount": pa.array([float(str(r["total_amount"])) for r in records]),
            }
        )
        pq.write_table(table, tmp_path / "orders.parquet")
        return tmp_path / "orders.parquet"
    if kind == "jsonl":
        return write(tmp_path / "orders.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(names)
    for r in records:
        sheet.append(
            [
                dt.datetime.fromisoformat(str(r[n]))
                if n == "ordered_at"
                else float(str(r[n]))
                if n == "total_amount"
                else r[n]
                for n in names
            ]
        )
    book.save(tmp_path / "orders.xlsx")
    return tmp_path / "orders.xlsx"


def test_xlsx_reject_lines_are_sheet_rows(duck_store: Store, load, tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["title row, ignored: the header is the first non-empty row"])
    book.remove(sheet)
    sheet = book.create_sheet("Orders")
    sheet.append([])
    sheet.append(["order_id", "ordered_at"])
    sheet.append(["O1", "2024-01-01"])
    sheet.append(["O2", "not a date"])
    book.save(tmp_path / "o.xlsx")

    result = load(duck_store, "orders", tmp_path / "o.xlsx", sheet="Orders")

    assert result.loaded == 1
    assert result.reject_sample[0]["line"] == 4


def test_dates_in_a_stated_format(store: Store, load, tmp_path: Path) -> None:
    result = load(
        store,
        "orders",
        write(
            tmp_path / "o.csv", ("order_id,ordered_at\nO1,31/01/2024\nO2,01/02/2024 13:45\nO3,2024-02-03\n")
        ),
        date_formats=["%d/%m/%Y", "%d/%m/%Y %H:%M"],
    )

    assert (result.loaded, result.rejected) == (2, 1)
    assert result.reject_sample[0]["reason"].startswith("not a date/time in the stated format(s) %d/%m/%Y")
    assert rows(store, "SELECT ordered_at FROM orders ORDER BY 1") == [
        (dt.datetime(2024, 1, 31),),
        (dt.datetime(2024, 2, 1, 13, 45),),
    ]


def test_a_business_time_zone_turns_local_times_into_utc(tmp_path: Path, load) -> None:
    from cxloop.config import Settings

    store = Store.open(str(tmp_path / "tz.duckdb"), settings=Settings(timezone="Europe/Paris"))
    load(
        store,
        "orders",
        write(tmp_path / "o.csv", "order_id,ordered_at\nO1,2024-07-01 12:00\nO2,2024-01-01T12:00Z\n"),
    )

    assert rows(store, "SELECT ordered_at FROM orders ORDER BY order_id") == [
        (dt.datetime(2024, 7, 1, 10, 0),),
        (dt.datetime(2024, 1, 1, 12, 0),),
    ]


def test_saved_mappings_are_reused(store: Store, load, tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", "Order Number,Placed\nO1,2024-01-01\n")
    load(
        store, "orders", path, maps={"order_id": "Order Number", "ordered_at": "Placed"}, save_mapping="shop"
    )
    result = load(
        store,
        "orders",
        write(tmp_path / "o2.csv", "Order Number,Placed\nO2,2024-01-02\n"),
        mapping_name="shop",
    )

    assert result.loaded == 1
    assert rows(store, "SELECT count(*) FROM orders") == [(2,)]


def test_a_json_attributes_column_is_merged_with_the_other_columns(
    store: Store, load, tmp_path: Path
) -> None:
    result = load(
        store,
        "customers",
        write(
            tmp_path / "c.csv",
            ('customer_id,attributes,Tier\nC1,"{""plan"": ""gold""}",A\nC2,not json,B\nC3,,C\n'),
        ),
    )

    assert (result.loaded, result.rejected) == (2, 1)
    assert result.reject_sample[0]["reason"] == "not a JSON object"
    assert [
        (c, json.loads(a)) for c, a in rows(store, "SELECT customer_id, attributes FROM customers ORDER BY 1")
    ] == [
        ("C1", {"plan": "gold", "Tier": "A"}),
        ("C3", {"Tier": "C"}),
    ]


def test_json_lines_keep_their_utc_offsets(tmp_path: Path, load) -> None:
    from cxloop.config import Settings

    store = Store.open(str(tmp_path / "tz.duckdb"), settings=Settings(timezone="Europe/Paris"))
    path = write(
        tmp_path / "o.jsonl",
        (
            '{"order_id": "O1", "ordered_at": "2024-03-05T13:01:22Z", "meta": {"a": 1}}\n'
            '{"order_id": "O2", "ordered_at": "2024-03-05 13:01:22 +0100"}\n'
        ),
    )
    load(store, "orders", path)

    assert rows(store, "SELECT ordered_at FROM orders ORDER BY 1") == [
        (dt.datetime(2024, 3, 5, 12, 1, 22),),
        (dt.datetime(2024, 3, 5, 13, 1, 22),),
    ]


def test_whitespace_separated_text_reports_physical_lines(duck_store: Store, load, tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.txt",
        " order_id   ordered_at\n O1  2024-01-01\n\n O2 2024-01-02 extra\n O3  2024-13-01\n",
    )

    result = load(duck_store, "orders", path, format="whitespace")

    assert (result.loaded, result.rejected) == (1, 2)
    assert [(r["line"], r["field"]) for r in result.reject_sample] == [(4, "(record)"), (5, "ordered_at")]


def test_mapped_column_names_ignore_case_when_unambiguous(duck_store: Store, load, tmp_path: Path) -> None:
    result = load(
        duck_store,
        "orders",
        write(tmp_path / "o.csv", "Order ID,Placed\nO1,2024-01-01\n"),
        maps={"order_id": "order id", "ordered_at": "PLACED"},
    )

    assert result.loaded == 1 and result.mapping["order_id"] == "Order ID"


def test_optional_preset_columns_may_be_absent(duck_store: Store, tmp_path: Path) -> None:
    from cxloop.ingest.entities import get_entity
    from cxloop.ingest.mapping import Preset, resolve

    preset = Preset(
        "p",
        "P",
        "",
        "p",
        {
            "orders": {
                "fields": {
                    "order_id": "id",
                    "ordered_at": "at",
                    "status": {"column": "state", "optional": True},
                }
            }
        },
    )
    mapping = resolve(get_entity("orders"), ["id", "at"], file="f.csv", preset=preset)

    assert set(mapping.fields) == {"order_id", "ordered_at"}


def test_a_column_added_later_leaves_the_hash_of_rows_without_it_unchanged() -> None:
    # survey_responses.choices came with migration 0010: rows imported before keep their row_hash,
    # so importing the same file again after the upgrade finds them unchanged.
    import duckdb

    from cxloop.ingest.sqlgen import row_hash

    conn = duckdb.connect()
    conn.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('a', 2, NULL), ('a', 2, 'x')) v(s, n, late)")
    before, after = row_hash(["s", "n"]), row_hash(["s", "n"], when_set=["late"])
    found = conn.execute(f"SELECT {before}, {after} FROM t ORDER BY late NULLS FIRST").fetchall()
    assert found[0][0] == found[0][1] and found[1][0] != found[1][1]
