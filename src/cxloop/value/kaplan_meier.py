"""Kaplan-Meier survival curves with Greenwood confidence intervals.

The estimator works on *weighted* observations ``(duration, churned, count)``, so the database
can hand over one row per distinct duration instead of one per subscription (see
:mod:`cxloop.value.survival`). At every distinct duration ``t`` with ``d`` churns among ``n`` at
risk (subscriptions whose duration is at least ``t``; a subscription censored at ``t`` is at risk at
``t``, the usual convention for ties between churn and censoring):

    S(t) = prod_{t_i <= t} (1 - d_i / n_i)                         (Kaplan & Meier 1958)
    Var[log S(t)] = sum_{t_i <= t} d_i / (n_i (n_i - d_i))          (Greenwood 1926)

The interval is the log(-log) ("exponential Greenwood") one, which stays inside [0, 1]
(Kalbfleisch & Prentice 2002, §1.4): S(t) ** exp(±z sqrt(V) / log S(t)). Where it is undefined it
is given a documented value, never NaN: [1, 1] before the first churn (nothing observed yet), and
[0, 0] once the curve has reached 0 (every subscription at risk churned).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy import stats

from cxloop.errors import CxloopError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["KaplanMeier", "SurvivalError", "kaplan_meier", "kaplan_meier_frame"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class SurvivalError(CxloopError):
    """Survival data that cannot give the answer asked for (no subscriptions, a model that
    cannot be fitted); the message says why."""


@dataclass(frozen=True)
class KaplanMeier:
    """A Kaplan-Meier curve on the grid 0, 1, …, horizon (whole periods).

    ``survival[t]`` is the share still subscribed after ``t`` periods; ``at_risk[t]`` the number
    whose duration is at least ``t``; ``churned[t]`` and ``censored[t]`` the number that churned,
    or were last seen running, at ``t``.
    """

    periods: IntArray
    at_risk: IntArray
    churned: IntArray
    censored: IntArray
    survival: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    subscriptions: int
    confidence: float

    @property
    def total_churned(self) -> int:
        return int(self.churned.sum())

    @property
    def median(self) -> int | None:
        """The first period at which survival is 0.5 or less; None while it has not been reached."""
        return _first_at_or_below(self.periods, self.survival, 0.5)

    @property
    def median_ci(self) -> tuple[int | None, int | None]:
        """Brookmeyer-Crowley style bounds read off the interval curves (None: not reached)."""
        return (
            _first_at_or_below(self.periods, self.ci_low, 0.5),
            _first_at_or_below(self.periods, self.ci_high, 0.5),
        )


def _first_at_or_below(periods: IntArray, curve: FloatArray, level: float) -> int | None:
    hit = np.flatnonzero(curve <= level)
    return int(periods[hit[0]]) if hit.size else None


def kaplan_meier(
    durations: Sequence[int] | npt.ArrayLike,
    churned: Sequence[bool] | npt.ArrayLike,
    counts: Sequence[int] | npt.ArrayLike | None = None,
    *,
    horizon: int | None = None,
    confidence: float = 0.95,
) -> KaplanMeier:
    """Kaplan-Meier estimate from durations in whole periods (>= 0) and churn flags.

    ``counts`` weights each observation (default 1); ``horizon`` is the last period of the grid
    (default: the longest duration). Raises :class:`SurvivalError` without observations.
    """
    d = np.asarray(durations, dtype=np.int64).ravel()
    e = np.asarray(churned, dtype=bool).ravel()
    w = np.ones_like(d) if counts is None else np.asarray(counts, dtype=np.int64).ravel()
    if not (d.size == e.size == w.size):
        raise SurvivalError("durations, churn flags and counts must have the same length")
    if d.size == 0 or w.sum() == 0:
        raise SurvivalError("no subscriptions to estimate survival from")
    if (d < 0).any() or (w < 0).any():
        raise SurvivalError("durations and counts must not be negative")
    last = int(d.max()) if horizon is None else int(horizon)
    if last < 0:
        raise SurvivalError("the horizon must not be negative")
    size = max(last, int(d.max())) + 1
    churn = np.bincount(d[e], weights=w[e], minlength=size).astype(np.int64)
    cens = np.bincount(d[~e], weights=w[~e], minlength=size).astype(np.int64)
    # At risk at t: everyone whose duration is t or more (reverse cumulative sum).
    at_risk = np.cumsum((churn + cens)[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(at_risk > 0, churn / np.maximum(at_risk, 1), 0.0)
        survival = np.cumprod(1.0 - hazard).astype(np.float64)
        alive = at_risk - churn
        terms = np.where((churn > 0) & (alive > 0), churn / (at_risk * np.maximum(alive, 1.0)), 0.0)
    greenwood = np.cumsum(terms)
    low, high = _loglog_interval(survival, greenwood, confidence)
    keep = slice(0, last + 1)
    return KaplanMeier(
        periods=np.arange(last + 1, dtype=np.int64),
        at_risk=at_risk[keep],
        churned=churn[keep],
        censored=cens[keep],
        survival=survival[keep],
        ci_low=low[keep],
        ci_high=high[keep],
        subscriptions=int(w.sum()),
        confidence=confidence,
    )


def _loglog_interval(
    survival: FloatArray, greenwood: FloatArray, confidence: float
) -> tuple[FloatArray, FloatArray]:
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    low = survival.copy()
    high = survival.copy()
    inside = (survival > 0) & (survival < 1)
    log_s = np.log(survival[inside])
    half = z * np.sqrt(greenwood[inside]) / np.abs(log_s)
    # S < 1, so the larger exponent gives the lower bound.
    low[inside] = survival[inside] ** np.exp(half)
    high[inside] = survival[inside] ** np.exp(-half)
    return low, high


def kaplan_meier_frame(
    frame: pd.DataFrame,
    duration: str = "duration",
    event: str = "churned",
    group: str | None = None,
    *,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Kaplan-Meier curves for a pandas frame with one row per subscription (for notebooks).

    ``duration`` holds whole periods (>= 0), ``event`` is true when the subscription ended (false:
    censored, still running), ``group`` optionally names a column to estimate one curve per value
    of. Returns one row per group and period: ``group, period, at_risk, churned, censored,
    survival, ci_low, ci_high``.
    """
    import pandas as pd

    missing = [c for c in (duration, event, group) if c is not None and c not in frame.columns]
    if missing:
        raise SurvivalError(f"the frame has no column {', '.join(map(repr, missing))}")
    if frame[[duration, event]].isna().to_numpy().any():
        raise SurvivalError(f"{duration!r} and {event!r} must not be empty")
    keys = frame[group].astype("string").fillna("(none)") if group else pd.Series("all", index=frame.index)
    parts = []
    for key, part in frame.groupby(keys, sort=True):
        curve = kaplan_meier(part[duration].to_numpy(), part[event].to_numpy(), confidence=confidence)
        parts.append(curve_frame(curve).assign(group=str(key)))
    if not parts:
        raise SurvivalError("no subscriptions to estimate survival from")
    out = pd.concat(parts, ignore_index=True)
    return out[["group", *[c for c in out.columns if c != "group"]]]


def curve_frame(curve: KaplanMeier) -> pd.DataFrame:
    """One row per period of a curve."""
    import pandas as pd

    return pd.DataFrame(
        {
            "period": curve.periods,
            "at_risk": curve.at_risk,
            "churned": curve.churned,
            "censored": curve.censored,
            "survival": curve.survival,
            "ci_low": curve.ci_low,
            "ci_high": curve.ci_high,
        }
    )
