"""Fitting through the database: orders in, parameters and per-contact scores out."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from siyu.commerce.models import Order
from siyu.contacts.models import Contact
from siyu.insights import queries, services
from siyu.insights.clv import simulate_bgnbd
from siyu.insights.models import ContactScore

END = date(2026, 6, 30)


def _simulated_orders(ws, n: int, seed: int = 3) -> dict:
    """Purchase histories drawn from BG/NBD with known parameters, written as real orders."""
    rng = np.random.default_rng(seed)
    params = {"r": 0.8, "alpha": 5.0, "a": 0.7, "b": 3.0}
    age_weeks = rng.uniform(20, 78, n).round()
    x, t_x, _ = simulate_bgnbd(n, **params, T=age_weeks, rng=rng)
    end = datetime(END.year, END.month, END.day, 4, tzinfo=UTC)  # noon in Shanghai
    contacts = Contact.objects.bulk_create(
        [Contact(workspace=ws, name=f"c{i}", first_seen_at=end - timedelta(weeks=float(age_weeks[i]))) for i in range(n)]
    )
    nu = rng.gamma(4.0, 1 / 150.0, n)  # Gamma-Gamma spend heterogeneity: q=4, gamma=150, p=6
    orders = []
    for i, c in enumerate(contacts):
        first = end - timedelta(days=int(age_weeks[i] * 7))
        days = {0, int(round(t_x[i] * 7))} if x[i] else {0}
        while len(days) < x[i] + 1:  # distinct purchase days, the last one at the recency
            days.add(int(rng.integers(1, max(2, int(round(t_x[i] * 7))))))
        for d in sorted(days):
            amount = Decimal(f"{rng.gamma(6, 1 / nu[i]):.2f}")
            orders.append(Order(workspace=ws, order_no=f"o{i}-{d}", contact=c, channel="store",
                                paid_at=first + timedelta(days=d), gross_amount=amount, amount=amount))
    Order.objects.bulk_create(orders, batch_size=2000)
    return params


@pytest.mark.django_db
def test_fit_recovers_the_simulated_process_and_scores_every_buyer(ws):
    params = _simulated_orders(ws, 3000)
    fit = services.fit_workspace(workspace=ws, today=END)
    assert fit.status == "done", fit.message
    for name, value in params.items():
        assert fit.transaction_params[name] == pytest.approx(value, rel=0.3), name
    assert set(fit.spend_params) == {"p", "q", "gamma"}
    assert ContactScore.objects.filter(workspace=ws).count() == 3000 == fit.customers
    one_timers = ContactScore.objects.filter(workspace=ws, frequency=0)
    assert all(s.p_alive == pytest.approx(1.0) for s in one_timers[:20])
    assert ContactScore.objects.filter(workspace=ws, clv__lt=0).count() == 0
    assert ContactScore.objects.filter(workspace=ws, clv__gt=0).count() > 2900
    assert {b for b in ContactScore.objects.values_list("churn_band", flat=True)} <= {"low", "medium", "high"}
    buckets = fit.calibration["buckets"]
    assert buckets[0]["frequency"] == "0" and buckets[-1]["frequency"] == "7+"
    assert abs(fit.calibration["error_pct"]) < 25


@pytest.mark.django_db
def test_refit_replaces_scores_and_failure_keeps_the_old_ones(ws):
    _simulated_orders(ws, 600)
    first = services.fit_workspace(workspace=ws, today=END)
    assert first.status == "done"
    Order.objects.filter(workspace=ws).delete()
    failed = services.fit_workspace(workspace=ws, today=END)
    assert failed.status == "failed"
    assert failed.message == "This workspace has no paid orders yet; there is nothing to fit."
    assert ContactScore.objects.filter(workspace=ws, fit=first).count() == 600
    assert queries.latest_fit(workspace=ws) == first


@pytest.mark.django_db
def test_too_few_repeat_buyers_is_a_clear_message_not_nan(ws):
    c = Contact.objects.create(workspace=ws, first_seen_at=datetime(2026, 1, 1, tzinfo=UTC))
    Order.objects.create(workspace=ws, order_no="A", contact=c, channel="store",
                         paid_at=datetime(2026, 1, 2, tzinfo=UTC), gross_amount="10.00", amount="10.00")
    fit = services.fit_workspace(workspace=ws, today=END)
    assert fit.status == "failed"
    assert fit.message == "Only 0 of 1 buyers made a repeat purchase; at least 30 are needed for a meaningful fit."


@pytest.mark.django_db
def test_scores_stay_in_their_workspace(ws, other_ws):
    _simulated_orders(ws, 400)
    fit = services.fit_workspace(workspace=ws, today=END)
    assert fit.status == "done", fit.message
    assert services.fit_workspace(workspace=other_ws, today=END).status == "failed"
    assert ContactScore.objects.filter(workspace=other_ws).count() == 0
    assert queries.score_distribution(workspace=other_ws)["total"] == 0
    assert queries.score_distribution(workspace=ws)["total"] == 400
