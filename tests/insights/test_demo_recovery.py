"""The CLV models recover the demo brand's known parameters (docs/demo-brand.md)."""

from datetime import date

import numpy as np
import pytest

from siyu.demo import build_demo
from siyu.demo.parameters import DEMO_PARAMETERS as P
from siyu.insights import services
from siyu.insights.clv import BetaGeo, GammaGamma, simulate_bgnbd, simulate_gamma_gamma

TODAY = date(2026, 11, 1)


def test_fits_recover_the_demo_parameters_from_100k_simulated_customers():
    """Tolerances are about three standard errors at this size (measured over seeds 0-4)."""
    rng = np.random.default_rng(11)
    ages = rng.uniform(0, P.window_weeks, 100_000)
    x, t_x, big_t = simulate_bgnbd(100_000, P.r, P.alpha, P.a, P.b, ages, rng)
    bg = BetaGeo().fit(x, t_x, big_t).params_
    for name, rel in {"r": 0.02, "alpha": 0.02, "a": 0.08, "b": 0.10}.items():
        assert bg[name] == pytest.approx(getattr(P, name), rel=rel), name
    spend = simulate_gamma_gamma(x, P.spend_p, P.spend_q, P.spend_gamma, rng)
    gg = GammaGamma().fit(x, spend).params_
    for name, rel in {"p": 0.10, "q": 0.03, "gamma": 0.10}.items():
        assert gg[name] == pytest.approx(getattr(P, f"spend_{name}"), rel=rel), name


@pytest.mark.django_db
def test_fitting_the_built_demo_brand_finds_its_purchase_rate_dropout_and_order_value(ws):
    """Through the database, the identified quantities come back: mean weekly purchase rate r/α,
    mean dropout a/(a+b) and mean order value pγ/(q−1). The member-day shift, refunds and
    same-day purchases that the brand adds on top bias each of them by a few percent only."""
    build_demo(workspace=ws, contacts=6000, seed=5, today=TODAY)
    fit = services.fit_workspace(workspace=ws, today=TODAY)
    assert fit.status == "done", fit.message
    t, s = fit.transaction_params, fit.spend_params
    assert t["r"] / t["alpha"] == pytest.approx(P.r / P.alpha, rel=0.12)
    assert t["a"] / (t["a"] + t["b"]) == pytest.approx(P.a / (P.a + P.b), rel=0.2)
    assert s["p"] * s["gamma"] / (s["q"] - 1) == pytest.approx(P.spend_p * P.spend_gamma / (P.spend_q - 1), rel=0.08)
    assert abs(fit.calibration["error_pct"]) < 10
