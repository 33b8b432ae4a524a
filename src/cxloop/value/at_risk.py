"""Customers at risk: high past value, low P(alive) — the ones the business cannot lose.

A customer is listed when, at the end of the data (the summary's calibration end):

* they bought on at least ``min_purchases`` days (default 2: one repeat purchase; without one the
  models have nothing to say about a slowdown);
* their past value, the net amount they spent (``total_spend``), is at least ``min_spend`` when
  given, else in the top ``top_share`` of all customers' (default 0.2: the top 20%, the value at
  the 80th percentile included);
* the purchase model puts P(alive) below ``max_p_alive`` (default 0.5).

Each row says why in words, e.g. "spent $1,240.00 in 9 purchases; last bought 212 days ago,
usually every 30; P(alive) 0.18", and the rows are sorted by past value, largest first, so that
alerts and exports read them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxloop.errors import ConfigError

COLUMNS = [
    "customer_id",
    "total_spend",
    "purchases",
    "last_purchase",
    "days_since_last",
    "usual_gap_days",
    "p_alive",
    "clv",
    "reason",
]


@dataclass(frozen=True)
class AtRiskOptions:
    """Thresholds of the at-risk list (defaults documented in docs/value.md)."""

    max_p_alive: float = 0.5
    top_share: float = 0.2
    min_spend: float | None = None
    min_purchases: int = 2
    currency: str = ""  # written before amounts in the reason, e.g. "$"

    def check(self) -> None:
        if not 0 < self.max_p_alive <= 1:
            raise ConfigError(f"max_p_alive must be in (0, 1], not {self.max_p_alive}")
        if not 0 < self.top_share <= 1:
            raise ConfigError(f"top_share must be in (0, 1], not {self.top_share}")
        if self.min_purchases < 1:
            raise ConfigError(f"min_purchases must be at least 1, not {self.min_purchases}")


def at_risk(
    values: pd.DataFrame, *, days_per_unit: float, options: AtRiskOptions | None = None
) -> pd.DataFrame:
    """The at-risk customers among ``values`` (:func:`cxloop.value.clv.customer_values`), with
    the columns of ``COLUMNS`` (and segment when present)."""
    options = options or AtRiskOptions()
    options.check()
    if values.empty:
        return pd.DataFrame(columns=COLUMNS)
    spend = values["total_spend"].to_numpy(float)
    threshold = (
        options.min_spend
        if options.min_spend is not None
        else float(np.quantile(spend, 1 - options.top_share, method="lower"))
    )
    purchases = values["frequency"].to_numpy(np.int64) + 1
    keep = (
        (purchases >= options.min_purchases)
        & (spend >= threshold)
        & (values["p_alive"].to_numpy(float) < options.max_p_alive)
    )
    chosen = values[keep]
    x = chosen["frequency"].to_numpy(float)
    recency = chosen["recency"].to_numpy(float) * days_per_unit
    idle = (chosen["T"].to_numpy(float) - chosen["recency"].to_numpy(float)) * days_per_unit
    out = pd.DataFrame(
        {
            "customer_id": chosen["customer_id"].to_numpy(),
            "total_spend": chosen["total_spend"].to_numpy(float),
            "purchases": purchases[keep],
            "last_purchase": chosen["last_purchase"].to_numpy(),
            "days_since_last": np.rint(idle).astype(np.int64),
            "usual_gap_days": recency / np.maximum(x, 1),  # x >= 1 here unless min_purchases is 1
            "p_alive": chosen["p_alive"].to_numpy(float),
            "clv": chosen["clv"].to_numpy(float),
        }
    )
    out["reason"] = [
        reason(spent, n, idle_days, gap if n > 1 else None, alive, options.currency)
        for spent, n, idle_days, gap, alive in zip(
            out["total_spend"],
            out["purchases"],
            out["days_since_last"],
            out["usual_gap_days"],
            out["p_alive"],
            strict=True,
        )
    ]
    gaps = out["usual_gap_days"].astype(object)
    out["usual_gap_days"] = gaps.where(out["purchases"] > 1, None)
    if "segment" in chosen:
        out.insert(1, "segment", chosen["segment"].to_numpy())
    ordered = out.sort_values(["total_spend", "customer_id"], ascending=[False, True], kind="stable")
    return ordered.reset_index(drop=True)


def reason(
    spent: float, purchases: int, idle_days: int, gap_days: float | None, p_alive: float, currency: str = ""
) -> str:
    """One line a person reads: what they spent, how they usually buy, how likely they still are,
    e.g. "spent $1,240.00 in 9 purchases; last bought 212 days ago, usually every 30; P(alive) 0.18"."""
    plural = "s" if purchases != 1 else ""
    text = f"spent {currency}{spent:,.2f} in {purchases} purchase{plural}; last bought {idle_days} days ago"
    if gap_days is not None:
        text += f", usually every {max(round(gap_days), 1)}"
    alive = f"{p_alive:.2f}" if p_alive >= 0.005 else "below 0.01"
    return f"{text}; P(alive) {alive}"
