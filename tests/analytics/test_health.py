"""The health score of the hand-made brand (tests/analytics/handmade.py), worked by hand.

Period 03-01..03-02; pool before it {c3}, after it {c1, c2, c3}. c1 has WeCom consent; all three
acted within 30 days; all three bought in the period, c1 and c3 twice ever; c2 was referred; c3
opted out of SMS."""

from datetime import date

import pytest

from siyu.analytics import health
from siyu.tenancy import services as tenancy_services
from siyu.tenancy.models import Membership
from tests import factories
from tests.analytics import handmade

START, END = date(2026, 3, 1), date(2026, 3, 2)


def test_piecewise_linear_mapping():
    anchors = ((0.0, 0.0), (0.30, 50.0), (0.60, 80.0), (0.90, 100.0))
    assert [health.score_of(x, anchors) for x in (-1, 0.15, 0.30, 0.45, 0.9, 2)] == [
        0.0,
        25.0,
        50.0,
        65.0,
        100.0,
        100.0,
    ]


def test_sub_scores_and_composite_of_a_hand_made_pool(ws):
    handmade.build(ws)
    assert health.raw_counts(workspace=ws, start=START, end=END) == {
        "pool_start": 1,
        "pool_end": 3,
        "new": 2,
        "referred_new": 1,
        "reachable": 1,
        "active": 3,
        "purchasers": 3,
        "repeaters": 2,
        "opt_outs": 1,
    }
    h = health.workspace_health(workspace=ws, start=START, end=END)
    got = {s.definition.code: (s.raw, s.score, s.previous_score) for s in h.subscores}
    assert got == {
        "growth": (2.0, 100.0, 0.0),  # 2 new on a pool of 1; before: 0 new
        "reachable": (pytest.approx(1 / 3), 53.3, 0.0),  # 50 + 30 × (1/3 − 0.3) / 0.3
        "active": (1.0, 100.0, 100.0),
        "conversion": (1.0, 100.0, 0.0),
        "repurchase": (pytest.approx(2 / 3), 100.0, None),  # before: no purchasers
        "referral": (0.5, 100.0, None),  # before: no new contacts
        "opt_out": (pytest.approx(1 / 3), 0.0, 100.0),
    }
    # (15·100 + 15·53.3 + 15·100 + 15·100 + 15·100 + 10·100 + 15·0) / 100 = 77.995
    assert h.score == 78.0
    # Before, repurchase and referral drop out: (15·0 + 15·0 + 15·100 + 15·0 + 15·100) / 75
    assert h.previous_score == 40.0
    assert h.trend == 38.0
    reasons = {s.definition.code: s.reason for s in h.subscores}
    assert set(reasons.values()) == {None}


def test_empty_workspace_has_reasons_and_no_score(ws):
    h = health.workspace_health(workspace=ws, start=START, end=END)
    assert h.score is None
    assert {s.definition.code: s.reason for s in h.subscores} == {
        "growth": "empty_pool",
        "reachable": "no_contacts",
        "active": "no_contacts",
        "conversion": "no_active",
        "repurchase": "no_purchasers",
        "referral": "no_new_contacts",
        "opt_out": "no_contacts",
    }


def test_store_scope_and_agency_comparison(ws, other_ws):
    b = handmade.build(ws)
    counts = health.raw_counts(workspace=ws, start=START, end=END, store_id=b.b.id)
    assert (counts["pool_end"], counts["purchasers"], counts["opt_outs"]) == (1, 1, 1)
    user = factories.user()
    tenancy_services.membership_set(workspace=ws, user=user, role="analyst")
    tenancy_services.membership_set(workspace=other_ws, user=user, role="operator")
    third = factories.workspace()
    tenancy_services.membership_set(workspace=third, user=user, role="staff")  # left out
    rows = health.health_comparison(
        memberships=list(Membership.objects.filter(user=user)), start=START, end=END
    )
    assert [(r.workspace.id, r.score) for r in rows] == [(ws.id, 78.0), (other_ws.id, None)]
