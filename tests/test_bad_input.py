"""Bad input: every case gets a clear message naming the place, and the store stays as it was."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import rows, snapshot, write
from cxloop import InputError, Store

GOOD = "order_id,customer_id,ordered_at\nO0,C0,2024-01-01\n"


@pytest.fixture
def seeded(store: Store, load, tmp_path: Path) -> Store:
    """A store that already holds one order, so 'unchanged' is a real claim."""
    load(store, "orders", write(tmp_path / "seed.csv", GOOD))
    return store


def refused(store: Store, load, path: Path, entity: str = "orders", **options: object) -> InputError:
    before = snapshot(store)
    with pytest.raises(InputError) as caught:
        load(store, entity, path, **options)
    assert snapshot(store) == before, "a refused file must leave the store untouched"
    return caught.value


def test_a_missing_required_column_is_named_with_the_columns_found(
    seeded: Store, load, tmp_path: Path
) -> None:
    error = refused(seeded, load, write(tmp_path / "o.csv", "order_id,customer\nO1,C1\n"))

    assert "ordered_at" in str(error) and "'order_id', 'customer'" in str(error)
    assert error.file and error.file.endswith("o.csv")


def test_a_wrong_delimiter_says_which_one_the_header_uses(seeded: Store, load, tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", "order_id;ordered_at\nO1;2024-01-01\n")

    error = refused(seeded, load, path, delimiter=",")

    assert "order_id;ordered_at" in str(error) and "try --delimiter ';'" in str(error)


def test_a_mapped_column_that_is_absent_is_named(seeded: Store, load, tmp_path: Path) -> None:
    error = refused(seeded, load, write(tmp_path / "o.csv", GOOD), maps={"ordered_at": "Placed At"})

    assert "'Placed At'" in str(error) and error.field == "ordered_at"


def test_an_empty_file(seeded: Store, load, tmp_path: Path) -> None:
    assert "empty" in str(refused(seeded, load, write(tmp_path / "o.csv", "")))


def test_a_header_without_rows(seeded: Store, load, tmp_path: Path) -> None:
    assert "no data rows" in str(refused(seeded, load, write(tmp_path / "o.csv", "order_id,ordered_at\n")))


def test_a_binary_file(seeded: Store, load, tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_bytes(b"\x00\x01\x02binary\xff\xfe" * 100)

    assert "binary" in str(refused(seeded, load, path))


def test_a_workbook_named_csv_is_recognised(seeded: Store, load, tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 50)

    assert "ZIP archive" in str(refused(seeded, load, path))


def test_a_wrong_encoding_names_the_line(seeded: Store, load, tmp_path: Path) -> None:
    path = write(
        tmp_path / "o.csv", "order_id,ordered_at,status\nO1,2024-01-01,ok\nO2,2024-01-02,Livré\n", "latin-1"
    )

    error = refused(seeded, load, path, encoding="utf-8")

    assert error.line == 3 and "not valid utf-8" in str(error) and "--encoding" in str(error)


def test_an_unknown_encoding(seeded: Store, load, tmp_path: Path) -> None:
    assert "unknown encoding" in str(
        refused(seeded, load, write(tmp_path / "o.csv", GOOD), encoding="klingon")
    )


def test_unknown_fields_in_a_mapping(seeded: Store, load, tmp_path: Path) -> None:
    error = refused(seeded, load, write(tmp_path / "o.csv", GOOD), maps={"colour": "order_id"})

    assert "unknown field(s) colour" in str(error)


# Rows that are wrong are rejected one by one, with line, field, value and reason; the good rows load.


def reject_report(result) -> list[dict[str, str]]:
    with open(result.reject_file, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_an_unparseable_date_is_rejected_with_its_line(seeded: Store, load, tmp_path: Path) -> None:
    result = load(
        seeded, "orders", write(tmp_path / "o.csv", "order_id,ordered_at\nO1,2024-01-01\nO2,yesterday\n")
    )

    assert (result.loaded, result.rejected) == (1, 1)
    [problem] = reject_report(result)
    assert problem["line"] == "3" and problem["field"] == "ordered_at" and problem["value"] == "yesterday"
    assert "not a date/time" in problem["reason"]


def test_a_score_off_its_scale(store: Store, load, tmp_path: Path) -> None:
    result = load(
        store,
        "responses",
        write(
            tmp_path / "r.csv",
            (
                "response_id,kind,score,responded_at\nR1,nps,11,2024-01-01\nR2,csat,0,2024-01-01\nR3,ces,7,2024-01-01\n"
            ),
        ),
    )

    assert (result.loaded, result.rejected) == (1, 2)
    reasons = {p["line"]: p["reason"] for p in reject_report(result)}
    assert reasons == {
        "2": "score 11.0 is outside the nps scale 0-10",
        "3": "score 0.0 is outside the csat scale 1-5",
    }


def test_duplicate_keys_inside_a_file_are_all_rejected(store: Store, load, tmp_path: Path) -> None:
    result = load(
        store,
        "orders",
        write(tmp_path / "o.csv", ("order_id,ordered_at\nO1,2024-01-01\nO2,2024-01-02\nO1,2024-01-03\n")),
    )

    assert (result.loaded, result.rejected) == (1, 2)
    assert {p["line"] for p in reject_report(result)} == {"2", "4"}
    assert rows(store, "SELECT order_id FROM orders") == [("O2",)]


def test_a_ten_megabyte_field_is_rejected_not_loaded(store: Store, load, tmp_path: Path) -> None:
    huge = "x" * (10 * 1024 * 1024)
    result = load(
        store,
        "tickets",
        write(tmp_path / "t.csv", (f"ticket_id,opened_at,body\nT1,2024-01-01,short\nT2,2024-01-01,{huge}\n")),
    )

    assert (result.loaded, result.rejected) == (1, 1)
    [problem] = reject_report(result)
    assert problem["line"] == "3" and problem["field"] == "body"
    assert "10,485,760 bytes long" in problem["reason"] and len(problem["value"]) < 300


def test_a_malformed_record_is_rejected_with_its_physical_line(store: Store, load, tmp_path: Path) -> None:
    result = load(
        store,
        "tickets",
        write(
            tmp_path / "t.csv",
            (
                'ticket_id,opened_at,body\nT1,2024-01-01,"two\nlines"\nT2,2024-01-01,ok,extra\nT3,bad-date,ok\n'
            ),
        ),
    )

    assert (result.loaded, result.rejected) == (1, 2)
    problems = reject_report(result)
    assert [(p["line"], p["field"]) for p in problems] == [("4", "(record)"), ("5", "opened_at")]
    assert "too many columns" in problems[0]["reason"]


def test_a_ticket_resolved_before_it_was_opened(store: Store, load, tmp_path: Path) -> None:
    result = load(
        store,
        "tickets",
        write(tmp_path / "t.csv", ("ticket_id,opened_at,resolved_at\nT1,2024-01-02,2024-01-01\n")),
    )

    assert (
        result.rejected == 1 and "resolved before the ticket was opened" in result.reject_sample[0]["reason"]
    )


def test_formula_text_is_stored_verbatim_and_neutralised_in_csv_exports(
    store: Store, load, tmp_path: Path
) -> None:
    formula = '=HYPERLINK("http://evil.example","click")'
    result = load(
        store,
        "orders",
        write(
            tmp_path / "o.csv",
            (
                f'order_id,ordered_at,status\nO1,2024-01-01,"{formula.replace(chr(34), chr(34) * 2)}"\n'
                "O2,not-a-date,-5\n"
                f'O3,not-a-date,"{formula.replace(chr(34), chr(34) * 2)}"\n'
            ),
        ),
    )

    assert rows(store, "SELECT status FROM orders") == [(formula,)]
    with open(result.rejected_rows_file, newline="", encoding="utf-8") as fh:
        rejected = list(csv.DictReader(fh))
    assert [r["status"] for r in rejected] == ["-5", "'" + formula]


def test_nul_characters_are_rejected(store: Store, load, tmp_path: Path) -> None:
    # PostgreSQL cannot store NUL in text; a text file with NUL bytes is refused whole as binary,
    # and a typed file (Parquet) carrying one in a string gets that row rejected.
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"order_id": ["O1", "O2"], "ordered_at": ["2024-01-01"] * 2, "status": ["a\x00b", "ok"]}),
        tmp_path / "o.parquet",
    )
    result = load(store, "orders", tmp_path / "o.parquet")

    assert (result.loaded, result.rejected) == (1, 1)
    assert result.reject_sample[0] == {
        "line": 1,
        "field": "status",
        "value": "a\x00b",
        "reason": "contains a NUL character",
    }


def test_a_fraction_where_a_whole_number_belongs(store: Store, load, tmp_path: Path) -> None:
    result = load(
        store,
        "tickets",
        write(tmp_path / "t.csv", "ticket_id,opened_at,reopens\nT1,2024-01-01,2.0\nT2,2024-01-01,1.5\n"),
    )

    assert (result.loaded, result.rejected) == (1, 1)
    assert result.reject_sample[0]["reason"] == "not a whole number"
