"""The repeat-buying process behind the demo agrees with the closed forms of BG/NBD and
Gamma-Gamma, so a CLV model fitted on the demo has a known answer."""

import numpy as np

from siyu.demo import DEMO_PARAMETERS
from siyu.demo.model import (
    draw_order_values,
    expected_order_value,
    expected_repeat_purchases,
    simulate_repeat_purchases,
)


def _simulate(n=40_000, seed=1):
    rng = np.random.default_rng(seed)
    horizon = rng.random(n) * DEMO_PARAMETERS.window_weeks
    return rng, horizon, simulate_repeat_purchases(rng, horizon, DEMO_PARAMETERS)


def test_mean_repeat_purchases_match_the_bgnbd_expectation():
    _, horizon, repeats = _simulate()

    simulated = repeats.frequency().mean()
    expected = expected_repeat_purchases(horizon, DEMO_PARAMETERS).mean()

    assert abs(simulated - expected) / expected < 0.03


def test_repeat_purchases_fall_inside_each_customers_window_in_order():
    _, horizon, repeats = _simulate(n=5_000)

    assert (repeats.t > 0).all()
    assert (repeats.t <= horizon[repeats.owner]).all()
    same_owner = repeats.owner[1:] == repeats.owner[:-1]
    assert (np.diff(repeats.t)[same_owner] >= 0).all()


def test_order_values_average_the_gamma_gamma_mean():
    rng, _, repeats = _simulate()

    _, values = draw_order_values(rng, len(repeats.lam), repeats.owner, DEMO_PARAMETERS)

    assert (
        abs(values.mean() - expected_order_value(DEMO_PARAMETERS))
        / expected_order_value(DEMO_PARAMETERS)
        < 0.03
    )


def test_expectation_grows_with_time_and_starts_at_zero():
    values = expected_repeat_purchases(np.array([0.0, 4.0, 52.0, 104.0]), DEMO_PARAMETERS)

    assert values[0] == 0
    assert (np.diff(values) > 0).all()
