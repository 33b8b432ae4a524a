"""Presets against real exports: what cxloop stores must agree with what pandas reads.

The Olist and CDNOW files live in ../shared/data (see its README). Without that folder these
tests skip with the reason — except under CI=true, where they fail, because CI must run them.
The 500,000-line Online Retail file and the Latin-1 file are generated here.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from cxloop import ImportOptions, ImportResult, Store, import_file
from cxloop.config import Settings

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OLIST = SHARED_DATA / "olist"
CDNOW = SHARED_DATA / "cdnow" / "CDNOW_master.txt"
IN_CI = os.environ.get("CI", "").lower() == "true"
CXLOOP = Path(sys.executable).parent / "cxloop"


def need(path: Path) -> None:
    """Skip when the shared data is missing — but fail under CI, which must run everything."""
    if path.exists():
        return
    reason = f"real data not found at {path} (the shared data folder next to this checkout)"
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def open_store(directory: Path) -> Store:
    url = str(directory / "store.duckdb")
    return Store.open(url, settings=Settings(database_url=url, timezone="UTC"))


def load(store: Store, entity: str, path: Path, rejects: Path, **options: Any) -> ImportResult:
    return import_file(store, entity, path, ImportOptions(rejects_dir=rejects, **options))


def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def scalar(store: Store, sql: str) -> Any:
    return rows(store, sql)[0][0]


def counts(result: ImportResult) -> tuple[int, int, int, int, int]:
    return (result.rows_read, result.loaded, result.updated, result.unchanged, result.rejected)


def read_text_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def decimal_sum(values: pd.Series) -> Decimal:
    return sum((Decimal(v) for v in values), Decimal(0))


# ---------------------------------------------------------------- Olist


@pytest.fixture(scope="module")
def olist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    need(OLIST)
    directory = tmp_path_factory.mktemp("olist")
    store = open_store(directory)
    files = {
        "customers": OLIST / "olist_customers_dataset.csv",
        "orders": OLIST / "olist_orders_dataset.csv",
        "order-lines": OLIST / "olist_order_items_dataset.csv",
        "reviews": OLIST / "olist_order_reviews_dataset.csv",
    }
    results = {
        entity: load(store, entity, path, directory / "rejects", preset="olist")
        for entity, path in files.items()
    }
    frames = {entity: read_text_csv(path) for entity, path in files.items()}
    try:
        yield {"store": store, "files": files, "results": results, "frames": frames, "dir": directory}
    finally:
        store.close()


def test_olist_counts_match_pandas(olist: dict[str, Any]) -> None:
    results, frames = olist["results"], olist["frames"]
    customers, orders = frames["customers"], frames["orders"]
    items, reviews = frames["order-lines"], frames["reviews"]

    # Nothing in these files is invalid; every row is read and stored.
    assert counts(results["customers"]) == (len(customers), customers.customer_unique_id.nunique(), 0, 0, 0)
    assert (
        results["customers"].tables["customer_aliases"].loaded
        == customers.customer_id.nunique()
        == len(customers)
    )
    assert counts(results["orders"]) == (len(orders), orders.order_id.nunique(), 0, 0, 0)
    assert counts(results["order-lines"]) == (len(items), len(items), 0, 0, 0)
    assert counts(results["reviews"]) == (len(reviews), len(reviews), 0, 0, 0)
    assert (
        len(customers),
        customers.customer_unique_id.nunique(),
        len(orders),
        len(items),
        len(reviews),
    ) == (8135, 8016, 8135, 8365, 8225)

    store = olist["store"]
    assert scalar(store, "SELECT count(*) FROM customers") == customers.customer_unique_id.nunique()
    assert scalar(store, "SELECT count(*) FROM orders") == len(orders)
    assert scalar(store, "SELECT count(*) FROM order_lines") == len(items)
    assert scalar(store, "SELECT count(*) FROM reviews") == len(reviews)


def test_olist_orders_resolve_to_unique_customers(olist: dict[str, Any]) -> None:
    customers, orders = olist["frames"]["customers"], olist["frames"]["orders"]
    person = orders.merge(customers, on="customer_id", how="left")
    assert person.customer_unique_id.notna().all()
    expected = dict(zip(person.order_id, person.customer_unique_id, strict=True))

    store = olist["store"]
    assert dict(rows(store, "SELECT order_id, customer_id FROM orders")) == expected
    assert (
        scalar(store, "SELECT count(DISTINCT customer_id) FROM orders") == person.customer_unique_id.nunique()
    )
    # Fewer people than orders: repeat buyers are recognised as one customer.
    assert person.customer_unique_id.nunique() < len(orders)


def test_olist_times_and_statuses_are_stored_as_in_the_file(olist: dict[str, Any]) -> None:
    orders = olist["frames"]["orders"]
    stored = {
        order_id: (ordered_at.strftime("%Y-%m-%d %H:%M:%S"), status)
        for order_id, ordered_at, status in rows(
            olist["store"], "SELECT order_id, ordered_at, status FROM orders"
        )
    }
    assert stored == {
        o: (t, s)
        for o, t, s in zip(orders.order_id, orders.order_purchase_timestamp, orders.order_status, strict=True)
    }


def test_olist_revenue_equals_the_sum_of_item_prices(olist: dict[str, Any]) -> None:
    items = olist["frames"]["order-lines"]
    store = olist["store"]

    assert (
        scalar(store, "SELECT sum(amount) FROM order_lines")
        == decimal_sum(items.price)
        == Decimal("1093264.35")
    )
    # Freight is not revenue: it is not in the lines.
    assert scalar(store, "SELECT sum(quantity) FROM order_lines") == len(items)
    assert dict(rows(store, "SELECT order_id, count(*) FROM order_lines GROUP BY 1")) == (
        items.groupby("order_id").size().to_dict()
    )


def blank_is_none(text: str) -> str | None:
    """Free text is stored as written, except that blank text is no text."""
    return text if text.strip(" ") else None


def test_olist_reviews_shared_by_several_orders_are_kept_once_per_order(olist: dict[str, Any]) -> None:
    reviews = olist["frames"]["reviews"]
    store = olist["store"]

    shared = reviews[reviews.review_id.duplicated(keep=False)]
    assert shared.review_id.nunique() == 28 and len(shared) == 62
    assert scalar(store, "SELECT count(DISTINCT split_part(review_id, '-', 1)) FROM reviews") == (
        reviews.review_id.nunique()
    )
    stored = {
        (r[0], r[1]): r[2:]
        for r in rows(
            store, "SELECT review_id, order_id, rating, title, text, posted_at, language FROM reviews"
        )
    }
    expected = {
        (f"{r.review_id}-{r.order_id}", r.order_id): (
            Decimal(r.review_score),
            blank_is_none(r.review_comment_title),
            blank_is_none(r.review_comment_message),
            dt.datetime.fromisoformat(r.review_creation_date),
            "pt",
        )
        for r in reviews.itertuples()
    }
    assert stored == expected


def test_olist_second_import_changes_nothing(olist: dict[str, Any]) -> None:
    store, files, first = olist["store"], olist["files"], olist["results"]
    before = {
        t: rows(store, f"SELECT * FROM {t} ORDER BY ALL") for t in ("customers", "orders", "order_lines")
    }

    for entity, path in files.items():
        again = load(store, entity, path, olist["dir"] / "rejects", preset="olist")
        stored = first[entity].loaded
        assert counts(again) == (first[entity].rows_read, 0, 0, stored, 0), entity

    after = {
        t: rows(store, f"SELECT * FROM {t} ORDER BY ALL") for t in ("customers", "orders", "order_lines")
    }
    assert after == before


# ---------------------------------------------------------------- CDNOW


def test_cdnow_master_file(tmp_path: Path) -> None:
    need(CDNOW)
    frame = pd.read_csv(CDNOW, sep=r"\s+", dtype=str)
    per_order = frame.groupby(["customer_id", "date"]).size()
    store = open_store(tmp_path)
    try:
        first = load(store, "order-lines", CDNOW, tmp_path / "rejects", preset="cdnow")

        assert counts(first) == (len(frame), len(frame), 0, 0, 0) == (69659, 69659, 0, 0, 0)
        assert first.tables["orders"].loaded == len(per_order) == 67591
        assert scalar(store, "SELECT sum(amount) FROM order_lines") == decimal_sum(frame.dollar_value)
        assert scalar(store, "SELECT sum(quantity) FROM order_lines") == int(
            frame.number_of_cds.astype(int).sum()
        )
        assert scalar(store, "SELECT count(DISTINCT customer_id) FROM orders") == frame.customer_id.nunique()
        # A customer's purchases on one day are one order, its lines numbered 1..n.
        lines = dict(rows(store, "SELECT order_id, max(line_no) FROM order_lines GROUP BY 1"))
        assert lines == {f"{c}-{d}": n for (c, d), n in per_order.items()}

        again = load(store, "order-lines", CDNOW, tmp_path / "rejects", preset="cdnow")
        assert counts(again) == (len(frame), 0, 0, len(frame), 0)
        assert again.tables["orders"].unchanged == len(per_order)
    finally:
        store.close()


# ---------------------------------------------------------------- 500,000 Online Retail lines


def write_online_retail(path: Path, lines: int = 500_000, seed: int = 20101201) -> None:
    """UCI Online Retail as its CSV conversions look, with the data set's awkward cases."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 40, lines // 10)
    sizes = sizes[np.cumsum(sizes) <= lines]
    if lines > sizes.sum():
        sizes = np.append(sizes, lines - sizes.sum())
    invoices = len(sizes)

    def per_line(values: np.ndarray) -> np.ndarray:
        return np.repeat(values, sizes)

    cancelled = rng.random(invoices) < 0.02
    number = (536365 + np.arange(invoices)).astype(str)
    number = np.where(cancelled, np.char.add("C", number), number)
    when = pd.Timestamp("2010-12-01 08:00") + pd.to_timedelta(
        np.sort(rng.integers(0, 373 * 24 * 60, invoices)), unit="min"
    )
    date = (  # 12/1/2010 8:26 — month, day and hour without leading zeros
        when.month.astype(str)
        + "/"
        + when.day.astype(str)
        + "/"
        + when.year.astype(str)
        + " "
        + when.hour.astype(str)
        + ":"
        + pd.Series(when.minute).map("{:02d}".format).to_numpy()
    )
    customer = np.char.add(rng.integers(12346, 18288, invoices).astype(str), ".0")
    customer = np.where(rng.random(invoices) < 0.25, "", customer)
    countries = np.array(["United Kingdom"] * 8 + ["France", "Germany", "EIRE", "Spain", "Netherlands"])
    country = countries[rng.integers(0, len(countries), invoices)]

    words = np.array(
        [
            "WHITE",
            "HANGING",
            "HEART",
            "T-LIGHT",
            "HOLDER",
            "LANTERN",
            "RETROSPOT",
            "SET OF 3",
            "VINTAGE",
            "CAKE CASES",
            "JUMBO BAG",
            "RED",
            "PINK",
            "ROSE",
            "CERAMIC",
        ]
    )
    description = np.char.add(
        np.char.add(words[rng.integers(0, 15, lines)], " "), words[rng.integers(0, 15, lines)]
    )
    odd = rng.random(lines)
    description = np.where(odd < 0.01, np.char.add(description, ', "ASSORTED"'), description)
    description = np.where(
        (odd >= 0.01) & (odd < 0.02), np.char.add(description, ", PACK OF 12"), description
    )
    quantity = rng.integers(1, 25, lines)
    quantity = np.where(per_line(cancelled), -quantity, quantity)
    price = np.char.mod("%.2f", rng.integers(10, 2000, lines) / 100)
    frame = pd.DataFrame(
        {
            "InvoiceNo": per_line(number),
            "StockCode": rng.integers(10000, 90000, lines).astype(str),
            "Description": description,
            "Quantity": quantity.astype(str),
            "InvoiceDate": per_line(date),
            "UnitPrice": price,
            "CustomerID": per_line(customer),
            "Country": per_line(country),
        }
    )
    # Some corrupt values, which must be refused with the right reason.
    bad_price = rng.choice(lines, 25, replace=False)
    frame.loc[bad_price, "UnitPrice"] = "N/A"
    bad_date = rng.choice(lines, 10, replace=False)
    frame.loc[bad_date, "InvoiceDate"] = "13/45/2010 8:26"
    # Exact duplicate lines right after their original, as in the UCI file.
    duplicated = np.sort(rng.choice(lines - 1, 40, replace=False))
    frame = pd.concat([frame, frame.iloc[duplicated]]).sort_index(kind="stable").iloc[:lines]
    frame.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL)


