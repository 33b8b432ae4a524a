"""Subscription survival: Kaplan-Meier against a textbook case, the sBG model against Fader &
Hardie's published fit, durations computed in both stores, the Telco data, bad input and the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_DATA, need, write
from cxloop import Store
from cxloop.cli.output import to_jsonable
from cxloop.metrics.frames import records
from cxloop.metrics.source import store_source
from cxloop.value.kaplan_meier import SurvivalError, kaplan_meier, kaplan_meier_frame
from cxloop.value.sbg import SbgFitError, _negative_log_likelihood, fit_sbg, fit_sbg_cohort
from cxloop.value.survival import duration_counts, survival_report
from test_cli import cxloop

TELCO = SHARED_DATA / "telco_churn" / "Telco-Customer-Churn.csv"
TELCO_AS_OF = dt.datetime(2020, 1, 1)

# ------------------------------------------------------------------ Kaplan-Meier, by hand

# Freireich et al. (1963), 6-MP arm, remission in weeks; the standard textbook example
# (Kleinbaum & Klein, "Survival Analysis", 3rd ed., table 2.1; Collett, "Modelling Survival Data").
# Ties: 3 relapses and 1 censoring at 6 weeks.
SIX_MP = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
SIX_MP_EVENT = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
# time: (at risk, S(t)) computed by hand as products of (n - d) / n.
SIX_MP_BY_HAND = {
    6: (21, 18 / 21),
    7: (17, 18 / 21 * 16 / 17),
    10: (15, 18 / 21 * 16 / 17 * 14 / 15),
    13: (12, 18 / 21 * 16 / 17 * 14 / 15 * 11 / 12),
    16: (11, 18 / 21 * 16 / 17 * 14 / 15 * 11 / 12 * 10 / 11),
    22: (7, 18 / 21 * 16 / 17 * 14 / 15 * 11 / 12 * 10 / 11 * 6 / 7),
    23: (6, 18 / 21 * 16 / 17 * 14 / 15 * 11 / 12 * 10 / 11 * 6 / 7 * 5 / 6),
}


def test_kaplan_meier_matches_the_textbook_six_mp_curve() -> None:
    curve = kaplan_meier(SIX_MP, SIX_MP_EVENT)
    for t, (at_risk, s) in SIX_MP_BY_HAND.items():
        assert curve.at_risk[t] == at_risk
        assert curve.survival[t] == pytest.approx(s, rel=1e-12)
    # Flat between relapses; censorings (9, 11, 17 …) do not move it.
    assert curve.survival[8] == curve.survival[7] and curve.survival[35] == curve.survival[23]
    assert curve.churned[6] == 3 and curve.censored[6] == 1
    assert curve.median == 23  # S(22) = 0.538 > 0.5 >= S(23) = 0.448
    # Greenwood at 6 weeks: S^2 * 3 / (21 * 18) -> SE 0.0764 (Kleinbaum & Klein); the log(-log)
    # interval S ** exp(∓1.96 SE / (S |log S|)).
    se = math.sqrt((18 / 21) ** 2 * 3 / (21 * 18))
    assert se == pytest.approx(0.0764, abs=5e-5)
    s = 18 / 21
    half = 1.959964 * se / (s * abs(math.log(s)))
    assert curve.ci_low[6] == pytest.approx(s ** math.exp(half), rel=1e-6)
    assert curve.ci_high[6] == pytest.approx(s ** math.exp(-half), rel=1e-6)
    assert curve.ci_low[6] == pytest.approx(0.6197, abs=1e-4)
    assert curve.ci_high[6] == pytest.approx(0.9516, abs=1e-4)
    # Before the first relapse nothing is known to be lost: S = 1 with the interval [1, 1].
    assert curve.survival[5] == curve.ci_low[5] == curve.ci_high[5] == 1.0


def test_weights_are_the_same_as_repeated_rows() -> None:
    d = np.array(SIX_MP)
    e = np.array(SIX_MP_EVENT, dtype=bool)
    frame = pd.DataFrame({"d": d, "e": e}).value_counts().reset_index(name="n")
    weighted = kaplan_meier(frame["d"], frame["e"], frame["n"])
    plain = kaplan_meier(d, e)
    np.testing.assert_allclose(weighted.survival, plain.survival, rtol=1e-14)
    np.testing.assert_allclose(weighted.ci_low, plain.ci_low, rtol=1e-14)
    np.testing.assert_array_equal(weighted.at_risk, plain.at_risk)


def test_kaplan_meier_frame_gives_one_curve_per_group() -> None:
    frame = pd.DataFrame(
        {
            "months": [*SIX_MP, 1, 1, 2, 2, 3],
            "gone": [bool(x) for x in SIX_MP_EVENT] + [True, False, True, True, False],
            "arm": ["6-MP"] * len(SIX_MP) + ["toy"] * 5,
        }
    )
    out = kaplan_meier_frame(frame, "months", "gone", "arm")
    assert list(out.columns) == [
        "group", "period", "at_risk", "churned", "censored", "survival", "ci_low", "ci_high",
    ]  # fmt: skip
    toy = out[out["group"] == "toy"].set_index("period")
    assert toy.loc[1, "survival"] == pytest.approx(4 / 5)
    assert toy.loc[2, "survival"] == pytest.approx(4 / 5 * 1 / 3)
    assert not out.isna().to_numpy().any()
    with pytest.raises(SurvivalError, match="no column 'tenure'"):
        kaplan_meier_frame(frame, "tenure", "gone")


# ------------------------------------------------------------------ sBG, published fit

# Fader & Hardie (2007), "How to project customer retention", Journal of Interactive Marketing
# 21(1), 76-90, table 1: customers surviving each year of two cohorts of 1,000 (years 0-12); the
# model is fitted on years 0-7. Published maximum likelihood estimates: regular alpha 0.704,
# beta 1.182; high end alpha 0.668, beta 3.806. (The regular cohort churns faster: 37% in year 1,
# which is alpha / (alpha + beta) = 0.373.)
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 394]


@pytest.mark.parametrize(
    ("survivors", "alpha", "beta"),
    [(REGULAR, 0.704, 1.182), (HIGH_END, 0.668, 3.806)],
    ids=["regular", "high-end"],
)
def test_sbg_reproduces_the_published_fit_and_projects_the_holdout(
    survivors: list[int], alpha: float, beta: float
) -> None:
    fit = fit_sbg_cohort(survivors[:8])
    assert fit.alpha == pytest.approx(alpha, rel=0.01)
    assert fit.beta == pytest.approx(beta, rel=0.01)
    assert fit.alpha_se is not None and fit.beta_se is not None
    assert 0 < fit.alpha_se < fit.alpha and 0 < fit.beta_se < fit.beta
    # The projection for years 8-12 stays within 5% of what happened (the paper's figure 3).
    projected = fit.survival(range(8, 13)) * 1000
    np.testing.assert_allclose(projected, survivors[8:], rtol=0.05)
    # r(t) = S(t) / S(t-1), rising with t (the paper's point: retention rates increase).
    r = fit.retention(range(1, 13))
    np.testing.assert_allclose(r[1:], fit.survival(range(2, 13)) / fit.survival(range(1, 12)), rtol=1e-12)
    assert np.all(np.diff(r) > 0)
    # Discounted expected residual lifetime: the sum it stands for, truncated far out.
    n, d = 7, 0.1
    t = np.arange(n + 1, 5000)
    direct = float(np.sum(fit.survival(t) / fit.survival(n) / (1 + d) ** (t - n - 1)))
    assert fit.residual_lifetime(n, d) == pytest.approx(direct, rel=1e-6)


def test_sbg_from_censored_durations_equals_the_cohort_fit() -> None:
    churn_years = [t for t in range(1, 8) for _ in range(REGULAR[t - 1] - REGULAR[t])]
    durations = churn_years + [7] * REGULAR[7]
    churned = [True] * len(churn_years) + [False] * REGULAR[7]
    individual = fit_sbg(durations, churned)
    cohort = fit_sbg_cohort(REGULAR[:8])
    assert individual.alpha == pytest.approx(cohort.alpha, rel=1e-6)
    assert individual.beta == pytest.approx(cohort.beta, rel=1e-6)
    assert individual.log_likelihood == pytest.approx(cohort.log_likelihood, rel=1e-9)


def test_sbg_gradient_and_standard_errors_are_the_numerical_ones() -> None:
    t = np.array([1, 2, 3, 4, 5, 6, 7, 7], dtype=float)
    e = np.array([1, 1, 1, 1, 1, 1, 1, 0], dtype=float)
    w = np.array([131, 126, 90, 60, 42, 34, 26, 491], dtype=float)
    for x in ([0.0, 0.0], [-0.4, 1.3], [1.0, -1.0]):
        grad = _negative_log_likelihood(np.array(x), t, e, w)[1]
        step = 1e-5
        central = [
            (_negative_log_likelihood(np.array(x) + dx, t, e, w)[0]
             - _negative_log_likelihood(np.array(x) - dx, t, e, w)[0]) / (2 * step)
            for dx in np.eye(2) * step
        ]  # fmt: skip
        np.testing.assert_allclose(grad, central, rtol=1e-6, atol=1e-6)
    fit = fit_sbg(t, e.astype(bool), w)

    def ll(alpha: float, beta: float) -> float:
        return -_negative_log_likelihood(np.log([alpha, beta]), t, e, w)[0]

    h = 1e-4
    a, b = fit.alpha, fit.beta
    assert a is not None and b is not None
    haa = (ll(a + h, b) - 2 * ll(a, b) + ll(a - h, b)) / h**2
    hbb = (ll(a, b + h) - 2 * ll(a, b) + ll(a, b - h)) / h**2
    hab = (ll(a + h, b + h) - ll(a + h, b - h) - ll(a - h, b + h) + ll(a - h, b - h)) / (4 * h**2)
    cov = np.linalg.inv(-np.array([[haa, hab], [hab, hbb]]))
    assert fit.alpha_se == pytest.approx(math.sqrt(cov[0, 0]), rel=1e-3)
    assert fit.beta_se == pytest.approx(math.sqrt(cov[1, 1]), rel=1e-3)


# ------------------------------------------------------------------ bad input, in the models


def test_all_censored_is_a_clear_error_for_sbg_and_a_flat_curve_for_km() -> None:
    with pytest.raises(SbgFitError, match="all censored"):
        fit_sbg([3, 5, 8], [False, False, False])
    curve = kaplan_meier([3, 5, 8], [False, False, False])
    assert curve.median is None and np.all(curve.survival == 1.0) and np.all(curve.ci_low == 1.0)


def test_all_churned_in_period_one() -> None:
    with pytest.raises(SbgFitError, match="first period"):
        fit_sbg([1, 1, 1], [True, True, True])
    curve = kaplan_meier([1, 1, 1], [True, True, True])
    assert curve.median == 1
    assert curve.survival[1] == curve.ci_low[1] == curve.ci_high[1] == 0.0


def test_sbg_that_does_not_converge_says_so() -> None:
    # Half lost at once, half never: churn rates piled at 0 and 1, alpha and beta run to 0.
    with pytest.raises(SbgFitError, match="did not converge"):
        fit_sbg([1, 50], [True, False], [500, 500])


def test_no_spread_of_churn_rates_gives_the_geometric_limit() -> None:
    # A constant churn rate of 1/3, exactly geometric: alpha and beta grow without bound.
    theta = 1 / 3
    t = np.arange(1, 40)
    counts = np.round(30000 * theta * (1 - theta) ** (t - 1)).astype(int)
    fit = fit_sbg(t, np.ones_like(t, dtype=bool), counts)
    assert fit.geometric and fit.alpha is None
    assert fit.theta == pytest.approx(theta, rel=1e-3)
    assert fit.theta_se is not None and fit.theta_se > 0
    assert fit.survival(2) == pytest.approx((1 - fit.theta) ** 2)
    assert fit.retention(5) == pytest.approx(1 - fit.theta)
    assert fit.residual_lifetime(3, 0.1) == pytest.approx((1 - fit.theta) * 1.1 / (0.1 + fit.theta))


def test_empty_input_is_an_error() -> None:
    with pytest.raises(SurvivalError, match="no subscriptions"):
        kaplan_meier([], [])
    with pytest.raises(SbgFitError, match="no subscriptions"):
        fit_sbg([], [])
    with pytest.raises(SbgFitError, match="must not increase"):
        fit_sbg_cohort([100, 120])


# ------------------------------------------------------------------ from the store

SUBSCRIPTIONS = """\
subscription_id,customer_id,plan,mrr,started_at,ended_at
s1,c1,basic,10,2024-01-05 10:00:00,2024-03-20 00:00:00
s2,c2,basic,10,2024-01-05 10:00:00,2024-03-05 10:00:00
s3,c3,basic,10,2024-01-05 10:00:00,
s4,c4,pro,50,2024-03-15 00:00:00,2024-03-16 00:00:00
s5,c5,pro,50,2024-02-10 00:00:00,2024-09-01 00:00:00
s6,c6,pro,50,2024-07-01 00:00:00,
s7,c1,pro,50,2024-03-20 00:00:00,
"""
CUSTOMERS = """\
customer_id,segment
c1,smb
c2,smb
c3,enterprise
c4,smb
c5,
c6,enterprise
"""
AS_OF = dt.datetime(2024, 6, 1)


def load_small(store: Store, load: Any, tmp_path: Path) -> None:
    load(store, "customers", write(tmp_path / "customers.csv", CUSTOMERS))
    load(store, "subscriptions", write(tmp_path / "subscriptions.csv", SUBSCRIPTIONS), source="billing")


def counts_of(store: Store, **kwargs: Any) -> set[tuple[str, int, bool, int]]:
    with store_source(store) as source:
        frame = duration_counts(source, as_of=AS_OF, **kwargs)
    return {(r.segment, r.duration, r.churned, r.subscriptions) for r in frame.itertuples()}


def test_durations_are_computed_in_the_database(store: Store, load: Any, tmp_path: Path) -> None:
    load_small(store, load, tmp_path)
    # s1: cancelled during its 3rd month -> churned at 3; s2: exactly 2 months -> 2;
    # s3: running since 5 Jan, 4 whole months by 1 June -> censored at 4; s4: one day -> 1;
    # s5: ends after as_of -> running, 3 whole months (10 Feb - 10 May) -> censored at 3;
    # s6: starts after as_of -> left out; s7: running, 2 whole months -> censored at 2.
    assert counts_of(store, by="plan") == {
        ("basic", 3, True, 1),
        ("basic", 2, True, 1),
        ("basic", 4, False, 1),
        ("pro", 1, True, 1),
        ("pro", 3, False, 1),
        ("pro", 2, False, 1),
    }
    # Segments come from the customer; c5 has none.
    by_segment = counts_of(store, by="segment")
    assert ("(none)", 3, False, 1) in by_segment and ("smb", 2, False, 1) in by_segment
    assert sum(n for *_, n in by_segment) == 6
    # Days and weeks: s2 ran 60 whole days (5 Jan 10:00 - 5 Mar 10:00, a leap year).
    assert ("all", 60, True, 1) in counts_of(store, unit="day")
    assert ("all", 9, True, 1) in counts_of(store, unit="week")  # 8 weeks and 4 days begun: 9
    assert {(d, e) for _, d, e, _ in counts_of(store, unit="year")} == {(1, True), (0, False)}


def test_report_on_a_small_store_has_no_nan(store: Store, load: Any, tmp_path: Path) -> None:
    load_small(store, load, tmp_path)
    with store_source(store) as source:
        report = survival_report(source, as_of=AS_OF, by="segment", forecast=3)
    curve = report.curve_frame()
    summary = report.summary_frame().set_index("segment")
    assert set(summary.index) == {"(none)", "enterprise", "smb"}
    # One subscription, still running: a flat curve, no model, and notes saying so.
    assert summary.loc["(none)", "subscriptions"] == 1
    assert summary.loc["(none)", "sbg_alpha"] is None
    assert "all censored" in summary.loc["(none)", "note"] and "few" in summary.loc["(none)", "note"]
    for frame in (curve, report.summary_frame()):
        for value in frame.to_numpy().ravel():
            assert not (isinstance(value, float) and math.isnan(value))
    assert set(curve["phase"]) == {"fit", "forecast"}
    assert curve["period"].max() == report.periods + 3


def test_no_subscriptions_is_an_error(store: Store) -> None:
    with store_source(store) as source, pytest.raises(SurvivalError, match="no subscriptions"):
        survival_report(source, as_of=AS_OF)


# ------------------------------------------------------------------ Telco


def telco_reference() -> dict[str, tuple[list[int], list[bool]]]:
    by_plan: dict[str, tuple[list[int], list[bool]]] = {}
    with TELCO.open(newline="") as f:
        for row in csv.DictReader(f):
            d, e = by_plan.setdefault(row["Contract"], ([], []))
            d.append(int(row["tenure"]))
            e.append(row["Churn"] == "Yes")
    return by_plan


def product_limit_median(durations: list[int], churned: list[bool]) -> int | None:
    """A plain-Python product-limit estimate, written independently of the module's NumPy one."""
    s = 1.0
    for t in sorted(set(durations)):
        n = sum(1 for d in durations if d >= t)
        d_t = sum(1 for d, e in zip(durations, churned, strict=True) if d == t and e)
        s *= 1 - d_t / n
        if s <= 0.5:
            return t
    return None


