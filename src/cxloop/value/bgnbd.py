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
from typing import Any, ClassVar

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from cxloop.value.fitting import Fit, RepeatBuying, Rows, distinct_pairs

NAMES = ("r", "alpha", "a", "b")


def log_likelihood(theta: np.ndarray, rows: Rows) -> tuple[float, np.ndarray]:
    """Σ count · log L over the rows, and its gradient in (log r, log α, log a, log b).

    The first term depends on (x, T) only and the second on (x, t_x) only: each is computed once
    per distinct pair, and every Γ, B and ψ of x once per distinct x; only their log-sum-exp and
    its shares are per row, and the gradient's sums over rows are sums over pairs and over x of
    the shares' totals (``np.bincount``)."""
    r, alpha, a, b = np.exp(theta)
    first, second = rows.x_T, rows.x_t
    n = rows.customers
    # Per distinct x (X): the Γ, B and ψ terms.
    X = rows.xs.distinct
    Xm1 = np.where(X > 0, X - 1, 0.0)  # b + x − 1 ≥ b; the pairs with x = 0 weigh nothing
    base, d_ab, d_b = betaln(a, b), digamma(a + b), digamma(b)
    d_abX = digamma(a + b + X)
    # (x, T) pairs: the "still alive" term.
    x1, T1, c1 = first.u, first.v, first.u_code
    log_aT = np.log(alpha + T1)
    l1 = (betaln(a, b + X) - base)[c1] - (r + x1) * log_aT
    # (x, t_x) pairs: the "dropped out after the last purchase" term; none without a purchase.
    x2, t2, c2 = second.u, second.v, second.u_code
    log_at = np.log(alpha + t2)
    l2 = np.where(x2 > 0, (betaln(a + 1, b + Xm1) - base)[c2] - (r + x2) * log_at, -np.inf)
    # Per row: log-sum-exp of the two terms and the share of the first (= P(alive)).
    row1 = l1[first.code]
    top = np.logaddexp(row1, l2[second.code])
    alive = np.exp(row1 - top)
    w = rows.count
    w1 = first.total(w * alive)  # per (x, T) pair
    w2 = second.total(w * (1 - alive))  # per (x, t_x) pair
    wx = np.bincount(rows.xs.code, weights=w, minlength=len(X))  # per x
    w1x, w2x = first.by_u(w1, len(X)), second.by_u(w2, len(X))
    ll = float((w * top).sum()) + wx @ (gammaln(r + X) - gammaln(r)) + n * r * np.log(alpha)

    grad_r = wx @ (digamma(r + X) - digamma(r)) + n * np.log(alpha) - w1 @ log_aT - w2 @ log_at
    grad_alpha = n * r / alpha - w1 @ ((r + x1) / (alpha + T1)) - w2 @ ((r + x2) / (alpha + t2))
    grad_a = w1x @ (d_ab - d_abX) + w2x @ (1 / a - d_abX + d_ab)
    grad_b = w1x @ (digamma(b + X) - d_abX - d_b + d_ab) + w2x @ (digamma(b + Xm1) - d_abX - d_b + d_ab)
    return float(ll), np.array([grad_r * r, grad_alpha * alpha, grad_a * a, grad_b * b])


@dataclass(frozen=True)
class BetaGeo(RepeatBuying):
    """A fitted BG/NBD model (time in the unit of the data it was fitted on)."""

    r: float
    alpha: float
    a: float
    b: float
    fit: Fit | None = None

    KEY: ClassVar[str] = "bgnbd"
    LABEL: ClassVar[str] = "BG/NBD"
    NAMES: ClassVar[tuple[str, ...]] = NAMES
    objective = staticmethod(log_likelihood)

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
        return np.asarray(self.expected_purchases_at([t], frequency, recency, T)[0])

    def expected_purchases_at(
        self, times: Any, frequency: Any, recency: Any, T: Any, alive: np.ndarray | None = None
    ) -> np.ndarray:
        """E[Y(t) | x, t_x, T] for each t of ``times``: shape (len(times), *x.shape). P(alive) is
        computed once, and the bracket once per distinct (x, T) pair and t."""
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        a = self.a if abs(self.a - 1) > 1e-7 else 1 + 1e-7  # the a → 1 limit, numerically
        pairs, ux, uT = distinct_pairs(x.ravel(), T.ravel())
        c = a + self.b + ux - 1
        alive = self.p_alive(x, t_x, T) if alive is None else alive  # the caller's, if it has it
        out = np.zeros((len(times), *x.shape))
        for i, t in enumerate(np.asarray(times, dtype=float)):
            if t <= 0:
                continue
            z = t / (self.alpha + uT + t)
            tail = (1 - z) ** (a - 1) * hyp2f1(a + self.b - 1 - self.r, a - 1, c, z)
            out[i] = (c / (a - 1) * (1 - tail))[pairs].reshape(x.shape) * alive
        return out

    def expected_purchases_new(self, t: Any) -> np.ndarray:
        """E[X(t)] for a customer just acquired (FHL 2005, eq. 7):
        (a+b−1)/(a−1) · [1 − (α/(α+t))^r · 2F1(r, b; a+b−1; t/(α+t))]."""
        t = np.asarray(t, dtype=float)
        a = self.a if abs(self.a - 1) > 1e-7 else 1 + 1e-7
        z = t / (self.alpha + t)
        tail = (1 - z) ** (a - 1) * hyp2f1(a + self.b - 1 - self.r, a - 1, a + self.b - 1, z)
        return np.asarray((a + self.b - 1) / (a - 1) * (1 - tail))
