"""Customers drawn from the models themselves (seeded): for tests and the speed benchmark.

:func:`bgnbd_customers` draws each customer's purchase rate λ ~ Gamma(r, α) and drop-out
probability p ~ Beta(a, b), an age T in whole days, then their purchases as a Poisson process
that stops, after each purchase, with probability p; purchase times are rounded down to whole
days, as the store's summary counts them. Spend follows Gamma-Gamma: ν ~ Gamma(q, γ) per
customer, each repeat purchase ~ Gamma(p, ν), so x purchases have mean Gamma(px, ν) / x.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def bgnbd_customers(
    n: int,
    *,
    r: float = 0.243,
    alpha: float = 4.414,
    a: float = 0.793,
    b: float = 2.426,
    p: float = 6.25,
    q: float = 3.74,
    gamma: float = 15.44,
    max_age_days: int = 364,
    seed: int = 0,
) -> pd.DataFrame:
    """``n`` customers: frequency, recency and T in weeks (whole days / 7), monetary_value
    (mean repeat spend, rounded to cents; 0 without repeat purchases)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n) / 7  # per day; α is in weeks
    drop = rng.beta(a, b, n)
    age = rng.integers(1, max_age_days + 1, n)
    x = np.zeros(n, dtype=np.int64)
    last = np.zeros(n)
    now = np.zeros(n)
    active = np.flatnonzero(lam > 0)
    while active.size:
        now[active] += rng.exponential(1.0, active.size) / lam[active]
        bought = now[active] <= age[active]
        active = active[bought]
        x[active] += 1
        last[active] = now[active]
        active = active[rng.random(active.size) >= drop[active]]  # dies after this purchase
    recency_days = np.minimum(np.floor(last), age)
    nu = rng.gamma(q, 1 / gamma, n)
    total = rng.gamma(np.maximum(p * x, 1e-12), 1 / nu)
    monetary = np.where(x > 0, np.round(total / np.maximum(x, 1), 2), 0.0)
    return pd.DataFrame(
        {
            "frequency": x,
            "recency": recency_days / 7,
            "T": age / 7,
            "monetary_value": np.maximum(monetary, 0.01) * (x > 0),
        }
    )
