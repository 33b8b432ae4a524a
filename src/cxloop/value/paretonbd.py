"""Pareto/NBD (Schmittlein, Morrison and Colombo 1987; the likelihood as in Fader, Hardie and Lee
2005, "A note on deriving the Pareto/NBD model and related expressions").

Assumptions: while alive, a customer buys as a Poisson process with rate λ ~ Gamma(r, α); the
customer's lifetime is exponential with rate μ ~ Gamma(s, β), independent of λ — so dropping out
can happen at any time, not only just after a purchase (as in BG/NBD). The likelihood is

    L = Γ(r+x) α^r β^s / Γ(r) · [ 1/((α+T)^(r+x) (β+T)^s) + s · I ],
    I = ∫_{t_x}^{T} (α+τ)^−(r+x) (β+τ)^−(s+1) dτ,

the second term being "alive until τ, then gone". The closed form of I needs the Gauss
hypergeometric function with an argument that approaches 1 and a difference of two such terms
that cancels when t_x is close to T. Here I is computed as the integral it is, after the change
of variable y = ((α+t_x)/(α+τ))^k, k = r+s+x, which takes the steep power out of the integrand:

    I = (α+t_x)^−k / k · ∫_{y_T}^{1} ((β+τ)/(α+τ))^−(s+1) dy,   y_T = ((α+t_x)/(α+T))^k,

a bounded, smooth integrand that Gauss-Legendre quadrature integrates to ~1e-12 relative with 48
nodes. The gradient is the integral of the integrand's derivatives (differentiation under the
integral sign) on the same nodes: analytic, no hypergeometric derivatives needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy.special import digamma, gammaln

from cxloop.value.fitting import Fit, RepeatBuying, Rows

NAMES = ("r", "alpha", "s", "beta")
PANELS, NODES = 16, 12
LOG_FLOOR = 40.0


def _nodes() -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre on [0, 1]: PANELS equal panels of NODES nodes each."""
    x, w = np.polynomial.legendre.leggauss(NODES)
    starts = np.arange(PANELS) / PANELS
    nodes = (starts[:, None] + (x[None, :] + 1) / (2 * PANELS)).ravel()
    return nodes, np.tile(w / (2 * PANELS), PANELS)


def _integral(
    r: float, alpha: float, s: float, beta: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """log I per row (−inf where t_x = T) and d log I / d(r, α, s, β), shape (4, rows)."""
    k = r + s + x
    # In ℓ = log y the integrand e^ℓ · ρ^−(s+1) is smooth (ρ depends on y^(1/k) = e^(ℓ/k)) and
    # decays like e^ℓ; below ℓ = −40 nothing of it is left. Composite Gauss-Legendre on PANELS
    # equal panels of [max(log y_T, −40), 0].
    lower = np.maximum(k * (np.log(alpha + t_x) - np.log(alpha + T)), -LOG_FLOOR)  # ≤ 0
    nodes, weights = _nodes()
    ell = lower[:, None] * (1 - nodes[None, :])  # (rows, PANELS · NODES) in [lower, 0]
    tau = (alpha + t_x)[:, None] * np.exp(-ell / k[:, None]) - alpha
    tau = np.clip(tau, t_x[:, None], T[:, None])
    log_ratio = np.log(beta + tau) - np.log(alpha + tau)
    f = np.exp(ell - (s + 1) * log_ratio) * weights[None, :] * (-lower)[:, None]
    total = f.sum(axis=1)
    empty = total <= 0  # t_x == T: nothing to integrate
    safe = np.where(empty, 1.0, total)
    log_i = np.where(empty, -np.inf, np.log(safe) - k * np.log(alpha + t_x) - np.log(k))
    share = f / safe[:, None]
    grads = np.stack(
        [
            -(share * np.log(alpha + tau)).sum(axis=1),
            -(r + x) * (share / (alpha + tau)).sum(axis=1),
            -(share * np.log(beta + tau)).sum(axis=1),
            -(s + 1) * (share / (beta + tau)).sum(axis=1),
        ]
    )
    return log_i, grads


def log_likelihood(theta: np.ndarray, rows: Rows) -> tuple[float, np.ndarray]:
    """Σ count · log L over the rows, and its gradient in (log r, log α, log s, log β)."""
    r, alpha, s, beta = np.exp(theta)
    x, t_x, T, w = rows.x, rows.t_x, rows.T, rows.count
    l1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    log_i, d_i = _integral(r, alpha, s, beta, x, t_x, T)
    l2 = np.log(s) + log_i
    top = np.logaddexp(l1, l2)
    w1, w2 = np.exp(l1 - top), np.exp(l2 - top)  # w1 = P(alive)
    ll = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + top
    grad_r = digamma(r + x) - digamma(r) + np.log(alpha) - w1 * np.log(alpha + T) + w2 * d_i[0]
    grad_alpha = r / alpha - w1 * (r + x) / (alpha + T) + w2 * d_i[1]
    grad_s = np.log(beta) - w1 * np.log(beta + T) + w2 * (1 / s + d_i[2])
    grad_beta = s / beta - w1 * s / (beta + T) + w2 * d_i[3]
    grads = np.stack([grad_r * r, grad_alpha * alpha, grad_s * s, grad_beta * beta])
    return float((w * ll).sum()), (grads * w).sum(axis=1)  # no BLAS: see fitting.py


@dataclass(frozen=True)
class ParetoNBD(RepeatBuying):
    """A fitted Pareto/NBD model (time in the unit of the data it was fitted on)."""

    r: float
    alpha: float
    s: float
    beta: float
    fit: Fit | None = None

    KEY: ClassVar[str] = "paretonbd"
    LABEL: ClassVar[str] = "Pareto/NBD"
    NAMES: ClassVar[tuple[str, ...]] = NAMES
    objective = staticmethod(log_likelihood)

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(alive | x, t_x, T): the share of the likelihood's first term (alive at T)."""
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        l1 = -(self.r + x) * np.log(self.alpha + T) - self.s * np.log(self.beta + T)
        log_i, _ = _integral(self.r, self.alpha, self.s, self.beta, x, t_x, T)
        return np.asarray(np.exp(l1 - np.logaddexp(l1, np.log(self.s) + log_i)))

    def expected_purchases(self, t: float, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """E[Y(t) | x, t_x, T] = (r+x)(β+T) / ((α+T)(s−1)) · [1 − ((β+T)/(β+T+t))^(s−1)] · P(alive)
        (the bracket over s−1 taken as −expm1((s−1)·log q)/(s−1), which tends to −log q at s = 1)."""
        return np.asarray(self.expected_purchases_at([t], frequency, recency, T)[0])

    def expected_purchases_at(
        self, times: Any, frequency: Any, recency: Any, T: Any, alive: np.ndarray | None = None
    ) -> np.ndarray:
        """E[Y(t) | x, t_x, T] for each t of ``times``, shape (len(times), *x.shape); P(alive)
        (an integral per customer) is computed once."""
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        alive = self.p_alive(x, t_x, T) if alive is None else alive  # the caller's, if it has it
        rate = (self.r + x) * (self.beta + T) / (self.alpha + T)
        sm1 = self.s - 1
        out = np.zeros((len(times), *x.shape))
        for i, t in enumerate(np.asarray(times, dtype=float)):
            if t <= 0:
                continue
            log_q = np.log(self.beta + T) - np.log(self.beta + T + t)
            bracket = -np.expm1(sm1 * log_q) / sm1 if abs(sm1) > 1e-9 else -log_q
            out[i] = rate * bracket * alive
        return out
