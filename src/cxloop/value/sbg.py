"""The shifted-beta-geometric (sBG) model of contract renewals (Fader & Hardie 2007).

At the end of each period a customer renews or churns; the churn probability ``theta`` is the same
for one customer over time and varies across customers as Beta(alpha, beta). For a customer
acquired at period 0, with ``T`` the period at whose end they churn (T = 1, 2, …):

    P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta)
    S(t)     = P(T > t) = B(alpha, beta + t) / B(alpha, beta)
    r(t)     = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1)   (retention rate)

Reference: P. S. Fader and B. G. S. Hardie (2007), "How to project customer retention", Journal
of Interactive Marketing 21(1), 76-90.

The likelihood takes churned customers at their period of churn (P(T = t)) and customers still
subscribed after t periods as censored (S(t)); cohort survivor counts are the same data grouped.
It is maximised over (log alpha, log beta) with the analytic gradient (digamma); standard errors
come from the analytic Hessian (trigamma) in (alpha, beta).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from cxloop.value.kaplan_meier import SurvivalError

__all__ = [
    "SbgFit",
    "SbgFitError",
    "cohort_counts",
    "fit_sbg",
    "fit_sbg_cohort",
]

FloatArray = npt.NDArray[np.float64]

# Beyond these the Beta mixing distribution is degenerate (theta all 0 or all 1): the data do
# not identify the model, and the fit is reported as not converged.
_LOG_BOUND = 12.0
# Log-likelihoods closer than this (nats) are the same fit.
_SAME_FIT = 0.01


class SbgFitError(SurvivalError):
    """The sBG model cannot be fitted to these data (the message says why)."""


@dataclass(frozen=True)
class SbgFit:
    """Fitted sBG parameters, their standard errors (None when the Hessian is singular) and the
    data they came from.

    When the data show no spread of churn rates across customers, the likelihood keeps rising as
    alpha and beta grow together: its supremum is the *geometric* limit, one churn probability
    ``theta`` for everyone. The fit is then reported as that limit: ``alpha`` and ``beta`` are
    None, ``theta`` = churns / renewal opportunities and ``theta_se`` its binomial standard error.
    """

    alpha: float | None
    beta: float | None
    alpha_se: float | None
    beta_se: float | None
    theta: float
    theta_se: float | None
    log_likelihood: float
    customers: int
    churned: int
    periods: int  # the longest duration observed

    @property
    def geometric(self) -> bool:
        """True when the fit is the no-heterogeneity limit (a constant churn rate)."""
        return self.alpha is None or self.beta is None

    @property
    def mean_churn(self) -> float:
        """E[theta] = alpha / (alpha + beta), the churn probability of a new customer."""
        return self.theta

    def survival(self, periods: int | Sequence[int] | npt.ArrayLike) -> FloatArray:
        """S(t) for each t (t >= 0)."""
        t = np.asarray(periods, dtype=np.float64)
        if self.alpha is None or self.beta is None:
            return np.asarray((1 - self.theta) ** t, dtype=np.float64)
        log_s = special.betaln(self.alpha, self.beta + t) - special.betaln(self.alpha, self.beta)
        return np.asarray(np.exp(log_s), dtype=np.float64)

    def retention(self, periods: int | Sequence[int] | npt.ArrayLike) -> FloatArray:
        """r(t) = S(t) / S(t - 1), the share of period t - 1's survivors who renew at t (t >= 1)."""
        t = np.asarray(periods, dtype=np.float64)
        if self.alpha is None or self.beta is None:
            return np.full_like(t, 1 - self.theta)
        return np.asarray((self.beta + t - 1) / (self.alpha + self.beta + t - 1), dtype=np.float64)

    def residual_lifetime(self, survived: int, discount: float) -> float:
        """Discounted expected residual lifetime, in periods, of a customer who has renewed
        ``survived`` times (Fader & Hardie 2010, "Customer-base valuation in a contractual
        setting", eq. 6): (beta + n) / (alpha + beta + n) * 2F1(1, beta + n + 1;
        alpha + beta + n + 1; 1 / (1 + d)); in the geometric limit (1 - theta)(1 + d) / (d + theta).
        Needs a discount rate d > 0: undiscounted, the expected lifetime is infinite when
        alpha <= 1."""
        if not discount > 0:
            raise SbgFitError("the discount rate must be greater than 0")
        if self.alpha is None or self.beta is None:
            return (1 - self.theta) * (1 + discount) / (discount + self.theta)
        n = float(survived)
        a, b = self.alpha, self.beta
        value = (b + n) / (a + b + n) * special.hyp2f1(1.0, b + n + 1, a + b + n + 1, 1 / (1 + discount))
        return float(value)


