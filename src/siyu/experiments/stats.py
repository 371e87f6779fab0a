"""The arithmetic of experiments, as pure functions: deterministic assignment and the intervals
and tests the results page reports. Nothing here touches the database.

Every statistic is computed from sufficient statistics (count, sum, sum of squares) that the
database aggregates, so a variant of a million contacts costs the same as one of ten.

Revenue per contact is heavily skewed (most contacts spend nothing), so its intervals rest on the
central limit theorem: with Student's t quantiles they are honest from a few hundred contacts per
variant, and only approximate below that — the verdict then asks for more data anyway.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

#: Hash buckets: a weight of 1 % is 100 buckets, so weights are whole percents.
BUCKETS = 10_000
CONFIDENCE = 0.95
POWER = 0.80


def _z(level: float = CONFIDENCE) -> float:
    return float(sps.norm.ppf(0.5 + level / 2))


def buckets(salt: str, contact_ids: Sequence[int]) -> np.ndarray:
    """The bucket (0–9999) of each contact: the first 8 bytes of sha256("salt:id") mod 10000."""
    return np.fromiter(
        (
            int.from_bytes(hashlib.sha256(f"{salt}:{cid}".encode()).digest()[:8], "big") % BUCKETS
            for cid in contact_ids
        ),
        dtype=np.int64,
        count=len(contact_ids),
    )


def assign_variants(salt: str, contact_ids: Sequence[int], variants: Sequence[dict]) -> list[str]:
    """The variant key of each contact: its bucket placed among the cumulative weights."""
    keys = [v["key"] for v in variants]
    bounds = np.cumsum([int(v["weight"]) * BUCKETS // 100 for v in variants])
    at = np.searchsorted(bounds, buckets(salt, contact_ids), side="right")
    return [keys[i] for i in at]


def assign_variant(salt: str, contact_id: int, variants: Sequence[dict]) -> str:
    """One contact's variant; the very function bulk assignment uses, so both always agree."""
    return assign_variants(salt, [contact_id], variants)[0]


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    """A variant minus the control: the difference, its 95 % interval and the two-sided p-value."""

    difference: float
    interval: Interval
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - CONFIDENCE


def wilson(successes: int, n: int) -> Interval:
    """Wilson's score interval: unlike the Wald interval it stays inside [0, 1] and keeps its
    coverage for rates near 0 — the usual case for conversion."""
    if n == 0:
        return Interval(0.0, 0.0)
    z = _z()
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def variance(n: int, total: float, squares: float) -> float:
    """Sample variance from the sum and the sum of squares (clamped: rounding can dip below 0)."""
    if n < 2:
        return 0.0
    return max(0.0, (squares - total * total / n) / (n - 1))


def mean_interval(n: int, total: float, squares: float) -> Interval:
    """The t interval of a mean from its sufficient statistics."""
    if n == 0:
        return Interval(0.0, 0.0)
    mean = total / n
    if n < 2:
        return Interval(mean, mean)
    half = float(sps.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * math.sqrt(
        variance(n, total, squares) / n
    )
    return Interval(mean - half, mean + half)


def two_proportions(x_control: int, n_control: int, x: int, n: int) -> Comparison | None:
    """Rate difference ``x/n − x_control/n_control``: the p-value of the pooled two-proportion
    z-test, and the unpooled (Wald) interval of the difference."""
    if n_control == 0 or n == 0:
        return None
    p0, p1 = x_control / n_control, x / n
    diff = p1 - p0
    pooled = (x_control + x) / (n_control + n)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_control + 1 / n))
    p_value = 1.0 if se_pooled == 0 else float(2 * sps.norm.sf(abs(diff) / se_pooled))
    half = _z() * math.sqrt(p0 * (1 - p0) / n_control + p1 * (1 - p1) / n)
    # Clamped: a difference of rates lies in [-1, 1], which Wald's interval can overshoot.
    return Comparison(diff, Interval(max(-1.0, diff - half), min(1.0, diff + half)), p_value)


def welch(
    control: tuple[int, float, float], variant: tuple[int, float, float]
) -> Comparison | None:
    """Difference of means (variant − control) by Welch's t-test, each side given as (n, sum,
    sum of squares). Welch does not assume equal variances, which a treatment rarely keeps."""
    (n0, s0, q0), (n1, s1, q1) = control, variant
    if n0 < 2 or n1 < 2:
        return None
    diff = s1 / n1 - s0 / n0
    a, b = variance(n0, s0, q0) / n0, variance(n1, s1, q1) / n1
    se = math.sqrt(a + b)
    if se == 0:
        # Both sides constant: the difference is exact.
        return Comparison(diff, Interval(diff, diff), 1.0 if diff == 0 else 0.0)
    df = (a + b) ** 2 / (a * a / (n0 - 1) + b * b / (n1 - 1))
    half = float(sps.t.ppf(0.5 + CONFIDENCE / 2, df)) * se
    p_value = float(2 * sps.t.sf(abs(diff) / se, df))
    return Comparison(diff, Interval(diff - half, diff + half), p_value)


def minimum_detectable_effect(rate: float, n_control: int, n: int) -> float | None:
    """The smallest absolute rate difference a two-sided test at 95 % would detect with 80 %
    power at these group sizes, around the control's rate (at least 1 %, so that a control
    with no conversions yet still gives a useful figure)."""
    if n_control == 0 or n == 0:
        return None
    p = max(rate, 0.01)
    return (_z() + float(sps.norm.ppf(POWER))) * math.sqrt(p * (1 - p) * (1 / n_control + 1 / n))