def test_telco_imports_and_gives_km_and_sbg_per_contract(store: Store, load: Any) -> None:
    need(TELCO.exists(), f"{TELCO} is not here")
    load(store, "customers", TELCO, preset="telco")
    load(store, "subscriptions", TELCO, preset="telco")
    with store_source(store) as source:
        report = survival_report(source, as_of=TELCO_AS_OF, by="plan", forecast=12)
        counts = duration_counts(source, as_of=TELCO_AS_OF, by="plan")
    reference = telco_reference()
    # The database's durations are the file's tenure, per contract and outcome.
    for plan, (d, e) in reference.items():
        mine = counts[counts["segment"] == plan]
        assert int(mine["subscriptions"].sum()) == len(d)
        for churned in (True, False):
            want = pd.Series([x for x, c in zip(d, e, strict=True) if c == churned]).value_counts()
            got = mine[mine["churned"] == churned].set_index("duration")["subscriptions"]
            assert got.sort_index().to_dict() == want.sort_index().to_dict()
    summary = report.summary_frame().set_index("segment")
    for plan, (d, e) in reference.items():
        assert summary.loc[plan, "median_periods"] == product_limit_median(d, e)
    assert summary.loc["Month-to-month", "median_periods"] == 35
    assert summary.loc["One year", "median_periods"] is None
    # Month-to-month: a real Beta mix of churn rates; the contracts churn too rarely inside
    # their term to show one, so their fit is the geometric limit (documented).
    m2m = summary.loc["Month-to-month"]
    assert m2m["sbg_alpha"] == pytest.approx(0.4226, rel=1e-3)
    assert m2m["sbg_beta"] == pytest.approx(7.393, rel=1e-3)
    assert "geometric" in summary.loc["Two year", "note"]
    # The sBG curve follows Kaplan-Meier within 6 points over the first three years; after that
    # the observed hazard rises again, which an sBG (whose hazard only falls) cannot follow, so it
    # overstates retention at six years (docs/value.md).
    curve = report.curve_frame()
    m2m_curve = curve[curve["segment"] == "Month-to-month"].set_index("period")
    km, model = m2m_curve["survival"].astype(float), m2m_curve["sbg_survival"].astype(float)
    assert (model - km).loc[1:36].abs().max() < 0.06
    assert model.loc[72] - km.loc[72] > 0.2
    assert m2m_curve.loc[84, "phase"] == "forecast" and m2m_curve.loc[84, "survival"] is None


