"""`cxloop kpi` and `cxloop summary`, run as a user runs them, agree with the Python API."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest

from cxloop import Store
from cxloop.demo_store import load_demo
from cxloop.metrics import compute, kpis
from test_cli import cxloop

AS_OF = dt.datetime(2026, 1, 1)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kpi") / "demo.duckdb"
    with Store.open(str(path)) as store:
        load_demo(store, customers=600, seed=3, as_of=AS_OF.date())
    return path


def test_kpi_list_json_describes_every_kpi(tmp_path: Path) -> None:
    listed = json.loads(cxloop("kpi", "list", "--json", cwd=tmp_path).stdout)

    assert [k["id"] for k in listed] == [k.id for k in kpis()]
    nps = next(k for k in listed if k["id"] == "nps")
    assert nps["unit"] == "points" and nps["direction"] == "up" and "Wald" in nps["ci_method"]
    assert nps["tables"] == ["survey_responses"] and "segment" in nps["dimensions"]


def test_kpi_show_json_is_what_the_python_api_computes(demo_db: Path, tmp_path: Path) -> None:
    shown = cxloop(
        "--db", str(demo_db), "kpi", "show", "csat", "--grain", "quarter", "--by", "segment",
        "--from", "2025-01-01", "--as-of", "2026-01-01", "--json", cwd=tmp_path,
    )  # fmt: skip

    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    with Store.open(str(demo_db)) as store:
        expected = compute(
            store, "csat", grain="quarter", by=["segment"], start=dt.datetime(2025, 1, 1), as_of=AS_OF
        )
    assert len(rows) == len(expected) > 0
    for row, (_, want) in zip(rows, expected.iterrows(), strict=True):
        assert row["period"] == want["period"].isoformat() and row["segment"] == want["segment"]
        assert row["value"] == pytest.approx(want["value"], rel=1e-12)
        assert row["ci_low"] <= row["value"] <= row["ci_high"]
    assert set(rows[0]) == {"period", "segment", "value", "n", "ci_low", "ci_high", "warning"}


def test_kpi_show_csv_has_a_header_and_change_columns(demo_db: Path, tmp_path: Path) -> None:
    shown = cxloop(
        "--db", str(demo_db), "kpi", "show", "revenue", "--from", "2025-06-01", "--to", "2025-09-01",
        "--as-of", "2026-01-01", "--change", "--csv", cwd=tmp_path,
    )  # fmt: skip

    table = list(csv.DictReader(io.StringIO(shown.stdout)))
    assert [r["period"] for r in table] == ["2025-06-01", "2025-07-01", "2025-08-01"]
    assert {"previous", "change", "p_value", "significant"} <= set(table[0])
    assert float(table[1]["previous"]) == pytest.approx(float(table[0]["value"]))


def test_kpi_show_filters_with_where(demo_db: Path, tmp_path: Path) -> None:
    base = ["--db", str(demo_db), "kpi", "show", "orders", "--grain", "all", "--as-of", "2026-01-01", "--json"]
    everyone = json.loads(cxloop(*base, cwd=tmp_path).stdout)[0]["value"]
    parts = [
        json.loads(cxloop(*base, "--where", f"segment={s}", cwd=tmp_path).stdout)
        for s in ("consumer", "small_business", "enterprise")
    ]
    guests = json.loads(cxloop(*base, "--by", "segment", cwd=tmp_path).stdout)

    assert sum(p[0]["value"] for p in parts) == sum(r["value"] for r in guests if r["segment"])
    assert sum(r["value"] for r in guests) == everyone


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["kpi", "show", "nsp"], "unknown KPI 'nsp'; did you mean"),
        (["kpi", "show", "nps", "--by", "agent"], "dimension 'agent' does not apply here; choose from"),
        (["kpi", "show", "nps", "--grain", "fortnight"], "unknown grain 'fortnight'"),
    ],
)
def test_bad_requests_say_what_is_wrong(demo_db: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = cxloop("--db", str(demo_db), *args, cwd=tmp_path)

    assert result.returncode == 1 and message in result.stderr.replace("\n", " ")


def test_a_where_without_a_value_is_a_usage_error(demo_db: Path, tmp_path: Path) -> None:
    result = cxloop("--db", str(demo_db), "kpi", "show", "nps", "--where", "segment", cwd=tmp_path)

    assert result.returncode == 2 and "DIMENSION=VALUE" in result.stderr


def test_summary_compares_the_last_complete_month_with_the_one_before(demo_db: Path, tmp_path: Path) -> None:
    result = cxloop("--db", str(demo_db), "summary", "--as-of", "2025-12-15", "--json", cwd=tmp_path)

    rows = json.loads(result.stdout)
    assert {r["period"] for r in rows} == {"2025-11-01"}
    revenue = next(r for r in rows if r["kpi"] == "revenue")
    with Store.open(str(demo_db)) as store:
        months = compute(
            store, "revenue", start=dt.datetime(2025, 10, 1), end=dt.datetime(2025, 12, 1), as_of=AS_OF
        )
    assert revenue["value"] == pytest.approx(months["value"].iloc[1])
    assert revenue["previous"] == pytest.approx(months["value"].iloc[0])
    assert revenue["verdict"] in {"higher", "lower", "same"}
    assert {r["verdict"] for r in rows} <= {"better", "worse", "steady", "higher", "lower", "same", "no comparison"}


def test_summary_on_a_terminal_names_the_period(demo_db: Path, tmp_path: Path) -> None:
    result = cxloop("--db", str(demo_db), "summary", "--as-of", "2025-12-15", "--kpi", "nps,revenue", cwd=tmp_path)

    assert result.returncode == 0
    assert "Summary: 2025-11-01 (month)" in result.stdout and "Net Promoter Score" in result.stdout


def test_cohorts_json_is_the_tidy_matrix_and_the_terminal_shows_the_average(
    demo_db: Path, tmp_path: Path
) -> None:
    base = ["--db", str(demo_db), "cohorts", "--from", "2025-06-01", "--as-of", "2026-01-01"]
    tidy = json.loads(cxloop(*base, "--json", cwd=tmp_path).stdout)
    shown = cxloop(*base, cwd=tmp_path)

    assert {r["cohort"] for r in tidy} == {f"2025-{m:02d}-01" for m in range(6, 13)}
    first = [r for r in tidy if r["age"] == 0]
    assert all(r["retention"] == 100 and r["customers"] == r["cohort_size"] for r in first)
    assert shown.returncode == 0 and "average" in shown.stdout and "Cohort retention (%)" in shown.stdout


def test_rfm_segments_cover_every_scored_customer(demo_db: Path, tmp_path: Path) -> None:
    base = ["--db", str(demo_db), "rfm", "--as-of", "2026-01-01", "--json"]
    segments = json.loads(cxloop(*base, cwd=tmp_path).stdout)
    customers = json.loads(cxloop(*base, "--customers", cwd=tmp_path).stdout)

    assert [s["segment"] for s in segments][:2] == ["Champions", "Loyal"] and len(segments) == 11
    assert sum(s["customers"] or 0 for s in segments) == len(customers) > 0
    assert {"customer_id", "recency_days", "frequency", "monetary", "segment"} <= set(customers[0])


def test_the_kpis_file_setting_adds_the_business_own_kpis(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "kpis.toml"

    listed = cxloop("kpi", "list", "--json", cwd=tmp_path, env={"CXLOOP_KPIS_FILE": str(example)})

    custom = [k["id"] for k in json.loads(listed.stdout) if k["custom"]]
    assert "electronics_revenue" in custom
