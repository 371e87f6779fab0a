"""Results on hand-made assignments and orders, every figure worked out in the comments.

Control A: 20 contacts, 2 convert — a0 pays 100 + 20 (net 120), a1 pays 50 of which 20 is refunded
(net 30). Orders that must not count: a2 paid one microsecond before its assignment, a3 paid
exactly when its 14-day window ends, a4's order fully refunded, and an order of another
workspace. B: 20 contacts, 12 pay 10 each. C: 20 contacts, all pay 100."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.utils import translation
from scipy import stats as sps

from siyu.experiments import queries
from siyu.experiments.models import Experiment, ExperimentAssignment
from tests import factories

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
WINDOW = timedelta(days=14)


def _setup(ws, other_ws, groups):
    """An experiment with ``groups`` {key: n}; returns it and the contacts per key."""
    exp = Experiment.objects.create(
        workspace=ws,
        name="Worked",
        variants=[{"key": k, "weight": w} for k, (_, w) in groups.items()],
        salt="x",
        window_days=14,
        status="running",
        start_at=T0,
    )
    people = {}
    for key, (n, _) in groups.items():
        people[key] = factories.contacts_many(ws, n)
        ExperimentAssignment.objects.bulk_create(
            [
                ExperimentAssignment(
                    workspace=ws,
                    experiment=exp,
                    contact=c,
                    variant=key,
                    assigned_at=T0,
                    window_ends_at=T0 + WINDOW,
                )
                for c in people[key]
            ]
        )
    a = people["A"]
    factories.order(ws, a[0], "100.00", paid_at=T0 + timedelta(days=1))
    factories.order(ws, a[0], "20.00", paid_at=T0 + timedelta(days=3))
    factories.order(
        ws,
        a[1],
        "50.00",
        paid_at=T0 + timedelta(days=2),
        refunded_amount=Decimal("20.00"),
        status="partially_refunded",
    )
    factories.order(ws, a[2], "70.00", paid_at=T0 - US)
    factories.order(ws, a[3], "70.00", paid_at=T0 + WINDOW)
    factories.order(
        ws,
        a[4],
        "70.00",
        paid_at=T0 + timedelta(days=1),
        refunded_amount=Decimal("70.00"),
        status="refunded",
    )
    stranger = factories.contacts_many(other_ws, 1)[0]
    factories.order(other_ws, stranger, "999.00", paid_at=T0 + timedelta(days=1))
    return exp, people


def test_conversion_revenue_and_differences_on_worked_data(ws, other_ws):
    exp, people = _setup(ws, other_ws, {"A": (20, 40), "B": (20, 30), "C": (20, 30)})
    for c in people["B"][:12]:
        factories.order(ws, c, "10.00", paid_at=T0 + timedelta(days=5))
    for c in people["C"]:
        factories.order(ws, c, "100.00", paid_at=T0 + WINDOW - US)

    results = queries.experiment_results(workspace=ws, experiment=exp)

    a, b, c = results.variants
    assert results.control == "A" and a.is_control
    assert (a.contacts, a.converters, a.revenue) == (20, 2, 150.0)
    assert (b.contacts, b.converters, b.revenue) == (20, 12, 120.0)
    assert (c.contacts, c.converters, c.revenue) == (20, 20, 2000.0)
    assert (a.conversion_rate, a.revenue_per_contact) == (0.1, 7.5)
    # Wilson 2/20, worked by hand: 0.027866–0.301034.
    assert (a.conversion_interval.low, a.conversion_interval.high) == pytest.approx(
        (0.027866, 0.301034), abs=1e-5
    )
    # 2/20 vs 12/20: difference 0.5, unpooled CI 0.248238–0.751762, pooled z-test p = 0.000917.
    assert b.conversion_diff.difference == pytest.approx(0.5)
    assert (b.conversion_diff.interval.low, b.conversion_diff.interval.high) == pytest.approx(
        (0.248238, 0.751762), abs=1e-6
    )
    assert b.conversion_diff.p_value == pytest.approx(0.000917, abs=1e-6)
    # Revenue per contact, Welch: checked against scipy on the per-contact values.
    control = np.array([120.0, 30.0] + [0.0] * 18)
    welch = sps.ttest_ind(np.array([10.0] * 12 + [0.0] * 8), control, equal_var=False)
    assert b.revenue_diff.difference == pytest.approx(-1.5)
    assert b.revenue_diff.p_value == pytest.approx(welch.pvalue)
    # C: constant 100 per contact against A: se = √(746.0526/20) = 6.107589, df = 19.
    half = sps.t.ppf(0.975, 19) * np.sqrt(control.var(ddof=1) / 20)
    assert c.revenue_diff.difference == pytest.approx(92.5)
    assert (c.revenue_diff.interval.low, c.revenue_diff.interval.high) == pytest.approx(
        (92.5 - half, 92.5 + half)
    )
    assert results.verdicts == [
        "B 的转化率比 A 高 50.0 个百分点 (95% 置信区间 24.8–75.2)，差异显著。",
        "C 的转化率比 A 高 90.0 个百分点 (95% 置信区间 76.9–100.0)，差异显著。"
        f"C 的人均收入比 A 高 ¥92.50 (95% 置信区间 ¥{92.5 - half:,.2f}–¥{92.5 + half:,.2f})，差异显著。",
    ]


def test_not_significant_verdict_asks_for_more_data_with_mde(ws, other_ws):
    exp, people = _setup(ws, other_ws, {"A": (20, 50), "B": (20, 50)})
    for c in people["B"][:4]:
        factories.order(ws, c, "10.00", paid_at=T0 + timedelta(days=5))

    results = queries.experiment_results(workspace=ws, experiment=exp)

    # 2/20 vs 4/20: p = 0.376; CI 0.1 ± 1.959964 × √0.0125 = −0.119–0.319; MDE 0.265782.
    assert not results.variants[1].conversion_diff.significant
    assert results.verdicts == [
        "B 与 A 的转化率差异不显著 (相差 10.0 个百分点，95% 置信区间 -11.9–31.9)，"
        "需要更多样本 (当前每组 20 人)。以当前样本量，能可靠检出 (把握度 80%) 的最小差异约为 26.6 个百分点。"
    ]


def test_finished_experiment_ignores_orders_after_its_end(ws, other_ws):
    exp, people = _setup(ws, other_ws, {"A": (20, 50), "B": (20, 50)})
    exp.end_at = T0 + timedelta(days=2)
    exp.save()

    a = queries.experiment_results(workspace=ws, experiment=exp).variants[0]

    # a0's second order (day 3) and a1's (day 2, not before the end) fall after the end.
    assert (a.converters, a.revenue) == (1, 100.0)


def test_english_verdict(ws, other_ws):
    exp, _ = _setup(ws, other_ws, {"A": (20, 50), "B": (20, 50)})

    with translation.override("en"):
        verdicts = queries.experiment_results(workspace=ws, experiment=exp).verdicts

    assert verdicts[0].startswith("The difference in conversion between B and A is not significant")
