"""Assignment is a pure function of (salt, contact id): deterministic and proportional to the
weights; the intervals and tests match scipy and the textbook formulas on worked numbers."""

import hashlib
import math

import numpy as np
import pytest
from scipy import stats as sps

from siyu.experiments import stats

VARIANTS = [
    {"key": "A", "weight": 45},
    {"key": "B", "weight": 45},
    {"key": "holdout", "weight": 10},
]


def test_assignment_is_proportional_to_weights_over_100k_ids():
    keys = stats.assign_variants("s4lt", list(range(1, 100_001)), VARIANTS)

    shares = {k: keys.count(k) / 100_000 for k in ("A", "B", "holdout")}
    assert shares["A"] == pytest.approx(0.45, abs=0.01)
    assert shares["B"] == pytest.approx(0.45, abs=0.01)
    assert shares["holdout"] == pytest.approx(0.10, abs=0.01)


def test_same_id_same_variant_across_calls_and_paths():
    ids = [7, 42, 1_000_003, 99]
    bulk = stats.assign_variants("abc", ids, VARIANTS)

    assert bulk == stats.assign_variants("abc", list(reversed(ids)), VARIANTS)[::-1]
    assert [stats.assign_variant("abc", i, VARIANTS) for i in ids] == bulk


def test_bucket_is_sha256_of_salt_and_id_mod_10000():
    # sha256("abc:42"), first 8 bytes big-endian, mod 10000 — worked with hashlib by hand.
    expected = int.from_bytes(hashlib.sha256(b"abc:42").digest()[:8], "big") % 10_000
    assert stats.buckets("abc", [42]).tolist() == [expected]
    variant = "A" if expected < 4500 else "B" if expected < 9000 else "holdout"
    assert stats.assign_variant("abc", 42, VARIANTS) == variant


def test_wilson_interval_for_2_of_20():
    # By hand: p=0.1, z=1.959964; centre=(0.1+z²/40)/(1+z²/20)=0.14454, half=0.12968.
    interval = stats.wilson(2, 20)

    assert interval.low == pytest.approx(0.027866, abs=1e-5)
    assert interval.high == pytest.approx(0.301034, abs=1e-5)


def test_mean_interval_matches_scipy_t_interval():
    values = np.array([120.0, 30.0] + [0.0] * 18)
    expected = sps.t.interval(0.95, 19, loc=values.mean(), scale=sps.sem(values))

    interval = stats.mean_interval(20, values.sum(), (values**2).sum())

    assert (interval.low, interval.high) == pytest.approx(expected)


def test_two_proportions_z_test_and_difference_interval():
    # 2/20 vs 12/20: pooled 0.35, se 0.150831 → z 3.3150, p 0.000917; unpooled half-width 1.959964 × √0.0165 = 0.251762.
    result = stats.two_proportions(2, 20, 12, 20)

    assert result.difference == pytest.approx(0.5)
    assert result.p_value == pytest.approx(2 * sps.norm.sf(0.5 / math.sqrt(0.35 * 0.65 * 0.1)))
    assert result.p_value == pytest.approx(0.000917, abs=1e-6)
    assert (result.interval.low, result.interval.high) == pytest.approx(
        (0.248238, 0.751762), abs=1e-6
    )
    assert result.significant


def test_welch_matches_scipy():
    control = np.array([120.0, 30.0] + [0.0] * 18)
    variant = np.array([10.0] * 12 + [0.0] * 8)
    expected = sps.ttest_ind(variant, control, equal_var=False)

    result = stats.welch(
        (20, control.sum(), (control**2).sum()), (20, variant.sum(), (variant**2).sum())
    )

    assert result.difference == pytest.approx(-1.5)
    assert result.p_value == pytest.approx(expected.pvalue)
    ci = expected.confidence_interval(0.95)
    assert (result.interval.low, result.interval.high) == pytest.approx((ci.low, ci.high))
    assert not result.significant


def test_minimum_detectable_effect_at_20_per_group_and_10_percent():
    # (1.959964 + 0.841621) × √(0.1 × 0.9 × (1/20 + 1/20)) = 2.801585 × 0.0948683 = 0.265782
    assert stats.minimum_detectable_effect(0.1, 20, 20) == pytest.approx(0.265782, abs=1e-6)


def test_empty_groups_give_no_comparison():
    assert stats.two_proportions(0, 0, 3, 10) is None
    assert stats.welch((1, 5.0, 25.0), (10, 50.0, 300.0)) is None
    assert stats.wilson(0, 0) == stats.Interval(0.0, 0.0)