def cohort_counts(survivors: Sequence[int]) -> tuple[list[int], list[bool], list[int]]:
    """Survivor counts n_0, n_1, …, n_k of one cohort as weighted observations: n_{t-1} - n_t
    churned at t, and n_k still subscribed (censored) at k."""
    n = [int(x) for x in survivors]
    if len(n) < 2:
        raise SbgFitError("a cohort needs its size and at least one period of survivors")
    if any(b > a for a, b in itertools.pairwise(n)) or n[-1] < 0:
        raise SbgFitError("survivor counts must not increase nor be negative")
    durations = [*range(1, len(n)), len(n) - 1]
    churned = [True] * (len(n) - 1) + [False]
    counts = [a - b for a, b in itertools.pairwise(n)] + [n[-1]]
    return durations, churned, counts


def fit_sbg_cohort(survivors: Sequence[int]) -> SbgFit:
    """Fit the sBG model to one cohort's survivor counts (its size first)."""
    return fit_sbg(*cohort_counts(survivors))


def fit_sbg(
    durations: Sequence[int] | npt.ArrayLike,
    churned: Sequence[bool] | npt.ArrayLike,
    counts: Sequence[int] | npt.ArrayLike | None = None,
) -> SbgFit:
    """Maximum likelihood sBG fit from individual, censored durations in whole periods.

    A churned observation with duration t contributes P(T = t) (t >= 1: a churn in the first
    period is at t = 1); a running one with duration t contributes S(t). ``counts`` weights each.
    Raises :class:`SbgFitError` when the data cannot identify the model (no churn, everyone lost
    in period 1) or the optimiser does not converge.
    """
    t = np.asarray(durations, dtype=np.float64).ravel()
    e = np.asarray(churned, dtype=bool).ravel()
    w = np.ones_like(t) if counts is None else np.asarray(counts, dtype=np.float64).ravel()
    if not (t.size == e.size == w.size):
        raise SbgFitError("durations, churn flags and counts must have the same length")
    keep = w > 0
    t, e, w = t[keep], e[keep], w[keep]
    if t.size == 0:
        raise SbgFitError("no subscriptions to fit the sBG model to")
    if (e & (t < 1)).any() or (t < 0).any():
        raise SbgFitError("a churn happens at period 1 or later; durations must not be negative")
    churns = float(w[e].sum())
    if churns == 0:
        raise SbgFitError(
            "no subscription has churned yet (all censored): the churn rate cannot be estimated"
        )
    if not (t[~e] >= 1).any() and not (t[e] > 1).any():
        raise SbgFitError(
            "every subscription churned in its first period and none was seen renewing: "
            "the churn probability is 1 for all, and the sBG model has nothing to fit"
        )
    result = optimize.minimize(
        _negative_log_likelihood,
        x0=np.zeros(2),
        args=(t, e, w),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * 2,
    )
    x = np.asarray(result.x, dtype=np.float64)
    sizes = (int(w.sum()), int(churns), int(t.max()))
    # No spread of churn rates: the likelihood rises towards the geometric limit along a flat
    # ridge (alpha, beta -> infinity), where the optimiser stops anywhere. Report the limit.
    geometric = _geometric(t, e, w, sizes)
    if geometric.log_likelihood >= -float(result.fun) - _SAME_FIT:
        return geometric
    ran_off = bool((np.abs(x) >= _LOG_BOUND - 1e-6).any())
    if not result.success or ran_off or not np.isfinite(result.fun):
        reason = "a parameter ran off to 0 or infinity" if ran_off else str(result.message)
        raise SbgFitError(
            f"the sBG fit did not converge ({reason}); with {sizes[0]} subscriptions and "
            f"{sizes[1]} churns the data do not pin down a Beta mix of churn rates"
        )
    alpha, beta = (float(v) for v in np.exp(x))
    ses = _standard_errors(alpha, beta, t, e, w)
    return SbgFit(
        alpha=alpha,
        beta=beta,
        alpha_se=ses[0],
        beta_se=ses[1],
        theta=alpha / (alpha + beta),
        theta_se=None,
        log_likelihood=-float(result.fun),
        customers=sizes[0],
        churned=sizes[1],
        periods=sizes[2],
    )


