"""BG/NBD: the beta-geometric / negative binomial model of repeat buying (Fader, Hardie and Lee
2005, "Counting your customers the easy way", Marketing Science 24(2)).

Assumptions: while alive, a customer buys as a Poisson process with rate λ, λ ~ Gamma(r, α)
across customers; after each purchase the customer drops out with probability p,
p ~ Beta(a, b); λ and p are independent. A customer with (x, t_x, T) — x repeat purchases, the
last at t_x, observed for T since the first — has likelihood

    L = B(a, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
        + [x > 0] · B(a+1, b+x−1)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x)),

evaluated here as log-sum-exp of the two terms, with its analytic gradient in log-parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from cxloop.value.fitting import Fit, FitError, Rows, distinct_pairs, maximise

NAMES = ("r", "alpha", "a", "b")


def log_likelihood(theta: np.ndarray, rows: Rows) -> tuple[float, np.ndarray]:
    """Σ count · log L over the rows, and its gradient in (log r, log α, log a, log b).

    Every term that depends on x alone (B, Γ and ψ of x) or on T or t_x alone (their logs) is
    computed once per distinct value and spread to the rows."""
    r, alpha, a, b = np.exp(theta)
    xs, w = rows.xs, rows.count
    ux = xs.distinct
    x = rows.x
    repeat = x > 0
    ub2 = np.where(ux > 0, ux - 1, 0.0)  # b + x − 1 ≥ b: ψ and B taken at x−1 where x > 0
    base = betaln(a, b)
    log_aT = rows.Ts(np.log(alpha + rows.Ts.distinct))
    log_at = rows.ts(np.log(alpha + rows.ts.distinct))
    l1 = xs(betaln(a, b + ux) - base) - (r + x) * log_aT
    l2 = np.where(repeat, xs(betaln(a + 1, b + ub2) - base) - (r + x) * log_at, -np.inf)
    top = np.logaddexp(l1, l2)
    w1, w2 = np.exp(l1 - top), np.exp(l2 - top)  # shares of the two terms (w1 = P(alive))
    ll = xs(gammaln(r + ux) - gammaln(r)) + r * np.log(alpha) + top

    d_abx = xs(digamma(a + b + ux))
    d_ab = digamma(a + b)
    d_b2 = xs(digamma(b + ub2))
    d_bx = xs(digamma(b + ux))
    grad_r = xs(digamma(r + ux)) - digamma(r) + np.log(alpha) - w1 * log_aT - w2 * log_at
    grad_alpha = r / alpha - (r + x) * (w1 / (alpha + rows.T) + w2 / (alpha + rows.t_x))
    grad_a = w1 * (d_ab - d_abx) + w2 * (1 / a - d_abx + d_ab)
    grad_b = w1 * (d_bx - d_abx - digamma(b) + d_ab) + w2 * (d_b2 - d_abx - digamma(b) + d_ab)
    grads = np.stack([grad_r * r, grad_alpha * alpha, grad_a * a, grad_b * b])
    return float((w * ll).sum()), (grads * w).sum(axis=1)  # no BLAS: see fitting.py


@dataclass(frozen=True)
class BetaGeo:
    """A fitted BG/NBD model (time in the unit of the data it was fitted on)."""

    r: float
    alpha: float
    a: float
    b: float
    fit: Fit | None = None

    @classmethod
    def fitted(cls, frequency: Any, recency: Any, T: Any) -> BetaGeo:
        """Maximum likelihood on customers' repeat purchases x, recency t_x and age T."""
        rows = Rows.of(frequency, recency, T)
        if not np.any(rows.x > 0):
            raise FitError("BG/NBD: no customer made a repeat purchase; the model cannot be fitted")
        fit = maximise("bgnbd", NAMES, lambda th: log_likelihood(th, rows), customers=rows.customers)
        return cls(**fit.params, fit=fit)

    def log_likelihood(self, frequency: Any, recency: Any, T: Any) -> float:
        rows = Rows.of(frequency, recency, T)
        return log_likelihood(np.log([self.r, self.alpha, self.a, self.b]), rows)[0]

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(alive | x, t_x, T) = 1 / (1 + [x > 0] · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x))."""
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = (
                np.log(self.a)
                - np.log(self.b + x - 1)
                + (self.r + x) * (np.log(self.alpha + T) - np.log(self.alpha + t_x))
            )
        log_odds = np.where(x > 0, log_odds, -np.inf)
        return np.asarray(np.exp(-np.logaddexp(0.0, log_odds)))

    def expected_purchases(self, t: float, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """E[Y(t) | x, t_x, T], purchases in the next t (FHL 2005, eq. 10):

            (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) ·
                2F1(r+x, b+x; a+b+x−1; t/(α+T+t))] · P(alive),

        with 2F1 taken through Euler's transformation, (1−z)^(r+x) 2F1(r+x, b+x; c; z) =
        (1−z)^(a−1) 2F1(a+b−1−r, a−1; c; z), whose terms stay small for any x."""
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        if t <= 0:
            return np.zeros_like(x)
        a = self.a if abs(self.a - 1) > 1e-7 else 1 + 1e-7  # the a → 1 limit, numerically
        # The bracket depends on x and T only: evaluate 2F1 once per distinct (x, T) pair.
        pairs, ux, uT = distinct_pairs(x.ravel(), T.ravel())
        z = t / (self.alpha + uT + t)
        c = a + self.b + ux - 1
        tail = (1 - z) ** (a - 1) * hyp2f1(a + self.b - 1 - self.r, a - 1, c, z)
        bracket = (c / (a - 1) * (1 - tail))[pairs].reshape(x.shape)
        return np.asarray(bracket * self.p_alive(x, t_x, T))

    def expected_purchases_new(self, t: Any) -> np.ndarray:
        """E[X(t)] for a customer just acquired (FHL 2005, eq. 7):
        (a+b−1)/(a−1) · [1 − (α/(α+t))^r · 2F1(r, b; a+b−1; t/(α+t))]."""
        t = np.asarray(t, dtype=float)
        a = self.a if abs(self.a - 1) > 1e-7 else 1 + 1e-7
        z = t / (self.alpha + t)
        tail = (1 - z) ** (a - 1) * hyp2f1(a + self.b - 1 - self.r, a - 1, a + self.b - 1, z)
        return np.asarray((a + self.b - 1) / (a - 1) * (1 - tail))
