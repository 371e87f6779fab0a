"""The insights and spend API: fits started and followed by id, a contact's scores, and spend
recorded per channel and month — each key seeing only its own workspace."""

from decimal import Decimal

import pytest
from django.test import Client

from siyu.commerce.models import ChannelSpend
from siyu.insights import services
from siyu.insights.models import ContactScore, ModelFit
from tests import factories

pytestmark = pytest.mark.django_db

IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


def _put(client: Client, body):
    return client.put("/api/v1/spend", body, content_type="application/json")


def test_spend_batch_is_recorded_listed_and_resent_unchanged(api, other_api, ws):
    body = [
        {"channel": "douyin", "month": "2026-10-15", "amount": "1200.50", "campaign": "双11"},
        {"channel": "wecom", "month": "2026-09-01", "amount": 300},
    ]
    first = _put(api, body)
    again = _put(api, body)
    changed = _put(api, [{"channel": "wecom", "month": "2026-09-30", "amount": "350.00"}])

    assert first.status_code == 200
    assert first.json() == {"created": 2, "updated": 0, "unchanged": 0}
    assert again.json() == {"created": 0, "updated": 0, "unchanged": 2}
    assert changed.json() == {"created": 0, "updated": 1, "unchanged": 0}
    assert api.get("/api/v1/spend").json() == [
        {
            "channel": "douyin",
            "campaign": "双11",
            "month": "2026-10-01",
            "amount": "1200.50",
            "note": "",
        },
        {"channel": "wecom", "campaign": "", "month": "2026-09-01", "amount": "350.00", "note": ""},
    ]
    assert api.get("/api/v1/spend?channel=wecom&month_from=2026-10-01").json() == []
    assert other_api.get("/api/v1/spend").json() == []


def test_bad_spend_is_refused_whole_naming_each_item(api, ws):
    response = _put(
        api,
        [
            {"channel": "douyin", "month": "2026-10-01", "amount": "10"},
            {"channel": "douyin", "month": "2026-10-01", "amount": "-1"},
            {"channel": "tiktok", "month": "2026-10-01", "amount": "1.005"},
        ],
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_batch"
    assert body["detail"] == "1.amount: amount must not be negative (and 1 more)"
    assert [e["path"] for e in body["errors"]] == ["1.amount", "2.channel"]
    assert ChannelSpend.objects.count() == 0


def test_fit_is_started_with_202_and_followed_by_id(
    api, ws, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = IMMEDIATE
    factories.simulated_orders(ws, 300)
    assert api.get("/api/v1/insights/fit").status_code == 404

    with django_capture_on_commit_callbacks(execute=True):
        started = api.post(
            "/api/v1/insights/fit", {"kind": "bgnbd"}, content_type="application/json"
        )

    assert started.status_code == 202
    fit_id = started.json()["id"]
    assert (started.json()["status"], started.json()["progress"]) == ("running", 0)
    followed = api.get(f"/api/v1/insights/fit/{fit_id}").json()
    fit = ModelFit.objects.get(id=fit_id, workspace=ws)
    assert (followed["status"], followed["progress"], followed["customers"]) == ("done", 100, 300)
    assert followed["transaction_params"] == fit.transaction_params
    assert followed["calibration"]["buckets"] == fit.calibration["buckets"]
    assert followed["started_at"].endswith("+08:00")
    assert api.get("/api/v1/insights/fit").json()["id"] == fit_id


def test_a_failed_fit_reports_its_message(api, ws, settings, django_capture_on_commit_callbacks):
    settings.TASKS = IMMEDIATE
    with django_capture_on_commit_callbacks(execute=True):
        fit_id = api.post("/api/v1/insights/fit", {}, content_type="application/json").json()["id"]
    body = api.get(f"/api/v1/insights/fit/{fit_id}").json()
    assert (body["kind"], body["status"]) == ("bgnbd", "failed")
    assert body["message"] == "This workspace has no paid orders yet; there is nothing to fit."
    assert api.get("/api/v1/insights/fit").json()["detail"] == (
        "No model has been fitted in this workspace yet."
    )


def test_unknown_model_kind_is_a_validation_error(api):
    response = api.post("/api/v1/insights/fit", {"kind": "magic"}, content_type="application/json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "kind"
    assert ModelFit.objects.count() == 0


def test_contact_score_is_returned_and_scoped(api, other_api, ws):
    factories.simulated_orders(ws, 300)
    services.fit_workspace(workspace=ws, today=factories.SIMULATED_END)
    score = ContactScore.objects.filter(workspace=ws, frequency__gt=1).order_by("id").first()

    body = api.get(f"/api/v1/contacts/{score.contact_id}/score").json()

    assert body["contact_id"] == score.contact_id
    assert body["p_alive"] == score.p_alive
    assert Decimal(body["clv"]) == score.clv
    assert Decimal(body["expected_order_value"]) == score.expected_order_value
    assert body["churn_band"] == score.churn_band
    assert other_api.get(f"/api/v1/contacts/{score.contact_id}/score").status_code == 404
    never_bought = factories.contact(ws)
    missing = api.get(f"/api/v1/contacts/{never_bought.id}/score")
    assert missing.status_code == 404
    assert missing.json() == {
        "code": "not_found",
        "detail": f"Contact {never_bought.id} has no score.",
    }


def test_another_workspaces_fit_is_not_found_and_keys_are_required(other_api, ws):
    mine = services.model_fit_start(workspace=ws)
    assert other_api.get(f"/api/v1/insights/fit/{mine.id}").status_code == 404
    assert Client().get("/api/v1/insights/fit").status_code == 401
    assert Client().put("/api/v1/spend", [], content_type="application/json").status_code == 401
