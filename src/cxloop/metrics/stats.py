"""Turn the sufficient statistics a KPI query returns into a value, a confidence interval and a warning.

The database computes only sums and counts (the same on every engine); everything statistical
happens here, vectorised over the rows of a result, so DuckDB, PostgreSQL and Spark give the same
numbers. Each statistic kind names the columns it needs:

=============  ==============================  =================================================
kind           columns from the query          value and interval
=============  ==============================  =================================================
count          value                           the count; no interval (it is not a sample)
sum            value, n                        the sum; no interval
proportion     k, n                            100·k/n; Wilson score interval
nps            n, promoters, detractors        100·(p − d); adjusted Wald (Rocks 2016)
mean           n, total, total_sq              total/n; Student t interval
rate           num, den  (+ ``per``)           per·num/den; exact Poisson (Garwood) on num
ratio          num, den                        num/den; no interval
share          num, den                        100·num/den; no interval
quantile       one row per observation, ``x``  the q-quantile (linear); exact bootstrap interval
=============  ==============================  =================================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as st


class Kind(enum.StrEnum):
    COUNT = "count"
    SUM = "sum"
    PROPORTION = "proportion"
    NPS = "nps"
    MEAN = "mean"
    RATE = "rate"
    RATIO = "ratio"
    SHARE = "share"
    QUANTILE = "quantile"


#: Kinds whose value is an estimate from a sample of answers, so few answers deserve a warning.
SAMPLED = {Kind.PROPORTION, Kind.NPS, Kind.MEAN, Kind.QUANTILE, Kind.RATE}

CI_METHOD = {
    Kind.COUNT: "none (an exact count)",
    Kind.SUM: "none (an exact total)",
    Kind.PROPORTION: "Wilson score interval",
    Kind.NPS: "adjusted Wald for NPS (add 3 answers: 3/4 promoter, 3/4 detractor)",
    Kind.MEAN: "Student t interval",
    Kind.RATE: "exact Poisson (Garwood) interval on the numerator",
    Kind.RATIO: "none (a ratio of totals)",
    Kind.SHARE: "none (a share of a total)",
    Kind.QUANTILE: "exact percentile bootstrap of the order statistic",
}

#: The statistic columns each kind's query must return (besides period and dimensions).
COLUMNS = {
    Kind.COUNT: ("value",),
    Kind.SUM: ("value", "n"),
    Kind.PROPORTION: ("k", "n"),
    Kind.NPS: ("n", "promoters", "detractors"),
    Kind.MEAN: ("n", "total", "total_sq"),
    Kind.RATE: ("num", "den"),
    Kind.RATIO: ("num", "den"),
    Kind.SHARE: ("num", "den"),
    Kind.QUANTILE: ("x",),
}


@dataclass(frozen=True)
class Estimate:
    """How to finish a kind: its parameters and the confidence level."""

    kind: Kind
    confidence: float = 0.95
    per: float = 1.0  # rate: value per `per` units of the denominator
    q: float = 0.5  # quantile
    min_n: int = 30


def finish(stats: pd.DataFrame, estimate: Estimate, keys: list[str]) -> pd.DataFrame:
    """Return ``keys`` + value, n, ci_low, ci_high, warning, plus the statistic columns kept for
    period-over-period tests (``_a``, ``_b``, ``_c``)."""
    kind = estimate.kind
    if kind is Kind.QUANTILE:
        return _finish_quantile(stats, estimate, keys)
    out = stats[keys].copy()
    z = st.norm.ppf(0.5 + estimate.confidence / 2)
    nan = np.full(len(stats), np.nan)
    if kind is Kind.COUNT:
        value = stats["value"].to_numpy(float)
        out["value"], out["n"], low, high = value, value, nan, nan
    elif kind is Kind.SUM:
        out["value"], out["n"], low, high = stats["value"].to_numpy(float), stats["n"], nan, nan
    elif kind is Kind.PROPORTION:
        k, n = stats["k"].to_numpy(float), stats["n"].to_numpy(float)
        low, high = wilson(k, n, z)
        out["value"], out["n"] = 100 * _div(k, n), n
        low, high = 100 * low, 100 * high
    elif kind is Kind.NPS:
        n, p, d = (stats[c].to_numpy(float) for c in ("n", "promoters", "detractors"))
        out["value"], out["n"] = 100 * _div(p - d, n), n
        low, high = nps_interval(p, d, n, z)
    elif kind is Kind.MEAN:
        n, total, total_sq = (stats[c].to_numpy(float) for c in ("n", "total", "total_sq"))
        mean = _div(total, n)
        out["value"], out["n"] = mean, n
        half = st.t.ppf(0.5 + estimate.confidence / 2, np.maximum(n - 1, 1)) * _sem(n, total, total_sq)
        low, high = np.where(n > 1, mean - half, np.nan), np.where(n > 1, mean + half, np.nan)
    elif kind is Kind.RATE:
        num, den = stats["num"].to_numpy(float), stats["den"].to_numpy(float)
        scale = estimate.per * _div(np.ones_like(den), den)
        out["value"], out["n"] = num * scale, den
        lo, hi = poisson_interval(num, estimate.confidence)
        low, high = lo * scale, hi * scale
    elif kind in (Kind.RATIO, Kind.SHARE):
        num, den = stats["num"].to_numpy(float), stats["den"].to_numpy(float)
        out["value"] = (100 if kind is Kind.SHARE else 1) * _div(num, den)
        # n counts what the figure is over; a builder may name it when den is money.
        out["n"], low, high = stats.get("n", den), nan, nan
    else:  # pragma: no cover - every kind is handled above
        raise AssertionError(kind)
    out["ci_low"], out["ci_high"] = low, high
    out["warning"] = _warnings(out["n"].to_numpy(float), estimate)
    for i, name in enumerate(("_a", "_b", "_c")):
        columns = COLUMNS[kind]
        out[name] = stats[columns[i]].to_numpy(float) if i < len(columns) else np.nan
    return out.reset_index(drop=True)


def wilson(k: np.ndarray, n: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes in n trials, as fractions (NaN where n = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        # A "proportion" past 100% (retention with reactivations) gets the interval of 100%.
        p = np.clip(k / n, 0, 1)
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    # At p = 0 (p = 1) the bound is exactly 0 (1); the subtraction leaves rounding noise (5e-15).
    low = np.where(p <= 0, 0.0, np.clip(centre - half, 0, 1))
    high = np.where(p >= 1, 1.0, np.clip(centre + half, 0, 1))
    return np.where(n > 0, low, np.nan), np.where(n > 0, high, np.nan)


def nps_interval(p: np.ndarray, d: np.ndarray, n: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Adjusted-Wald interval for NPS in points: add 3 answers, 3/4 of them promoters and 3/4
    detractors, then NPS ± z·100·sqrt((p + d − (p − d)²) / n) (Rocks 2016)."""
    n_adj = n + 3
    pa, da = (p + 0.75) / n_adj, (d + 0.75) / n_adj
    centre = pa - da
    half = z * np.sqrt(np.maximum(pa + da - centre**2, 0) / n_adj)
    low, high = 100 * np.clip(centre - half, -1, 1), 100 * np.clip(centre + half, -1, 1)
    return np.where(n > 0, low, np.nan), np.where(n > 0, high, np.nan)


