"""The statistics behind every interval and change test, against published values, scipy and
brute force (cxloop.metrics.stats and cxloop.metrics.change)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from cxloop.metrics.change import p_values
from cxloop.metrics.stats import (
    Estimate,
    Kind,
    finish,
    nps_interval,
    nps_variance,
    poisson_interval,
    quantile_interval,
    wilson,
)

Z = st.norm.ppf(0.975)


def arr(*values: float) -> np.ndarray:
    return np.array(values, dtype=float)


def finished(kind: Kind, per: float = 1.0, q: float = 0.5, **columns: Any) -> pd.DataFrame:
    """Run ``finish`` on one period per row of ``columns`` (the statistics a query returns)."""
    rows = len(next(iter(columns.values())))
    frame = pd.DataFrame({"period": pd.date_range("2024-01-01", periods=rows), **columns})
    return finish(frame, Estimate(kind, per=per, q=q), ["period"])


# ------------------------------------------------------------------ Wilson


# Newcombe (1998), "Two-sided confidence intervals for the single proportion: comparison of seven
# methods", Statistics in Medicine 17, 857-872, Table II, method 3 (Wilson score, no correction).
NEWCOMBE_1998 = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize(("k", "n", "low", "high"), NEWCOMBE_1998)
def test_wilson_matches_newcombe_1998(k: int, n: int, low: float, high: float) -> None:
    got_low, got_high = wilson(arr(k), arr(n), Z)

    assert (got_low[0], got_high[0]) == pytest.approx((low, high), abs=5e-5)


def test_wilson_is_the_score_interval_and_exact_at_the_edges() -> None:
    k, n = arr(0, 1, 5, 20, 20, 7, 3), arr(20, 29, 10, 20, 40, 0, 2)
    low, high = wilson(k, n, Z)

    for i in range(len(k) - 2):  # The bounds are where the score statistic equals ±z.
        p = k[i] / n[i]
        for bound in (low[i], high[i]):
            if 0 < bound < 1:
                assert abs(p - bound) / math.sqrt(bound * (1 - bound) / n[i]) == pytest.approx(Z)
    assert low[0] == 0 and high[3] == 1  # exactly, not 1e-15 away
    assert high[0] == pytest.approx(Z**2 / (20 + Z**2)) and low[3] == pytest.approx(20 / (20 + Z**2))
    assert np.isnan(low[5]) and np.isnan(high[5])  # n = 0
    # A "proportion" above 1 (retention with reactivations) gets the interval of 100%.
    assert (low[6], high[6]) == (wilson(arr(2), arr(2), Z)[0][0], 1.0)

    percent = finished(Kind.PROPORTION, k=[81.0], n=[263.0])
    assert percent["value"][0] == pytest.approx(100 * 81 / 263)
    assert (percent["ci_low"][0], percent["ci_high"][0]) == pytest.approx((25.53, 36.62), abs=5e-3)


# ------------------------------------------------------------------ NPS


@pytest.mark.parametrize(("n", "promoters", "detractors"), [(6, 3, 2), (50, 30, 5), (10, 10, 0), (4, 0, 4)])
def test_nps_adjusted_wald_is_the_rocks_2016_computation(n: int, promoters: int, detractors: int) -> None:
    """Rocks (2016): add 3 answers (0.75 promoter, 0.75 detractor, 1.5 passive), then the Wald
    interval of the difference of the two shares."""
    low, high = nps_interval(arr(promoters), arr(detractors), arr(n), Z)

    n_adj = n + 3
    p, d = (promoters + 0.75) / n_adj, (detractors + 0.75) / n_adj
    se = math.sqrt((p + d - (p - d) ** 2) / n_adj)
    want_low, want_high = max(-1, p - d - Z * se), min(1, p - d + Z * se)
    assert (low[0], high[0]) == pytest.approx((100 * want_low, 100 * want_high))

    row = finished(Kind.NPS, n=[n], promoters=[promoters], detractors=[detractors]).iloc[0]
    assert row["value"] == pytest.approx(100 * (promoters - detractors) / n)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low[0], high[0]))


def test_nps_variance_is_the_exact_multinomial_variance() -> None:
    """Enumerate every way 5 answers fall into promoter / passive / detractor."""
    shares = {"p": 0.5, "o": 0.3, "d": 0.2}
    n = 5
    mean = second = 0.0
    for answers in itertools.product(shares, repeat=n):
        prob = math.prod(shares[a] for a in answers)
        nps = 100 * (answers.count("p") - answers.count("d")) / n
        mean += prob * nps
        second += prob * nps**2
    exact = second - mean**2

    assert mean == pytest.approx(100 * (0.5 - 0.2))
    # nps_variance takes counts; with expected counts it gives the population variance.
    assert nps_variance(arr(0.5 * n), arr(0.2 * n), arr(n))[0] == pytest.approx(exact)


# ------------------------------------------------------------------ means


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mean_interval_is_scipys_t_interval(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 30.0, size=int(rng.integers(2, 60)))

    row = finished(Kind.MEAN, n=[x.size], total=[x.sum()], total_sq=[(x**2).sum()]).iloc[0]

    low, high = st.t.interval(0.95, x.size - 1, loc=x.mean(), scale=st.sem(x))
    assert row["value"] == pytest.approx(x.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), rel=1e-9)


def test_a_mean_of_one_value_has_no_interval() -> None:
    row = finished(Kind.MEAN, n=[1.0], total=[4.0], total_sq=[16.0]).iloc[0]
    assert row["value"] == 4 and np.isnan(row["ci_low"]) and np.isnan(row["ci_high"])


# ------------------------------------------------------------------ Poisson rates (Garwood)


# Exact 95% limits for a Poisson count (Garwood 1936; as tabulated e.g. by Ulm 1990, Am J Epidemiol).
GARWOOD = [
    (0, 0.0, 3.6889),
    (1, 0.0253, 5.5716),
    (2, 0.2422, 7.2247),
    (3, 0.6187, 8.7673),
    (5, 1.6235, 11.6683),
    (10, 4.7954, 18.3904),
]


@pytest.mark.parametrize(("k", "low", "high"), GARWOOD)
def test_garwood_matches_the_tables(k: int, low: float, high: float) -> None:
    got_low, got_high = poisson_interval(arr(k), 0.95)
    assert (got_low[0], got_high[0]) == pytest.approx((low, high), abs=5e-5)


def test_a_rate_per_1000_scales_the_count_interval() -> None:
    row = finished(Kind.RATE, per=1000.0, num=[5.0], den=[250.0]).iloc[0]
    assert row["value"] == pytest.approx(1000 * 5 / 250) and row["n"] == 250
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (1000 * 1.6235 / 250, 1000 * 11.6683 / 250), abs=1e-3
    )


# ------------------------------------------------------------------ quantiles: the exact bootstrap


def bootstrap_order_statistic(x: np.ndarray, q: float, resamples: int, seed: int) -> np.ndarray:
    """The m-th order statistic (m = ceil(q n)) of ``resamples`` seeded bootstrap resamples."""
    m = max(1, math.ceil(q * x.size))
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    for start in range(0, resamples, 50_000):
        idx = rng.integers(0, x.size, (min(50_000, resamples - start), x.size))
        out[start : start + idx.shape[0]] = np.partition(x[idx], m - 1, axis=1)[:, m - 1]
    return np.sort(out)


@pytest.mark.parametrize(("n", "q", "seed"), [(25, 0.5, 11), (25, 0.9, 12), (40, 0.5, 13), (12, 0.9, 14)])
def test_exact_bootstrap_equals_a_brute_force_bootstrap(n: int, q: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = np.round(rng.lognormal(1.0, 1.0, n), 1)  # hours, with ties
    value, low, high = quantile_interval(x, q, 0.95)

    stats = bootstrap_order_statistic(x, q, 200_000, seed)

    assert value == pytest.approx(np.quantile(x, q))  # linear interpolation, as quantile_cont
    assert (low, high) == tuple(np.quantile(stats, [0.025, 0.975], method="inverted_cdf"))
    # The whole bootstrap distribution agrees, not just its 2.5% and 97.5% points.
    xs = np.sort(x)
    brute = np.searchsorted(stats, xs, side="right") / stats.size
    m = math.ceil(q * n)
    exact = st.binom.sf(m - 1, n, np.searchsorted(xs, xs, side="right") / n)
    assert np.abs(brute - exact).max() < 0.005


@pytest.mark.parametrize("q", [0.5, 0.9, 0.1])
def test_exact_bootstrap_equals_every_resample_enumerated(q: float) -> None:
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0])  # 5^5 = 3125 equally likely resamples, a tie
    m = math.ceil(q * x.size)
    stats = np.sort([sorted(r)[m - 1] for r in itertools.product(x, repeat=x.size)])

    _, low, high = quantile_interval(x, q, 0.95)

    assert (low, high) == tuple(np.quantile(stats, [0.025, 0.975], method="inverted_cdf"))


def test_quantile_rows_are_grouped_by_period() -> None:
    frame = pd.DataFrame({"period": pd.to_datetime(["2024-01-01"] * 3 + ["2024-02-01"]), "x": [1, 2, 9, 5.0]})
    out = finish(frame, Estimate(Kind.QUANTILE, q=0.5, min_n=3), ["period"])
    assert out["value"].tolist() == [2, 5] and out["n"].tolist() == [3, 1]
    assert [None if pd.isna(w) else w for w in out["warning"]] == [None, "only 1 observations (fewer than 3)"]
    assert np.isnan(out["ci_low"][1])  # one observation: no interval


# ------------------------------------------------------------------ period-over-period tests


def change_p(kind: Kind, now: dict[str, Any], before: dict[str, Any], **kw: Any) -> float:
    """The p-value cxloop gives for one period against the one before."""
    return float(p_values(kind, finished(kind, **kw, **now), finished(kind, **kw, **before))[0])


@pytest.mark.parametrize(("k1", "n1", "k0", "n0"), [(45, 60, 30, 55), (4, 5, 2, 3), (300, 1000, 280, 1000)])
def test_proportions_pooled_z_test(k1: int, n1: int, k0: int, n0: int) -> None:
    got = change_p(Kind.PROPORTION, {"k": [k1], "n": [n1]}, {"k": [k0], "n": [n0]})

    pooled = (k1 + k0) / (n1 + n0)
    z = (k1 / n1 - k0 / n0) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    assert got == pytest.approx(2 * st.norm.sf(abs(z)))
    # The pooled z-test is the chi-square test of the 2x2 table without continuity correction.
    table = [[k1, n1 - k1], [k0, n0 - k0]]
    assert got == pytest.approx(st.chi2_contingency(table, correction=False).pvalue)


def test_nps_change_z_test_on_the_multinomial_variances() -> None:
    now, before = (
        {"n": [120], "promoters": [60], "detractors": [20]},
        {"n": [100], "promoters": [40], "detractors": [25]},
    )
    got = change_p(Kind.NPS, now, before)

    def var(n: int, p: int, d: int) -> float:
        return 1e4 * (p / n + d / n - (p / n - d / n) ** 2) / n

    z = (100 * (60 - 20) / 120 - 100 * (40 - 25) / 100) / math.sqrt(var(120, 60, 20) + var(100, 40, 25))
    assert got == pytest.approx(2 * st.norm.sf(abs(z)))


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_means_welch_t_test_is_scipys(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(50, 10, int(rng.integers(3, 80))), rng.normal(53, 20, int(rng.integers(3, 80)))

    def sums(x: np.ndarray) -> dict[str, list[float]]:
        return {"n": [x.size], "total": [x.sum()], "total_sq": [(x**2).sum()]}

    got = change_p(Kind.MEAN, sums(a), sums(b))
    assert got == pytest.approx(st.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-8)


@pytest.mark.parametrize(("k1", "k0"), [(4, 2), (130, 100), (0, 7), (12, 12)])
def test_counts_conditional_binomial_test(k1: int, k0: int) -> None:
    got = change_p(Kind.COUNT, {"value": [k1]}, {"value": [k0]})
    assert got == pytest.approx(st.binomtest(k1, k1 + k0, 0.5).pvalue)


def test_rates_conditional_binomial_test_with_the_exposures() -> None:
    got = change_p(Kind.RATE, {"num": [9], "den": [400]}, {"num": [3], "den": [250]}, per=1000.0)
    assert got == pytest.approx(st.binomtest(9, 9 + 3, 400 / (400 + 250)).pvalue)
    assert np.isnan(change_p(Kind.RATE, {"num": [0], "den": [10]}, {"num": [0], "den": [12]}))


def test_quantiles_change_when_the_intervals_do_not_overlap() -> None:
    def period(*x: float) -> pd.DataFrame:
        frame = pd.DataFrame({"period": pd.Timestamp("2024-01-01"), "x": x})
        return finish(frame, Estimate(Kind.QUANTILE), ["period"])

    low = period(*range(1, 41))
    high = period(*range(101, 141))
    overlapping = period(*range(5, 45))
    single = period(7)
    assert p_values(Kind.QUANTILE, high, low)[0] == 0.0
    assert p_values(Kind.QUANTILE, overlapping, low)[0] == 1.0
    assert np.isnan(p_values(Kind.QUANTILE, single, low)[0])


@pytest.mark.parametrize("kind", [Kind.SUM, Kind.RATIO, Kind.SHARE])
def test_exact_figures_have_no_test(kind: Kind) -> None:
    columns = {"value": [5.0], "n": [2.0]} if kind is Kind.SUM else {"num": [5.0], "den": [2.0]}
    assert np.isnan(change_p(kind, columns, columns))
