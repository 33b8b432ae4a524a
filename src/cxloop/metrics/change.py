"""Period-over-period change, and whether it is more than noise.

Each KPI kind has its test (docs/metrics.md): two-proportion z-test for proportions, a z-test on
the NPS difference with the multinomial variance, Welch's t-test for means, a conditional
(binomial) test for counts and Poisson rates, and for quantiles non-overlapping intervals (a
conservative test). Sums, ratios and shares are exact figures, so they get no test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as st

from cxloop.metrics.stats import Kind, nps_variance

ALPHA = 0.05


def p_values(kind: Kind, now: pd.DataFrame, before: pd.DataFrame) -> np.ndarray:
    """Two-sided p-values for the change from ``before`` to ``now`` (aligned rows carrying the
    statistic columns ``_a``, ``_b``, ``_c`` that :func:`cxloop.metrics.stats.finish` keeps)."""
    a1, b1, c1 = (now[c].to_numpy(float) for c in ("_a", "_b", "_c"))
    a0, b0, c0 = (before[c].to_numpy(float) for c in ("_a", "_b", "_c"))
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind is Kind.PROPORTION:  # _a = k, _b = n
            pooled = (a1 + a0) / (b1 + b0)
            se = np.sqrt(pooled * (1 - pooled) * (1 / b1 + 1 / b0))
            z = (a1 / b1 - a0 / b0) / se
            return _two_sided(z)
        if kind is Kind.NPS:  # _a = n, _b = promoters, _c = detractors
            d = 100 * ((b1 - c1) / a1 - (b0 - c0) / a0)
            z = d / np.sqrt(nps_variance(b1, c1, a1) + nps_variance(b0, c0, a0))
            return _two_sided(z)
        if kind is Kind.MEAN:  # _a = n, _b = total, _c = total_sq
            m1, m0 = b1 / a1, b0 / a0
            v1, v0 = (c1 - b1**2 / a1) / (a1 - 1), (c0 - b0**2 / a0) / (a0 - 1)
            se2_1, se2_0 = v1 / a1, v0 / a0
            t = (m1 - m0) / np.sqrt(se2_1 + se2_0)
            dof = (se2_1 + se2_0) ** 2 / (se2_1**2 / (a1 - 1) + se2_0**2 / (a0 - 1))
            return np.asarray(2 * st.t.sf(np.abs(t), dof))
        if kind is Kind.COUNT:  # _a = count; equal exposure: k1 ~ Binomial(k1 + k0, 1/2)
            return _binomial_p(a1, a1 + a0, np.full(a1.shape, 0.5))
        if kind is Kind.RATE:  # _a = num, _b = den: num1 ~ Binomial(num1 + num0, den1 / (den1 + den0))
            return _binomial_p(a1, a1 + a0, b1 / (b1 + b0))
        if kind is Kind.QUANTILE:  # _a = ci_low, _b = ci_high: disjoint intervals
            disjoint = (a1 > b0) | (b1 < a0)
            return np.where(np.isnan(a1) | np.isnan(a0), np.nan, np.where(disjoint, 0.0, 1.0))
    return np.full(len(now), np.nan)


def _two_sided(z: np.ndarray) -> np.ndarray:
    return np.asarray(2 * st.norm.sf(np.abs(z)))


def _binomial_p(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    out = np.full(k.shape, np.nan)
    for i, (ki, ni, pi) in enumerate(zip(k, n, p, strict=True)):
        if ni > 0 and np.isfinite(pi):
            out[i] = st.binomtest(int(ki), int(ni), float(pi)).pvalue
    return out