def _geometric(t: FloatArray, e: FloatArray, w: FloatArray, sizes: tuple[int, int, int]) -> SbgFit:
    # One churn probability for all: a churn at t had t renewal chances, a running one t.
    chances = float(w @ t)
    churns = float(w[e.astype(bool)].sum())
    theta = churns / chances
    ll = churns * math.log(theta) + (chances - churns) * math.log1p(-theta) if theta < 1 else 0.0
    se = math.sqrt(theta * (1 - theta) / chances)
    return SbgFit(None, None, None, None, theta, se if se > 0 else None, ll, *sizes)


def _negative_log_likelihood(
    x: FloatArray, t: FloatArray, e: FloatArray, w: FloatArray
) -> tuple[float, FloatArray]:
    alpha, beta = np.exp(x)
    # Churned at t: B(a + 1, b + t - 1); censored at t: B(a, b + t); both over B(a, b).
    a = np.where(e, alpha + 1, alpha)
    b = np.where(e, beta + t - 1, beta + t)
    total = float(w.sum())
    ll = float(w @ special.betaln(a, b)) - total * float(special.betaln(alpha, beta))
    psi_ab = special.digamma(a + b)
    psi_0 = float(special.digamma(alpha + beta))
    d_alpha = float(w @ (special.digamma(a) - psi_ab)) - total * (float(special.digamma(alpha)) - psi_0)
    d_beta = float(w @ (special.digamma(b) - psi_ab)) - total * (float(special.digamma(beta)) - psi_0)
    # Chain rule to log space: d/d(log alpha) = alpha d/d(alpha).
    grad = np.array([alpha * d_alpha, beta * d_beta], dtype=np.float64)
    return -ll, -grad


def _standard_errors(
    alpha: float, beta: float, t: FloatArray, e: FloatArray, w: FloatArray
) -> tuple[float | None, float | None]:
    a = np.where(e, alpha + 1, alpha)
    b = np.where(e, beta + t - 1, beta + t)
    total = float(w.sum())
    tri_ab = special.polygamma(1, a + b)
    tri_0 = float(special.polygamma(1, alpha + beta))
    tri_a, tri_b = float(special.polygamma(1, alpha)), float(special.polygamma(1, beta))
    h_aa = float(w @ (special.polygamma(1, a) - tri_ab)) - total * (tri_a - tri_0)
    h_bb = float(w @ (special.polygamma(1, b) - tri_ab)) - total * (tri_b - tri_0)
    h_ab = float(w @ -tri_ab) + total * tri_0
    info = -np.array([[h_aa, h_ab], [h_ab, h_bb]])
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return None, None
    out = []
    for v in np.diag(cov):
        out.append(math.sqrt(v) if np.isfinite(v) and v > 0 else None)
    return out[0], out[1]
