"""Maximum likelihood for the value models: one optimiser, one result type, one error.

Every model states its log-likelihood and its analytic gradient in log-parameters (so every
parameter stays positive without bounds) summed over unique data rows with weights. This module
maximises it with SciPy's BFGS, checks the answer (finite, converged, gradient small) and
estimates standard errors from the Hessian, taken as central finite differences of the analytic
gradient. A fit that fails raises :class:`FitError` with the reason; it never returns NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy import optimize

from cxloop.errors import CxloopError

#: log-likelihood and its gradient in log-parameters, summed over the data.
Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


class FitError(CxloopError):
    """A model could not be fitted to the data: too few customers, no repeat purchases, or the
    maximum likelihood search did not converge. The message says which and what to do."""


@dataclass(frozen=True)
class Fit:
    """A fitted model: parameters by name, standard errors, log-likelihood and how it went."""

    model: str
    params: dict[str, float]
    se: dict[str, float | None]
    log_likelihood: float
    customers: int
    iterations: int
    converged: bool

    def rows(self) -> list[dict[str, Any]]:
        """One row per parameter: model, parameter, value, se, log_likelihood, customers, ..."""
        return [
            {
                "model": self.model,
                "parameter": name,
                "value": value,
                "se": self.se[name],
                "log_likelihood": self.log_likelihood,
                "customers": self.customers,
                "iterations": self.iterations,
                "converged": self.converged,
            }
            for name, value in self.params.items()
        ]


def maximise(
    model: str,
    names: Sequence[str],
    objective: Objective,
    *,
    customers: int,
    start: np.ndarray | None = None,
    max_iterations: int = 2000,
) -> Fit:
    """Maximise ``objective`` over log-parameters; raise :class:`FitError` when it fails.

    The search minimises minus the mean log-likelihood (scaled by the number of customers, so
    tolerances mean the same for 100 customers and for a million).

    The likelihoods sum with NumPy's own ``(a * b).sum()``, never ``a @ b`` over the rows: a
    matrix-vector product that long wakes OpenBLAS's thread pool, whose spinning threads then
    slow every later step on a busy machine (measured here: a 100k fit 0.8 s with ``@``, 0.13 s
    with one BLAS thread). For the same reason the search is SciPy's BFGS, in NumPy, rather than
    L-BFGS-B, whose compiled core took 6 ms a step on 3 parameters with OpenBLAS's threads
    awake (BFGS: 0.05 s for a whole Gamma-Gamma fit on 34,000 customers, L-BFGS-B 0.37 s).
    """
    scale = float(max(customers, 1))

    def negative(theta: np.ndarray) -> tuple[float, np.ndarray]:
        if not np.all(np.abs(theta) < 30):  # parameters beyond e^±30: a degenerate direction
            return np.inf, np.zeros_like(theta)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # checked just below
            value, gradient = objective(theta)
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            return np.inf, np.zeros_like(theta)
        return -value / scale, -gradient / scale

    theta0 = np.zeros(len(names)) if start is None else np.asarray(start, dtype=float)
    result = optimize.minimize(
        negative,
        theta0,
        jac=True,
        method="BFGS",
        options={"maxiter": max_iterations, "gtol": 1e-8},
    )
    theta = np.asarray(result.x, dtype=float)
    value, gradient = objective(theta)
    gradient_ok = bool(np.all(np.isfinite(gradient))) and float(np.max(np.abs(gradient))) / scale < 1e-4
    if not np.isfinite(value) or not np.all(np.isfinite(theta)):
        raise FitError(f"{model}: the likelihood is not finite at the optimum; the data cannot be fitted")
    if np.any(np.abs(theta) > 20) or not gradient_ok:
        raise FitError(
            f"{model}: maximum likelihood did not converge on {customers:,} customers "
            f"({result.message}); parameters drifted to "
            + ", ".join(f"{n}={v:.3g}" for n, v in zip(names, np.exp(theta), strict=True))
            + ". This happens with few customers or few repeat purchases: use more data "
            "(a longer calibration period, more customers)"
        )
    params = np.exp(theta)
    se = standard_errors(objective, theta, params, gradient)
    # A flat direction shows as information that is not positive definite or, with rounding,
    # as an enormous SE: the data do not pin a parameter down within a factor of e^10.
    if any(v is None or v / p > 10 for v, p in zip(se, params, strict=True)):
        raise FitError(
            f"{model}: maximum likelihood did not converge on {customers:,} customers: the data do "
            "not determine the parameters (the likelihood is flat at "
            + ", ".join(f"{n}={v:.3g}" for n, v in zip(names, params, strict=True))
            + "). This happens with few customers or few repeat purchases: use more data "
            "(a longer calibration period, more customers)"
        )
    return Fit(
        model=model,
        params={n: float(v) for n, v in zip(names, params, strict=True)},
        se=dict(zip(names, se, strict=True)),
        log_likelihood=float(value),
        customers=customers,
        iterations=int(result.nit),
        converged=True,
    )


def standard_errors(
    objective: Objective, theta: np.ndarray, params: np.ndarray, gradient: np.ndarray
) -> list[float | None]:
    """SEs of the parameters: the inverse of the observed information (minus the Hessian of the
    log-likelihood in log-parameters, by forward differences of the analytic gradient from its
    value at the optimum, symmetrised), carried to the parameters by the delta method,
    se(p) = p · se(log p). None where the information is not positive definite (a parameter
    the data do not pin down). Forward differences with a step of 1e-6 agree with central ones
    to about 1e-5 relative here, at half the evaluations."""
    k = len(theta)
    hessian = np.empty((k, k))
    for i in range(k):
        step = 1e-6 * max(1.0, abs(theta[i]))
        up = theta.copy()
        up[i] += step
        hessian[:, i] = (objective(up)[1] - gradient) / step
    information = -(hessian + hessian.T) / 2
    try:
        np.linalg.cholesky(information)
        covariance = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        return [None] * k
    variances = np.diag(covariance)
    return [
        float(p * np.sqrt(v)) if np.isfinite(v) and v >= 0 else None
        for p, v in zip(params, variances, strict=True)
    ]


@dataclass(frozen=True)
class Values:
    """One column of the rows as its distinct values and a code per row: terms that depend on
    one column only (Γ and B of x, log(α + T), ...) are computed once per distinct value."""

    distinct: np.ndarray
    code: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> Values:
        code, distinct = pd.factorize(values, sort=True)
        return cls(np.asarray(distinct, dtype=float), code.astype(np.int64))

    def __call__(self, per_value: np.ndarray) -> np.ndarray:
        """A per-distinct-value array spread to the rows."""
        return np.asarray(per_value[self.code])


@dataclass(frozen=True)
class Pairs:
    """Two columns of the rows as their distinct pairs (``u``, ``v``) and a code per row: a
    likelihood term of (x, T) or of (x, t_x) alone is computed per pair, and sums over rows
    weighted by such terms become ``np.bincount`` per pair."""

    u: np.ndarray
    v: np.ndarray
    code: np.ndarray
    u_code: np.ndarray  # each pair's u among ``u_values`` (terms of u alone: per distinct u)

    @classmethod
    def of(cls, u: np.ndarray, v: np.ndarray, u_values: np.ndarray) -> Pairs:
        code, du, dv = distinct_pairs(u, v)
        return cls(du, dv, code.astype(np.int64), np.searchsorted(u_values, du).astype(np.int64))

    def total(self, weights: np.ndarray) -> np.ndarray:
        """Σ of ``weights`` over the rows of each pair."""
        return np.bincount(self.code, weights=weights, minlength=len(self.u))

    def by_u(self, per_pair: np.ndarray, size: int) -> np.ndarray:
        """Σ of a per-pair array over the pairs of each distinct u."""
        return np.bincount(self.u_code, weights=per_pair, minlength=size)


@dataclass(frozen=True)
class Rows:
    """Customers' (x, t_x, T) compressed to unique rows: the likelihood is evaluated once per
    row and weighted by ``count`` (``inverse`` maps each customer back to its row). Customers
    share rows often — same frequency, same recency and age in whole days — so at a million
    customers this is what makes a fit take a second."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    count: np.ndarray
    inverse: np.ndarray
    xs: Values
    ts: Values
    Ts: Values
    x_T: Pairs
    x_t: Pairs

    @classmethod
    def of(cls, x: Any, t_x: Any, T: Any) -> Rows:
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        check_rfm(x, t_x, T)
        # One integer key per (x, t_x, T) from each column's codes, then hash-factorised: much
        # faster than sorting float triples (np.unique(axis=0)).
        cx, _ = pd.factorize(x)
        ct, ut = pd.factorize(t_x)
        cT, uT = pd.factorize(T)
        key = (cx.astype(np.int64) * len(ut) + ct) * len(uT) + cT
        inverse, unique_keys = pd.factorize(key)
        count = np.bincount(inverse, minlength=len(unique_keys)).astype(float)
        first = np.empty(len(unique_keys), dtype=np.int64)
        first[inverse[::-1]] = np.arange(len(x) - 1, -1, -1)
        ux_, ut_, uT_ = x[first], t_x[first], T[first]
        return cls(
            ux_,
            ut_,
            uT_,
            count,
            inverse.astype(np.int64),
            Values.of(ux_),
            Values.of(ut_),
            Values.of(uT_),
            Pairs.of(ux_, uT_, np.sort(np.unique(ux_))),
            Pairs.of(ux_, ut_, np.sort(np.unique(ux_))),
        )

    @property
    def customers(self) -> int:
        return int(self.count.sum())