def test_online_retail_500k_lines_match_pandas(tmp_path: Path) -> None:
    path = tmp_path / "online_retail.csv"
    write_online_retail(path)
    frame = read_text_csv(path)
    assert len(frame) == 500_000
    price_ok = pd.to_numeric(frame.UnitPrice, errors="coerce").notna()
    date_ok = pd.to_datetime(frame.InvoiceDate, format="%m/%d/%Y %H:%M", errors="coerce").notna()
    good = frame[price_ok & date_ok]
    bad_lines = set((frame.index[~(price_ok & date_ok)] + 2).tolist())  # the header is line 1
    pence = good.Quantity.astype(np.int64) * (good.UnitPrice.astype(float) * 100).round().astype(np.int64)
    first_lines = good.drop_duplicates("InvoiceNo")

    store = open_store(tmp_path)
    try:
        result = load(store, "order-lines", path, tmp_path / "rejects", preset="online-retail")

        assert counts(result) == (len(frame), len(good), 0, 0, len(bad_lines))
        assert len(bad_lines) == 35
        assert result.tables["orders"].loaded == good.InvoiceNo.nunique()
        assert scalar(store, "SELECT sum(amount) FROM order_lines") == Decimal(int(pence.sum())) / 100
        assert scalar(store, "SELECT sum(quantity) FROM order_lines") == int(good.Quantity.astype(int).sum())
        assert rows(store, "SELECT status, count(*) FROM orders GROUP BY 1 ORDER BY 1") == [
            ("cancelled", int(first_lines.InvoiceNo.str.startswith("C").sum())),
            ("completed", int((~first_lines.InvoiceNo.str.startswith("C")).sum())),
        ]
        guests = int((first_lines.CustomerID == "").sum())
        assert scalar(store, "SELECT count(*) FROM orders WHERE customer_id IS NULL") == guests
        assert 0.2 < guests / len(first_lines) < 0.3
        assert scalar(store, "SELECT count(*) FROM orders WHERE customer_id LIKE '%.0'") == 0
        assert scalar(store, "SELECT count(DISTINCT customer_id) FROM orders") == (
            first_lines.CustomerID[first_lines.CustomerID != ""].str.removesuffix(".0").nunique()
        )
        assert scalar(
            store, "SELECT count(*) FROM order_lines WHERE product_name LIKE '%, \"ASSORTED\"'"
        ) == (good.Description.str.endswith(', "ASSORTED"').sum())

        # Every refusal is true of the raw line it names.
        with open(result.reject_file or "", newline="", encoding="utf-8") as fh:
            report = list(csv.DictReader(fh))
        assert {int(r["line"]) for r in report} == bad_lines
        by_line: dict[int, dict[str, dict[str, str]]] = {}
        for r in report:
            by_line.setdefault(int(r["line"]), {})[r["field"]] = r
        for line, problems in by_line.items():
            raw = frame.iloc[line - 2]
            if raw.UnitPrice == "N/A":
                # The price is refused; the amount it leaves missing is not reported twice.
                assert problems.keys() == {"unit_price"}
                assert problems["unit_price"]["value"] == "N/A"
                assert problems["unit_price"]["reason"].startswith("not a number")
            else:
                assert problems.keys() == {"ordered_at"}
                assert problems["ordered_at"]["value"] == raw.InvoiceDate == "13/45/2010 8:26"
                assert problems["ordered_at"]["reason"].startswith("not a date/time in the stated format(s)")

        again = load(store, "order-lines", path, tmp_path / "rejects", preset="online-retail")
        assert counts(again) == (len(frame), 0, 0, len(good), len(bad_lines))
        assert again.tables["orders"].unchanged == good.InvoiceNo.nunique()
    finally:
        store.close()