# ------------------------------------------------------------------ CLI


def test_cli_survival_json_summary_and_errors(tmp_path: Path, load: Any) -> None:
    db = tmp_path / "cli.duckdb"
    with Store.open(str(db)) as store:
        load_small(store, load, tmp_path)
    base = ("--db", str(db), "value", "survival", "--as-of", "2024-06-01")
    shown = cxloop(*base, "--by", "plan", "--forecast", "2", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert {r["segment"] for r in rows} == {"basic", "pro"}
    assert "NaN" not in shown.stdout
    basic = {r["period"]: r for r in rows if r["segment"] == "basic"}
    assert basic[2]["survival"] == pytest.approx(2 / 3) and basic[2]["at_risk"] == 3
    assert basic[6]["phase"] == "forecast" and basic[6]["survival"] is None

    summary = cxloop(*base, "--summary", "--csv", cwd=tmp_path)
    assert summary.returncode == 0, summary.stderr
    assert summary.stdout.splitlines()[0].startswith("segment,subscriptions,churned,running,median_periods")

    table = cxloop(*base, "--by", "plan", cwd=tmp_path)
    assert table.returncode == 0 and "basic: 3 subscriptions" in table.stdout

    bad = cxloop(*base, "--by", "colour", cwd=tmp_path)
    assert bad.returncode == 1 and "unknown dimension 'colour'" in bad.stderr
    empty = cxloop("--db", str(tmp_path / "empty.duckdb"), "value", "survival", cwd=tmp_path)
    assert empty.returncode == 1 and "no subscriptions" in empty.stderr


def test_the_api_gives_the_report_of_the_cli(duck_store: Store, load: Any, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from cxloop.web import accounts
    from cxloop.web.app import create_app
    from cxloop.web.roles import Role
    from cxloop.web.settings import WebSettings

    load_small(duck_store, load, tmp_path)
    accounts.create_user(duck_store, "vic@example.com", Role.VIEWER, "p" * 12, now=AS_OF)
    token = accounts.create_token(duck_store, "vic@example.com", Role.VIEWER, now=AS_OF).token
    app = create_app(duck_store, WebSettings(database_url=duck_store.url), clock=lambda: AS_OF)
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = {"Authorization": f"Bearer {token}"}
        got = client.get("/api/v1/value/survival?by=plan&forecast=2", headers=headers)
        unknown = client.get("/api/v1/value/survival?by=planet", headers=headers)
        before = client.get("/api/v1/value/survival?as_of=2023-01-01", headers=headers)
    with store_source(duck_store) as source:
        report = survival_report(source, as_of=AS_OF, by="plan", forecast=2)

    assert got.status_code == 200, got.text
    assert got.json()["summary"] == json.loads(json.dumps(to_jsonable(records(report.summary_frame()))))
    assert len(got.json()["curves"]) == len(report.curve_frame())
    assert unknown.status_code == 422 and before.status_code == 422
    assert "no subscriptions" in before.json()["detail"]
