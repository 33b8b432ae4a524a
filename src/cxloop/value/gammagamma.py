"""Gamma-Gamma: how much a customer spends per purchase (Fader, Hardie and Lee 2005, "RFM and
CLV: using iso-value curves for customer base analysis"; the note "The Gamma-Gamma model of
monetary value", Fader and Hardie 2013).

Assumptions: a customer's purchases are Gamma(p, ν) around their own mean p/ν; ν ~ Gamma(q, γ)
across customers; spend is independent of how often and how long a customer buys (check this on
your data: the correlation of frequency and mean spend should be near 0). Fitted on customers
with x ≥ 1 repeat purchases and mean repeat spend m > 0:

    f(m | x) = Γ(px+q) / (Γ(px) Γ(q)) · γ^q m^(px−1) x^(px) / (γ + x m)^(px+q).

The expected spend per purchase of a customer is the conditional mean

    E[M | x, m] = (q−1)/(px+q−1) · pγ/(q−1) + px/(px+q−1) · m = p (γ + x m) / (px + q − 1),

a weighted average of the population mean pγ/(q−1) and the customer's own mean (it needs q > 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import digamma, gammaln

from cxloop.value.fitting import Fit, FitError, maximise

NAMES = ("p", "q", "gamma")
MIN_CUSTOMERS = 10


@dataclass(frozen=True)
class SpendData:
    """Repeat customers' x and mean spend m, with the sums the likelihood reuses: the terms in
    Γ depend on x only (evaluated per distinct x), the term in log m is linear in p."""

    x: np.ndarray
    m: np.ndarray
    distinct_x: np.ndarray
    x_count: np.ndarray
    sum_x_log_xm: float
    sum_log_m: float

    @classmethod
    def of(cls, frequency: Any, monetary: Any) -> SpendData:
        x, m = np.asarray(frequency, dtype=float), np.asarray(monetary, dtype=float)
        keep = (x > 0) & (m > 0) & np.isfinite(m)
        x, m = x[keep], m[keep]
        distinct, count = np.unique(x, return_counts=True)
        sum_x_log_xm = float((x * np.log(x * m)).sum())
        return cls(x, m, distinct, count.astype(float), sum_x_log_xm, float(np.log(m).sum()))


def log_likelihood(theta: np.ndarray, data: SpendData) -> tuple[float, np.ndarray]:
    """Σ log f(m | x) and its gradient in (log p, log q, log γ)."""
    p, q, g = np.exp(theta)
    ux, uc = data.distinct_x, data.x_count
    n = float(uc.sum())
    log_gxm = np.log(g + data.x * data.m)
    px = p * data.x
    ll = (
        uc @ (gammaln(p * ux + q) - gammaln(p * ux))
        - n * gammaln(q)
        + n * q * np.log(g)
        + p * data.sum_x_log_xm
        - data.sum_log_m
        - ((px + q) * log_gxm).sum()
    )
    grad_p = uc @ (ux * (digamma(p * ux + q) - digamma(p * ux))) + data.sum_x_log_xm
    grad_p -= (data.x * log_gxm).sum()
    grad_q = uc @ digamma(p * ux + q) - n * digamma(q) + n * np.log(g) - log_gxm.sum()
    grad_g = n * q / g - ((px + q) / (g + data.x * data.m)).sum()
    return float(ll), np.array([grad_p * p, grad_q * q, grad_g * g])


@dataclass(frozen=True)
class GammaGamma:
    """A fitted Gamma-Gamma spend model."""

    p: float
    q: float
    gamma: float
    fit: Fit | None = None

    @classmethod
    def fitted(cls, frequency: Any, monetary: Any) -> GammaGamma:
        """Maximum likelihood on customers with x ≥ 1 and mean repeat spend > 0 (the others are
        left out: the model describes the spend of repeat purchases, and needs it positive)."""
        data = SpendData.of(frequency, monetary)
        if len(data.x) < MIN_CUSTOMERS:
            raise FitError(
                f"Gamma-Gamma: {len(data.x)} customers with a repeat purchase of positive value; "
                f"at least {MIN_CUSTOMERS} are needed to fit the spend model"
            )
        fit = maximise("gammagamma", NAMES, lambda th: log_likelihood(th, data), customers=len(data.x))
        if fit.params["q"] <= 1:
            raise FitError(
                f"Gamma-Gamma: fitted q = {fit.params['q']:.3g} <= 1, so the spend distribution has "
                "no mean and expected spend is undefined; spend varies too wildly between customers "
                "(look for outliers or mixed currencies)"
            )
        return cls(**fit.params, fit=fit)

    @property
    def population_mean(self) -> float:
        """pγ/(q−1): the expected spend per purchase of a customer we know nothing about."""
        return self.p * self.gamma / (self.q - 1)

    def expected_spend(self, frequency: Any, monetary: Any) -> np.ndarray:
        """E[M | x, m] = p (γ + x m) / (px + q − 1); with x = 0 the population mean. A mean
        spend below 0 (returns exceeding purchases) counts as 0."""
        x = np.asarray(frequency, dtype=float)
        m = np.clip(np.nan_to_num(np.asarray(monetary, dtype=float)), 0, None)
        m = np.where(x > 0, m, 0.0)
        return np.asarray(self.p * (self.gamma + x * m) / (self.p * x + self.q - 1))
