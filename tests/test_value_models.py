"""The value models (docs/value.md): likelihoods equal the published closed forms, gradients are
the likelihoods' derivatives, fits recover the parameters customers were drawn from, predictions
follow their formulas, and bad data gives a clear error or a documented result, never NaN."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import beta as beta_fn
from scipy.special import gamma as gamma_fn
from scipy.special import hyp2f1

from cxloop.errors import CxloopError
from cxloop.value import bgnbd, gammagamma, paretonbd
from cxloop.value.bgnbd import BetaGeo
from cxloop.value.fitting import FitError, Rows
from cxloop.value.gammagamma import GammaGamma, SpendData
from cxloop.value.paretonbd import ParetoNBD
from cxloop.value.simulate import bgnbd_customers

# A few customers (x, t_x, T), including x = 0, t_x = T and a heavy buyer.
X = np.array([0, 1, 2, 5, 20, 3])
TX = np.array([0.0, 5.0, 30.4, 38.0, 38.5, 38.86])
T = np.array([38.86, 38.0, 38.86, 38.86, 38.86, 38.86])


def bgnbd_closed_form(r: float, alpha: float, a: float, b: float, x: int, t_x: float, T: float) -> float:
    """FHL 2005, equation 6, as printed (no logs): fine for small x."""
    head = gamma_fn(r + x) * alpha**r / gamma_fn(r)
    first = beta_fn(a, b + x) / beta_fn(a, b) * head / (alpha + T) ** (r + x)
    second = beta_fn(a + 1, b + x - 1) / beta_fn(a, b) * head / (alpha + t_x) ** (r + x) if x > 0 else 0.0
    return math.log(first + second)


def pareto_closed_form(r: float, alpha: float, s: float, beta: float, x: int, t_x: float, T: float) -> float:
    """FHL 2005 note, equation 22, with the Gauss hypergeometric function (α < β branch)."""
    assert alpha < beta
    k = r + s + x
    a0 = (
        hyp2f1(k, r + x, k + 1, (beta - alpha) / (beta + t_x)) / (beta + t_x) ** k
        - hyp2f1(k, r + x, k + 1, (beta - alpha) / (beta + T)) / (beta + T) ** k
    )
    head = gamma_fn(r + x) * alpha**r * beta**s / gamma_fn(r)
    return math.log(head * (1 / ((alpha + T) ** (r + x) * (beta + T) ** s) + s / k * a0))


def test_bgnbd_log_likelihood_is_the_published_formula() -> None:
    params = (0.243, 4.414, 0.793, 2.426)
    model = BetaGeo(*params)
    for x, t_x, age in zip(X, TX, T, strict=True):
        assert model.log_likelihood([x], [t_x], [age]) == pytest.approx(
            bgnbd_closed_form(*params, int(x), float(t_x), float(age)), rel=1e-10
        )


def test_pareto_nbd_log_likelihood_is_the_published_formula() -> None:
    params = (0.553, 10.58, 0.606, 11.67)
    model = ParetoNBD(*params)
    for x, t_x, age in zip(X, TX, T, strict=True):
        assert model.log_likelihood([x], [t_x], [age]) == pytest.approx(
            pareto_closed_form(*params, int(x), float(t_x), float(age)), rel=1e-10
        )


@pytest.mark.parametrize(
    ("module", "theta"),
    [(bgnbd, [0.3, 5.0, 0.7, 2.0]), (paretonbd, [0.5, 9.0, 0.7, 12.0])],
    ids=["bgnbd", "paretonbd"],
)
def test_purchase_model_gradients_are_the_derivatives(module: object, theta: list[float]) -> None:
    rows = Rows.of(X, TX, T)
    log_likelihood = module.log_likelihood  # type: ignore[attr-defined]
    point = np.log(theta)
    _, gradient = log_likelihood(point, rows)
    numeric = [
        (log_likelihood(point + 1e-6 * e, rows)[0] - log_likelihood(point - 1e-6 * e, rows)[0]) / 2e-6
        for e in np.eye(4)
    ]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-7)


def test_gamma_gamma_gradient_is_the_derivative() -> None:
    data = SpendData.of([1, 2, 5, 3, 1], [10.0, 25.5, 12.0, 40.0, 7.5])
    point = np.log([5.0, 3.0, 14.0])
    _, gradient = gammagamma.log_likelihood(point, data)
    numeric = [
        (
            gammagamma.log_likelihood(point + 1e-6 * e, data)[0]
            - gammagamma.log_likelihood(point - 1e-6 * e, data)[0]
        )
        / 2e-6
        for e in np.eye(3)
    ]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6)


def test_compressed_rows_weigh_each_customer_once() -> None:
    rows = Rows.of([0, 0, 1, 1, 0], [0, 0, 2, 2, 0], [5, 5, 6, 6, 7])
    assert rows.customers == 5
    assert sorted(zip(rows.x, rows.t_x, rows.T, rows.count, strict=True)) == [
        (0, 0, 5, 2),
        (0, 0, 7, 1),
        (1, 2, 6, 2),
    ]
    assert list(rows.x[rows.inverse]) == [0, 0, 1, 1, 0]


@pytest.fixture(scope="module")
def drawn() -> pd.DataFrame:
    return bgnbd_customers(20_000, seed=7)


def test_fits_recover_the_parameters_customers_were_drawn_from(drawn: pd.DataFrame) -> None:
    model = BetaGeo.fitted(drawn["frequency"], drawn["recency"], drawn["T"])
    spend = GammaGamma.fitted(drawn["frequency"], drawn["monetary_value"])

    assert model.fit is not None and spend.fit is not None
    for name, true in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        se = model.fit.se[name]
        assert se is not None and abs(model.fit.params[name] - true) < 4 * se, name
    for name, true in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        se = spend.fit.se[name]
        assert se is not None and abs(spend.fit.params[name] - true) < 4 * se, name


def test_bgnbd_predictions_follow_their_formulas() -> None:
    model = BetaGeo(0.243, 4.414, 0.793, 2.426)
    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426
    # P(alive): 1 with no repeat purchase; otherwise 1 / (1 + a/(b+x-1) ((α+T)/(α+t_x))^(r+x)).
    alive = model.p_alive([0, 2], [0, 30.43], [38.86, 38.86])
    assert alive[0] == 1.0
    assert alive[1] == pytest.approx(1 / (1 + a / (b + 1) * ((alpha + 38.86) / (alpha + 30.43)) ** (r + 2)))
    # E[Y(t)]: the printed formula (FHL 2005, eq. 10) without the Euler transformation.
    x, t_x, age, t = 2, 30.43, 38.86, 39.0
    printed = (
        (a + b + x - 1)
        / (a - 1)
        * (
            1
            - ((alpha + age) / (alpha + age + t)) ** (r + x)
            * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + age + t))
        )
        * alive[1]
    )
    assert model.expected_purchases(t, [x], [t_x], [age])[0] == pytest.approx(printed, rel=1e-10)
    # A new customer's E[X(t)] (eq. 7) is the conditional expectation at x = t_x = T = 0.
    assert model.expected_purchases_new(10.0) == pytest.approx(
        model.expected_purchases(10.0, [0], [0], [0])[0]
    )
    # No NaN for a very heavy buyer, where the printed form overflows.
    assert np.isfinite(model.expected_purchases(52.0, [300], [38.0], [38.86])).all()


def test_gamma_gamma_expected_spend_shrinks_to_the_population_mean() -> None:
    spend = GammaGamma(6.25, 3.74, 15.44)
    mean = 6.25 * 15.44 / 2.74
    assert spend.population_mean == pytest.approx(mean)
    got = spend.expected_spend([0, 1, 10], [0.0, 100.0, 100.0])
    assert got[0] == pytest.approx(mean)
    assert got[1] == pytest.approx(6.25 * (15.44 + 100) / (6.25 + 2.74))
    assert mean < got[1] < got[2] < 100


# -------------------------------------------------------------------------- bad input


def test_customers_with_one_purchase_only_cannot_be_fitted() -> None:
    with pytest.raises(FitError, match="no customer made a repeat purchase"):
        BetaGeo.fitted([0, 0, 0], [0, 0, 0], [10, 20, 30])
    with pytest.raises(FitError, match="no customer made a repeat purchase"):
        ParetoNBD.fitted([0, 0, 0], [0, 0, 0], [10, 20, 30])


def test_no_customers_is_a_clear_error() -> None:
    with pytest.raises(FitError, match="no customers to fit"):
        BetaGeo.fitted([], [], [])


def test_impossible_histories_are_refused() -> None:
    with pytest.raises(FitError, match="recency <= T"):
        BetaGeo.fitted([1], [5.0], [3.0])
    with pytest.raises(FitError, match="must be finite"):
        BetaGeo.fitted([1], [float("nan")], [3.0])


def test_a_tiny_sample_that_does_not_converge_says_so() -> None:
    # Two customers: the likelihood keeps rising as the parameters run off to infinity.
    with pytest.raises(FitError, match="did not converge") as raised:
        BetaGeo.fitted([1, 0], [1.0, 0.0], [5.0, 5.0])
    assert isinstance(raised.value, CxloopError)
    assert "more data" in str(raised.value)


def test_zero_and_negative_spend_are_left_out_of_the_spend_fit(drawn: pd.DataFrame) -> None:
    base = GammaGamma.fitted(drawn["frequency"], drawn["monetary_value"])
    x = np.concatenate([drawn["frequency"], [2, 3, 0]])
    m = np.concatenate([drawn["monetary_value"], [0.0, -25.0, 0.0]])  # free, returned, one-timer
    with_bad = GammaGamma.fitted(x, m)
    assert with_bad.p == base.p and with_bad.q == base.q and with_bad.gamma == base.gamma
    # Their expected spend counts the mean as 0: shrunk from 0 toward the population mean.
    spend = with_bad.expected_spend([2, 3], [0.0, -25.0])
    assert np.all(np.isfinite(spend)) and np.all(spend > 0) and np.all(spend < with_bad.population_mean)


def test_too_few_repeat_customers_for_the_spend_model() -> None:
    with pytest.raises(FitError, match="at least 10 are needed"):
        GammaGamma.fitted([1, 2, 0], [10.0, 20.0, 0.0])
