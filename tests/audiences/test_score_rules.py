"""Segments on customer-value model scores (P(alive), CLV, churn band)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from siyu.analytics.tables import fetch
from siyu.audiences.rules import compile_rule
from siyu.errors import ValidationFailed
from siyu.insights.models import ContactScore, ModelFit
from tests.audiences.conftest import NOW


def _score(ws, fit, contact, p_alive, clv, band):
    ContactScore.objects.create(
        workspace=ws, contact=contact, fit=fit, frequency=2, recency_weeks=10, age_weeks=20, p_alive=p_alive,
        expected_purchases_30d=0.1, expected_purchases_90d=0.3, expected_purchases_365d=1.0,
        expected_order_value=Decimal("60.00"), clv=Decimal(clv), historical_value=Decimal("120.00"), churn_band=band,
        scored_at=datetime(2026, 2, 1, tzinfo=UTC),
    )


@pytest.fixture
def scored(pool):
    fit = ModelFit.objects.create(workspace=pool.ws, status="done")
    _score(pool.ws, fit, pool.contacts["a"], 0.9, "800.00", "low")
    _score(pool.ws, fit, pool.contacts["b"], 0.2, "450.00", "high")
    _score(pool.ws, fit, pool.contacts["c"], 0.5, "30.00", "medium")
    return pool


def _names(pool, rule):
    return pool.names({row[0] for row in fetch(compile_rule(workspace=pool.ws, rule=rule, now=NOW))})


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"score": {"p_alive": {"lt": 0.3}}}, {"b"}),
        ({"score": {"clv": {"gte": 400}}}, {"a", "b"}),
        ({"score": {"churn_band": ["high", "medium"]}}, {"b", "c"}),
        ({"score": {"churn_band": "high", "clv": {"gte": 400}}}, {"b"}),
        ({"not": {"score": {"churn_band": "low"}}}, {"b", "c", "d"}),
    ],
)
def test_score_conditions(scored, rule, expected):
    assert _names(scored, rule) == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rule", "path", "message"),
    [
        ({"score": {"p_alive": {"lt": 1.5}}}, "score.p_alive", "P(alive) is a probability between 0 and 1"),
        ({"score": {"churn_band": "extreme"}}, "score.churn_band", "'extreme' is not one of: low, medium, high"),
        ({"score": {"ltv": {"gt": 1}}}, "score.ltv", "unknown key 'ltv' in score"),
        ({"score": {}}, "score", "score takes at least one of"),
    ],
)
def test_bad_score_rules_name_the_path(scored, rule, path, message):
    with pytest.raises(ValidationFailed) as exc:
        compile_rule(workspace=scored.ws, rule=rule, now=NOW)
    assert exc.value.path == path
    assert message in exc.value.message