def distinct_pairs(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (u, v) pairs as two arrays, and each element's pair index."""
    cu, du = pd.factorize(u)
    cv, dv = pd.factorize(v)
    code, keys = pd.factorize(cu.astype(np.int64) * len(dv) + cv)
    return code, np.asarray(du, dtype=float)[keys // len(dv)], np.asarray(dv, dtype=float)[keys % len(dv)]


def check_rfm(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    """Refuse data no model can take, saying what is wrong (rather than fitting NaN)."""
    if not (len(x) == len(t_x) == len(T)):
        raise FitError("frequency, recency and T must have one value per customer")
    if len(x) == 0:
        raise FitError("no customers to fit: no purchases before the calibration end")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t_x)) and np.all(np.isfinite(T))):
        raise FitError("frequency, recency and T must be finite numbers")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T + 1e-9):
        raise FitError("need 0 <= recency <= T and frequency >= 0 for every customer")
    if np.any((x == 0) & (t_x > 0)):
        raise FitError("a customer with no repeat purchase must have recency 0")


class RepeatBuying:
    """What the purchase models (BG/NBD, Pareto/NBD) share: fitting by maximum likelihood on
    (x, t_x, T) rows, and the log-likelihood of given customers. A model names its parameters
    (``NAMES``, also its dataclass fields) and gives its log-likelihood with its gradient in the
    log of the parameters (``objective``)."""

    KEY: ClassVar[str]
    LABEL: ClassVar[str]
    NAMES: ClassVar[tuple[str, ...]]

    @staticmethod
    def objective(theta: np.ndarray, rows: Rows) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    @classmethod
    def fitted(cls, frequency: Any, recency: Any, T: Any) -> Self:
        """Maximum likelihood on customers' repeat purchases x, recency t_x and age T."""
        return cls.from_rows(Rows.of(frequency, recency, T))

    @classmethod
    def from_rows(cls, rows: Rows) -> Self:
        """Maximum likelihood on customers already compressed to rows."""
        if not np.any(rows.x > 0):
            raise FitError(f"{cls.LABEL}: no customer made a repeat purchase; the model cannot be fitted")
        fit = maximise(cls.KEY, cls.NAMES, lambda th: cls.objective(th, rows), customers=rows.customers)
        model: Self = cls(**fit.params, fit=fit)  # type: ignore[call-arg]
        return model

    def log_likelihood(self, frequency: Any, recency: Any, T: Any) -> float:
        theta = np.log([getattr(self, name) for name in self.NAMES])
        return self.objective(theta, Rows.of(frequency, recency, T))[0]