def nps_variance(p: np.ndarray, d: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Variance of the NPS estimate in points²: 100²·[p + d − (p − d)²] / n (shares p, d)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ps, ds = p / n, d / n
        return np.asarray(10_000 * (ps + ds - (ps - ds) ** 2) / n)


def poisson_interval(k: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) interval for a Poisson count k."""
    alpha = 1 - confidence
    low = np.where(k > 0, st.chi2.ppf(alpha / 2, 2 * k) / 2, 0.0)
    high = st.chi2.ppf(1 - alpha / 2, 2 * (k + 1)) / 2
    return low, high


def quantile_interval(x: np.ndarray, q: float, confidence: float) -> tuple[float, float, float]:
    """The q-quantile of ``x`` (linear interpolation, as DuckDB's ``quantile_cont``) and its exact
    percentile-bootstrap interval.

    A bootstrap resample's m-th order statistic is at most x₍ⱼ₎ exactly when at least m resampled
    values are ≤ x₍ⱼ₎, which happens with probability P(Binomial(n, F(x₍ⱼ₎)) ≥ m). That is the
    bootstrap distribution with infinitely many resamples, computed in closed form: no random
    numbers, the same answer every time, and O(n) even for half a million tickets.
    """
    xs = np.sort(np.asarray(x, dtype=float))
    n = xs.size
    if n == 0:
        return np.nan, np.nan, np.nan
    value = float(np.quantile(xs, q))
    if n == 1:
        return value, np.nan, np.nan
    m = max(1, int(np.ceil(q * n)))
    cdf = np.searchsorted(xs, xs, side="right") / n
    prob_at_most = st.binom.sf(m - 1, n, cdf)  # P(order statistic m of a resample <= xs[j])
    alpha = 1 - confidence
    low = xs[min(int(np.searchsorted(prob_at_most, alpha / 2, side="left")), n - 1)]
    high = xs[min(int(np.searchsorted(prob_at_most, 1 - alpha / 2, side="left")), n - 1)]
    return value, float(low), float(high)


def _finish_quantile(rows: pd.DataFrame, estimate: Estimate, keys: list[str]) -> pd.DataFrame:
    records = []
    groups = rows.groupby(keys, sort=True, dropna=False) if keys else [((), rows)]
    for key, group in groups:
        x = group["x"].dropna().to_numpy(float)
        value, low, high = quantile_interval(x, estimate.q, estimate.confidence)
        key = key if isinstance(key, tuple) else (key,)
        records.append((*key, value, float(x.size), low, high))
    out = pd.DataFrame.from_records(records, columns=[*keys, "value", "n", "ci_low", "ci_high"])
    out["warning"] = _warnings(out["n"].to_numpy(float), estimate)
    # For period-over-period tests: the interval is what a quantile can offer.
    out["_a"], out["_b"], out["_c"] = out["ci_low"], out["ci_high"], out["n"]
    return out


def _warnings(n: np.ndarray, estimate: Estimate) -> np.ndarray:
    result = np.full(n.shape, None, dtype=object)
    if estimate.kind in SAMPLED:
        few = n < estimate.min_n
        result[few] = [f"only {int(v)} observations (fewer than {estimate.min_n})" for v in n[few]]
    return result


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, 1), np.nan)


def _sem(n: np.ndarray, total: np.ndarray, total_sq: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = (total_sq - total**2 / n) / (n - 1)
        return np.asarray(np.sqrt(np.maximum(variance, 0) / n))
