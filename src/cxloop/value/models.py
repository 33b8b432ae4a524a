"""Fit the value models on a summary, together: a purchase model and the spend model.

The purchase model is BG/NBD (the default: fast, robust, the one the CDNOW literature validates
first) or Pareto/NBD (dropping out at any time rather than just after a purchase; slower to
fit, and the better choice when customers often leave without a last purchase to mark it).
Gamma-Gamma models spend per purchase for either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from cxloop.errors import ConfigError
from cxloop.value.bgnbd import BetaGeo
from cxloop.value.fitting import Fit, Rows
from cxloop.value.gammagamma import GammaGamma
from cxloop.value.paretonbd import ParetoNBD
from cxloop.value.summary import Summary

PurchaseModel = BetaGeo | ParetoNBD
ModelName = Literal["bgnbd", "paretonbd"]
MODELS = ("bgnbd", "paretonbd")


@dataclass(frozen=True)
class ValueModels:
    """A purchase model and a spend model fitted on one summary (time in its unit)."""

    purchases: PurchaseModel
    spend: GammaGamma
    unit: str

    @property
    def fits(self) -> list[Fit]:
        return [f for f in (self.purchases.fit, self.spend.fit) if f is not None]

    def rows(self) -> list[dict[str, Any]]:
        """One row per model and parameter (``cxloop value fit --json``)."""
        return [{**row, "unit": self.unit} for fit in self.fits for row in fit.rows()]


def purchase_model(name: str, rows: Rows) -> PurchaseModel:
    if name == "bgnbd":
        return BetaGeo.from_rows(rows)
    if name == "paretonbd":
        return ParetoNBD.from_rows(rows)
    raise ConfigError(f"unknown purchase model {name!r}: use {' or '.join(MODELS)}")


def fit_models(summary: Summary, model: str = "bgnbd") -> ValueModels:
    """Fit ``model`` (bgnbd or paretonbd) on x, t_x, T and Gamma-Gamma on x and mean repeat spend;
    raises :class:`cxloop.value.fitting.FitError` when either cannot be fitted."""
    frame = summary.frame
    purchases = purchase_model(model, summary.rows)
    spend = GammaGamma.fitted(frame["frequency"], frame["monetary_value"])
    return ValueModels(purchases, spend, summary.unit)


def per_row(model: PurchaseModel, summary: Summary, t: float) -> tuple[np.ndarray, np.ndarray]:
    """P(alive) and E[purchases in the next t] per customer, computed once per unique
    (x, t_x, T) row."""
    rows = summary.rows
    alive = model.p_alive(rows.x, rows.t_x, rows.T)
    expected = model.expected_purchases(t, rows.x, rows.t_x, rows.T)
    return alive[rows.inverse], expected[rows.inverse]
