"""The demo business: its shape, its integrity, and the stories analytics should find in it."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pyarrow as pa
import pytest

from cxloop import demo

AS_OF = dt.date(2026, 1, 1)
CUSTOMERS = 3_000

TEXT, TS, DEC, INT, BOOL = pa.string(), pa.timestamp("us"), pa.decimal128(18, 4), pa.int32(), pa.bool_()

EXPECTED_COLUMNS: dict[str, list[tuple[str, pa.DataType]]] = {
    "customers": [
        ("customer_id", TEXT), ("name", TEXT), ("email", TEXT), ("segment", TEXT),
        ("region", TEXT), ("country", TEXT), ("acquisition_channel", TEXT),
        ("first_seen_at", TS), ("attributes", TEXT), ("source", TEXT),
    ],
    "orders": [
        ("order_id", TEXT), ("customer_id", TEXT), ("ordered_at", TS), ("status", TEXT),
        ("channel", TEXT), ("currency", TEXT), ("country", TEXT), ("total_amount", DEC),
        ("source", TEXT),
    ],
    "order_lines": [
        ("order_id", TEXT), ("line_no", INT), ("product_id", TEXT), ("product_name", TEXT),
        ("category", TEXT), ("quantity", DEC), ("unit_price", DEC), ("amount", DEC),
        ("source", TEXT),
    ],
    "survey_responses": [
        ("source", TEXT), ("response_id", TEXT), ("question_id", TEXT), ("survey_id", TEXT),
        ("kind", TEXT), ("scale_min", INT), ("scale_max", INT), ("score", DEC),
        ("comment", TEXT), ("channel", TEXT), ("touchpoint", TEXT), ("customer_id", TEXT),
        ("responded_at", TS),
    ],
    "tickets": [
        ("source", TEXT), ("ticket_id", TEXT), ("customer_id", TEXT), ("opened_at", TS),
        ("first_response_at", TS), ("resolved_at", TS), ("channel", TEXT), ("category", TEXT),
        ("priority", TEXT), ("status", TEXT), ("agent_id", TEXT), ("is_complaint", BOOL),
        ("reopens", INT), ("subject", TEXT), ("body", TEXT),
    ],
    "reviews": [
        ("source", TEXT), ("review_id", TEXT), ("kind", TEXT), ("url", TEXT), ("author", TEXT),
        ("rating", DEC), ("title", TEXT), ("text", TEXT), ("posted_at", TS), ("brand", TEXT),
        ("is_competitor", BOOL), ("language", TEXT), ("customer_id", TEXT), ("order_id", TEXT),
    ],
    "employees": [
        ("employee_id", TEXT), ("name", TEXT), ("email", TEXT), ("team", TEXT), ("role", TEXT),
        ("source", TEXT),
    ],
    "subscriptions": [
        ("subscription_id", TEXT), ("customer_id", TEXT), ("plan", TEXT), ("mrr", DEC),
        ("started_at", TS), ("ended_at", TS), ("source", TEXT),
    ],
    "survey_invitations": [
        ("invitation_id", TEXT), ("survey_id", TEXT), ("customer_id", TEXT), ("channel", TEXT),
        ("sent_at", TS), ("source", TEXT),
    ],
}  # fmt: skip

KEYS = {
    "customers": ["customer_id"],
    "orders": ["order_id"],
    "order_lines": ["order_id", "line_no"],
    "survey_responses": ["source", "response_id", "question_id"],
    "tickets": ["source", "ticket_id"],
    "reviews": ["source", "review_id"],
    "employees": ["employee_id"],
    "subscriptions": ["source", "subscription_id"],
    "survey_invitations": ["source", "invitation_id"],
}


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    return demo.generate(CUSTOMERS, seed=11, as_of=AS_OF)


@pytest.fixture(scope="module")
def frames(tables: dict[str, pa.Table]) -> dict[str, pd.DataFrame]:
    """pandas views with decimals as floats, for the statistics below."""
    out = {}
    for name, table in tables.items():
        columns = [c.cast(pa.float64()) if pa.types.is_decimal(c.type) else c for c in table.columns]
        out[name] = pa.table(columns, names=table.column_names).to_pandas()
    return out


def weekly(times: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> float:
    return float(((times >= start) & (times < end)).sum()) / ((end - start).days / 7)


# --- determinism and shape ----------------------------------------------------------------------


def test_the_same_seed_gives_identical_tables() -> None:
    first = demo.generate(300, seed=5)
    second = demo.generate(300, seed=5)
    assert first.keys() == second.keys()
    for name in first:
        assert first[name].equals(second[name]), name


def test_different_seeds_give_different_data() -> None:
    first, second = demo.generate(300, seed=1), demo.generate(300, seed=2)
    assert not first["orders"].equals(second["orders"])
    assert not first["tickets"].equals(second["tickets"])


def test_as_of_defaults_to_2026_and_is_never_the_clock() -> None:
    default, explicit = demo.generate(200, seed=3), demo.generate(200, seed=3, as_of=AS_OF)
    assert default["orders"].equals(explicit["orders"])
    assert demo.spike_window() == demo.spike_window(AS_OF)


def test_every_table_has_exactly_the_canonical_columns_and_types(
    tables: dict[str, pa.Table],
) -> None:
    assert set(tables) == set(EXPECTED_COLUMNS)
    for name, columns in EXPECTED_COLUMNS.items():
        schema = tables[name].schema
        assert list(zip(schema.names, schema.types, strict=True)) == columns, name


def test_source_is_demo_except_reviews_which_name_the_platform(
    frames: dict[str, pd.DataFrame],
) -> None:
    for name, frame in frames.items():
        expected = {"trustpilot", "google", "x"} if name == "reviews" else {"demo"}
        assert set(frame["source"]) == expected, name


def test_sizes_scale_at_about_ten_order_lines_per_customer(tables: dict[str, pa.Table]) -> None:
    assert tables["customers"].num_rows == CUSTOMERS
    assert 8 * CUSTOMERS < tables["order_lines"].num_rows < 12 * CUSTOMERS
    for name in ("survey_responses", "tickets", "reviews"):
        assert tables[name].num_rows > 0.05 * CUSTOMERS, name


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="customers"):
        demo.generate(-1)
    with pytest.raises(ValueError, match="years"):
        demo.generate(10, years=0)


def test_no_customers_gives_empty_tables_with_the_same_schema() -> None:
    empty = demo.generate(0)
    assert empty["orders"].num_rows == 0
    assert empty["orders"].schema.names == [c for c, _ in EXPECTED_COLUMNS["orders"]]


# --- integrity ---------------------------------------------------------------------------------


def test_keys_are_unique_and_not_null(frames: dict[str, pd.DataFrame]) -> None:
    for name, key in KEYS.items():
        frame = frames[name]
        assert frame[key].notna().all().all(), name
        assert not frame.duplicated(key).any(), name


def test_references_resolve(frames: dict[str, pd.DataFrame]) -> None:
    customers = set(frames["customers"]["customer_id"])
    orders = set(frames["orders"]["order_id"])
    assert set(frames["order_lines"]["order_id"]) == orders
    for name in ("orders", "survey_responses", "tickets", "reviews"):
        assert set(frames[name]["customer_id"].dropna()) <= customers, name
    assert set(frames["reviews"]["order_id"].dropna()) <= orders
    desk = frames["employees"].query("team == 'support'")["employee_id"]
    assert set(frames["tickets"]["agent_id"].dropna()) <= set(desk)


def test_some_orders_are_guest_orders(frames: dict[str, pd.DataFrame]) -> None:
    assert 0.01 < frames["orders"]["customer_id"].isna().mean() < 0.06


def test_customer_attributes_are_json_objects_or_null(frames: dict[str, pd.DataFrame]) -> None:
    attributes = frames["customers"]["attributes"]
    assert 0 < attributes.isna().mean() < 0.5
    for text in attributes.dropna().unique():
        assert isinstance(json.loads(text), dict)


# --- time --------------------------------------------------------------------------------------


def test_everything_happens_within_the_span_before_as_of(frames: dict[str, pd.DataFrame]) -> None:
    start, end = pd.Timestamp(AS_OF) - pd.Timedelta(days=round(2.5 * 365.25)), pd.Timestamp(AS_OF)
    timestamps = {
        "customers": ["first_seen_at"],
        "orders": ["ordered_at"],
        "survey_responses": ["responded_at"],
        "tickets": ["opened_at", "first_response_at", "resolved_at"],
        "reviews": ["posted_at"],
    }
    for name, columns in timestamps.items():
        for column in columns:
            values = frames[name][column].dropna()
            assert values.min() >= start, (name, column)
            assert values.max() < end, (name, column)


def test_ticket_timeline_is_ordered_and_matches_status(frames: dict[str, pd.DataFrame]) -> None:
    tickets = frames["tickets"]
    answered = tickets.dropna(subset=["first_response_at"])
    assert (answered["first_response_at"] >= answered["opened_at"]).all()
    resolved = tickets.dropna(subset=["resolved_at"])
    assert (resolved["resolved_at"] >= resolved["first_response_at"]).all()
    assert set(resolved["status"]) <= {"solved", "closed"}
    assert set(tickets.loc[tickets["resolved_at"].isna(), "status"]) <= {"open", "pending"}
    assert tickets.loc[tickets["first_response_at"].isna(), "agent_id"].isna().all()


def test_customers_are_acquired_over_the_whole_span_at_a_growing_rate(
    frames: dict[str, pd.DataFrame],
) -> None:
    seen = frames["customers"]["first_seen_at"]
    middle = seen.min() + (seen.max() - seen.min()) / 2
    first_half, second_half = (seen < middle).sum(), (seen >= middle).sum()
    assert seen.min() < pd.Timestamp(AS_OF) - pd.Timedelta(days=850)
    assert seen.max() > pd.Timestamp(AS_OF) - pd.Timedelta(days=30)
    assert 1.05 < second_half / first_half < 2


def test_orders_peak_in_november_and_december(frames: dict[str, pd.DataFrame]) -> None:
    at = frames["orders"]["ordered_at"]
    peak = weekly(at, pd.Timestamp("2024-11-01"), pd.Timestamp("2025-01-01"))
    after = weekly(at, pd.Timestamp("2025-01-01"), pd.Timestamp("2025-03-01"))
    assert peak > 1.3 * after


def test_acquisition_cohorts_decay(frames: dict[str, pd.DataFrame]) -> None:
    """Of the customers acquired in the first year, few still order in their sixth month."""
    customers = frames["customers"]
    cohort = customers[customers["first_seen_at"] < customers["first_seen_at"].min() + pd.Timedelta(days=365)]
    orders = frames["orders"].merge(cohort[["customer_id", "first_seen_at"]], on="customer_id")
    month = (orders["ordered_at"] - orders["first_seen_at"]).dt.days // 30

    def share_ordering(m: int) -> float:
        return orders.loc[month == m, "customer_id"].nunique() / len(cohort)

    assert share_ordering(0) > 0.8
    assert share_ordering(5) < 0.4 * share_ordering(0)
    assert share_ordering(11) < share_ordering(1)


# --- orders and products -----------------------------------------------------------------------


def test_order_counts_are_overdispersed(frames: dict[str, pd.DataFrame]) -> None:
    per_customer = frames["orders"].groupby("customer_id").size()
    assert (per_customer == 1).mean() > 0.3  # many one-timers ...
    assert per_customer.max() > 8 * per_customer.mean()  # ... and a few heavy buyers
    assert per_customer.var() > 3 * per_customer.mean()


def test_businesses_spend_more(frames: dict[str, pd.DataFrame]) -> None:
    lines = frames["order_lines"].merge(frames["orders"][["order_id", "customer_id"]])
    spend = lines.groupby("customer_id")["amount"].sum().rename("spend")
    by_segment = frames["customers"].join(spend, on="customer_id").groupby("segment")["spend"].mean()
    assert by_segment["consumer"] < by_segment["small_business"] < by_segment["enterprise"]


def test_catalogue_has_priced_categories(frames: dict[str, pd.DataFrame]) -> None:
    lines = frames["order_lines"]
    assert 50 <= lines["product_id"].nunique() <= 200
    assert lines["category"].nunique() == 8
    assert lines.groupby("product_id")["product_name"].nunique().max() == 1
    list_price = lines[lines["quantity"] > 0].groupby("category")["unit_price"].median()
    assert list_price.max() > 4 * list_price.min()


def test_amount_is_quantity_times_unit_price(tables: dict[str, pa.Table]) -> None:
    lines = tables["order_lines"].to_pandas()  # exact Decimals
    assert (lines["amount"] == lines["quantity"] * lines["unit_price"]).all()
    assert (lines["quantity"] == lines["quantity"].map(round)).all()


def test_order_total_is_the_sum_of_its_lines_when_known(frames: dict[str, pd.DataFrame]) -> None:
    orders = frames["orders"]
    sums = frames["order_lines"].groupby("order_id")["amount"].sum()
    known = orders.dropna(subset=["total_amount"]).set_index("order_id")["total_amount"]
    assert 0 < orders["total_amount"].isna().mean() < 0.05
    assert (known - sums.loc[known.index]).abs().max() < 1e-6


def test_line_numbers_run_from_one_within_each_order(frames: dict[str, pd.DataFrame]) -> None:
    lines = frames["order_lines"]
    per_order = lines.groupby("order_id")["line_no"].agg(["min", "max", "count"])
    assert (per_order["min"] == 1).all()
    assert (per_order["max"] == per_order["count"]).all()


def test_returns_are_negative_lines_of_returned_orders(frames: dict[str, pd.DataFrame]) -> None:
    lines = frames["order_lines"]
    negative = lines[lines["quantity"] < 0]
    assert 0.005 < len(negative) / len(lines) < 0.08
    statuses = frames["orders"].set_index("order_id").loc[negative["order_id"], "status"]
    assert set(statuses) == {"returned"}


# --- tickets -----------------------------------------------------------------------------------


def test_tickets_cover_several_complaint_themes_with_matching_text(
    frames: dict[str, pd.DataFrame],
) -> None:
    tickets = frames["tickets"]
    assert {"delivery", "billing", "product_quality", "returns", "account"} <= set(tickets["category"])
    words = {
        "delivery": "deliver|parcel|arrive|tracking",
        "billing": "charge|invoice|refund|payment",
        "returns": "return|exchange",
    }
    for theme, pattern in words.items():
        bodies = tickets.loc[tickets["category"] == theme, "body"]
        assert bodies.str.contains(pattern, case=False).mean() > 0.9, theme
        assert bodies.nunique() > 0.5 * len(bodies), theme  # varied, not one canned text
    assert tickets["subject"].notna().all() and tickets["body"].notna().all()


def test_delivery_tickets_spike_inside_the_spike_window(frames: dict[str, pd.DataFrame]) -> None:
    start, end = (pd.Timestamp(d) for d in demo.spike_window(AS_OF))
    assert 21 <= (end - start).days <= 28
    assert pd.Timestamp(AS_OF) - pd.Timedelta(days=135) < end < pd.Timestamp(AS_OF) - pd.Timedelta(days=105)
    opened = frames["tickets"].query("category == 'delivery'")["opened_at"]
    baseline = weekly(opened, start - pd.Timedelta(weeks=12), start)
    assert weekly(opened, start, end) >= 3 * baseline > 0


# --- surveys -----------------------------------------------------------------------------------


def test_survey_scores_are_integers_on_their_scales(frames: dict[str, pd.DataFrame]) -> None:
    responses = frames["survey_responses"]
    scales = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
    assert set(responses["kind"]) == set(scales)
    assert (responses["question_id"] == responses["kind"]).all()
    for kind, (low, high) in scales.items():
        mine = responses[responses["kind"] == kind]
        assert (mine["scale_min"] == low).all() and (mine["scale_max"] == high).all()
        assert mine["score"].between(low, high).all()
        assert (mine["score"] == mine["score"].round()).all()
        assert mine["survey_id"].nunique() == 1


def test_customers_with_a_delivery_problem_are_more_often_detractors(
    frames: dict[str, pd.DataFrame],
) -> None:
    nps = frames["survey_responses"].query("kind == 'nps'")
    hit = set(frames["tickets"].query("category == 'delivery'")["customer_id"].dropna())
    with_problem = nps["customer_id"].isin(hit)
    detractors = nps["score"] <= 6
    assert with_problem.sum() >= 15
    assert detractors[with_problem].mean() > 1.5 * detractors[~with_problem].mean()


def test_returns_lower_post_purchase_satisfaction(frames: dict[str, pd.DataFrame]) -> None:
    csat = frames["survey_responses"].query("kind == 'csat'")
    returners = frames["orders"].query("status == 'returned'")["customer_id"].dropna()
    assert csat[csat["customer_id"].isin(returners)]["score"].mean() < csat["score"].mean()


def test_comments_are_optional_and_match_the_score(frames: dict[str, pd.DataFrame]) -> None:
    responses = frames["survey_responses"]
    comment = responses["comment"].fillna("")
    assert 0.1 < (comment != "").mean() < 0.7
    unhappy = comment.str.contains("late|damaged|broke|took days|too long|not worth", case=False)
    happy = comment.str.contains("great|happy|recommend|thank", case=False)
    assert unhappy.sum() >= 10 and happy.sum() >= 10
    low, high = responses["scale_min"], responses["scale_max"]
    position = (responses["score"] - low) / (high - low)  # 0 = worst, 1 = best on any scale
    assert position[unhappy].max() <= 0.6 < position[happy].min()


# --- reviews -----------------------------------------------------------------------------------


def test_reviews_cover_our_brand_and_two_competitors(frames: dict[str, pd.DataFrame]) -> None:
    reviews = frames["reviews"]
    brands = reviews.groupby("brand")["is_competitor"].agg(["min", "max"])
    assert list(brands.index) == ["Contoso", "Fabrikam", "Northwind"]
    assert brands.loc["Northwind"].tolist() == [False, False]
    assert brands.loc[["Contoso", "Fabrikam"]].all().all()
    assert reviews.loc[reviews["is_competitor"], "customer_id"].isna().all()
    assert set(reviews["kind"]) == {"review", "post"}
    assert set(reviews["language"]) == {"en"}
    posts = reviews["kind"] == "post"
    assert reviews.loc[posts, "rating"].isna().all()
    assert reviews.loc[~posts, "rating"].isin([1, 2, 3, 4, 5]).all()
    assert reviews["text"].notna().all() and reviews["url"].str.startswith("https://").all()


def test_reviews_mentioning_delivery_are_worse_and_spike_with_the_tickets(
    frames: dict[str, pd.DataFrame],
) -> None:
    ours = frames["reviews"].query("brand == 'Northwind'")
    about_delivery = ours["text"].str.contains("deliver|parcel|courier", case=False)
    rated = ours["rating"].notna()
    assert (
        ours.loc[about_delivery & rated, "rating"].mean()
        < ours.loc[~about_delivery & rated, "rating"].mean() - 1
    )
    start, end = (pd.Timestamp(d) for d in demo.spike_window(AS_OF))
    posted = ours.loc[about_delivery, "posted_at"]
    during = weekly(posted, start, end + pd.Timedelta(days=7))  # people write a few days later
    assert during > 1.5 * weekly(posted, start - pd.Timedelta(weeks=12), start)