# ---------------------------------------------------------------- Latin-1


FRENCH = [
    ("C001", "Françoise Lefèvre", "Île-de-France", "Conseillère « fidélité »"),
    ("C002", "Hélène Dupré", "Provence-Alpes-Côte d'Azur", "Très satisfaite, 5°"),
    ("C003", "Jérôme Boeuf", "Auvergne-Rhône-Alpes", "Ça dépend... non"),
    ("C004", "Noël Maïté", "Bourgogne-Franche-Comté", "âge: ½ siècle"),
]


def write_latin1(path: Path) -> None:
    lines = [("customer_id", "name", "region", "note"), *FRENCH]
    text = "\r\n".join(";".join(line) for line in lines) + "\r\n"
    path.write_bytes(text.encode("latin-1"))


def expected_french() -> list[tuple[str, str, str, str]]:
    return [
        (c, n, r, json.dumps({"note": t}, ensure_ascii=False, separators=(",", ":"))) for c, n, r, t in FRENCH
    ]


def test_latin1_file_is_detected_without_mojibake(tmp_path: Path) -> None:
    path = tmp_path / "clients.csv"
    write_latin1(path)
    store = open_store(tmp_path)
    try:
        result = load(store, "customers", path, tmp_path / "rejects")
        assert counts(result) == (4, 4, 0, 0, 0)
        assert result.encoding in ("cp1252", "latin-1")
        assert rows(store, "SELECT customer_id, name, region, attributes FROM customers ORDER BY 1") == (
            expected_french()
        )
    finally:
        store.close()


def test_latin1_file_with_the_encoding_named_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "clients.csv"
    write_latin1(path)
    db = tmp_path / "cli.duckdb"
    done = subprocess.run(
        [
            str(CXLOOP),
            "--db",
            str(db),
            "import",
            "customers",
            str(path),
            "--encoding",
            "latin-1",
            "--rejects-dir",
            str(tmp_path / "rejects"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CXLOOP_TIMEZONE": "UTC"},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["encoding"], result["rows_read"], result["loaded"], result["rejected"]) == (
        "latin-1",
        4,
        4,
        0,
    )
    url = str(db)
    with Store.open(url, settings=Settings(database_url=url)) as cli_store:
        assert rows(cli_store, "SELECT customer_id, name, region, attributes FROM customers ORDER BY 1") == (
            expected_french()
        )
