"""The repeat-buying process behind the demo, in plain numpy: no database, so tests can check it
against the closed-form BG/NBD expectation at sizes the database would make slow."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import hyp2f1

from siyu.demo.parameters import DemoParameters


@dataclass(frozen=True)
class RepeatPurchases:
    """Per customer: purchase rate ``lam`` (per week) and dropout probability ``p``; per repeat
    purchase, sorted by (owner, t): the customer index ``owner`` and ``t``, weeks after the first
    purchase."""

    lam: np.ndarray
    p: np.ndarray
    owner: np.ndarray
    t: np.ndarray

    def frequency(self) -> np.ndarray:
        """Repeat purchases per customer (BG/NBD's x)."""
        return np.bincount(self.owner, minlength=len(self.lam))


def simulate_repeat_purchases(
    rng: np.random.Generator, horizon_weeks: np.ndarray, params: DemoParameters
) -> RepeatPurchases:
    """Draws the BG/NBD process for customers observed ``horizon_weeks`` after their first
    purchase. A customer who drops out after their j-th repeat purchase makes
    min(N(T), j) repeat purchases, N being the Poisson count in (0, T], and given N the purchase
    times are uniform order statistics — so no per-customer loop is needed."""
    n = len(horizon_weeks)
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    # No dropout at the first purchase (FHL 2005): the geometric count starts at 1.
    alive_for = rng.geometric(p)
    counts = rng.poisson(lam * horizon_weeks)
    owner = np.repeat(np.arange(n), counts)
    t = rng.random(len(owner)) * horizon_weeks[owner]
    order = np.lexsort((t, owner))
    owner, t = owner[order], t[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(len(owner)) - starts[owner]
    keep = rank < alive_for[owner]
    return RepeatPurchases(lam=lam, p=p, owner=owner[keep], t=t[keep])


def draw_order_values(
    rng: np.random.Generator, n_customers: int, owner: np.ndarray, params: DemoParameters
) -> tuple[np.ndarray, np.ndarray]:
    """Gamma-Gamma spend: the customers' rate ν and one value (yuan) per order of ``owner``."""
    nu = rng.gamma(params.spend_q, 1.0 / params.spend_gamma, n_customers)
    return nu, rng.gamma(params.spend_p, 1.0 / nu[owner])


def expected_repeat_purchases(t: np.ndarray | float, params: DemoParameters) -> np.ndarray:
    """E[X(t)] of BG/NBD (FHL 2005, eq. 9): expected repeat purchases in (0, t] weeks."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    t = np.asarray(t, dtype=float)
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


def expected_order_value(params: DemoParameters) -> float:
    """E[z] of Gamma-Gamma: p·γ/(q−1)."""
    return params.spend_p * params.spend_gamma / (params.spend_q - 1)
