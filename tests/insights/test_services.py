"""Fitting through the database: orders in, parameters and per-contact scores out."""

from datetime import UTC, datetime

import pytest

from siyu.commerce.models import Order
from siyu.contacts.models import Contact
from siyu.insights import queries, services
from siyu.insights.models import ContactScore
from tests.factories import SIMULATED_END, simulated_orders

END = SIMULATED_END


@pytest.mark.django_db
def test_fit_recovers_the_simulated_process_and_scores_every_buyer(ws):
    params = simulated_orders(ws, 3000)
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
    simulated_orders(ws, 600)
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
    simulated_orders(ws, 400)
    fit = services.fit_workspace(workspace=ws, today=END)
    assert fit.status == "done", fit.message
    assert services.fit_workspace(workspace=other_ws, today=END).status == "failed"
    assert ContactScore.objects.filter(workspace=other_ws).count() == 0
    assert queries.score_distribution(workspace=other_ws)["total"] == 0
    assert queries.score_distribution(workspace=ws)["total"] == 400


@pytest.mark.django_db
def test_the_nightly_refit_keeps_the_model_the_workspace_chose(ws):
    simulated_orders(ws, 400)
    chosen = services.fit_workspace(workspace=ws, kind="pareto_nbd", today=END)
    assert chosen.status == "done", chosen.message
    assert services.fit_workspace(workspace=ws, today=END).kind == "pareto_nbd"
