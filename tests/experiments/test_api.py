"""The experiments API: create (with validation paths), start, results and a contact's variant,
each key seeing only its own workspace."""

import pytest

from siyu.experiments import stats
from siyu.experiments.models import Experiment, ExperimentAssignment
from tests import factories

pytestmark = pytest.mark.django_db

AB = [{"key": "A", "weight": 50}, {"key": "B", "weight": 50}]


def _post(client, url, body=None):
    return client.post(url, body or {}, content_type="application/json")


def test_create_start_results_and_variant(ws):
    api = factories.api_client(ws)
    members = factories.contacts_many(ws, 10)
    seg = factories.segment_with(ws, members)

    created = _post(
        api, "/api/v1/experiments", {"name": "Coupon", "segment_id": seg.id, "variants": AB}
    )
    exp_id = created.json()["id"]
    started = _post(api, f"/api/v1/experiments/{exp_id}/start")
    results = api.get(f"/api/v1/experiments/{exp_id}/results")
    variant = api.get(f"/api/v1/experiments/{exp_id}/variant/{members[3].id}")

    assert created.status_code == 201
    assert created.json()["status"] == "draft"
    assert (started.status_code, started.json()["assigned"]) == (200, 10)
    assert started.json()["experiment"]["status"] == "running"
    body = results.json()
    assert (results.status_code, body["control"], body["contacts"]) == (200, "A", 10)
    assert [v["key"] for v in body["variants"]] == ["A", "B"]
    assert len(body["verdicts"]) == 1
    salt = Experiment.objects.get(id=exp_id).salt
    assert variant.json() == {
        "experiment_id": exp_id,
        "contact_id": members[3].id,
        "variant": stats.assign_variant(salt, members[3].id, AB),
    }


def test_weights_not_summing_to_100_name_the_path(ws):
    seg = factories.segment_with(ws, [])

    response = _post(
        factories.api_client(ws),
        "/api/v1/experiments",
        {
            "name": "Bad",
            "segment_id": seg.id,
            "variants": [{"key": "A", "weight": 50}, {"key": "B", "weight": 30}],
        },
    )

    assert response.status_code == 422
    assert response.json() == {
        "code": "invalid_experiment",
        "detail": "各版本权重之和须为 100，现在是 80。",
        "path": "variants",
    }
    assert not Experiment.objects.exists()


def test_other_workspace_segment_and_experiment_are_not_found(ws, other_ws):
    foreign_seg = factories.segment_with(other_ws, factories.contacts_many(other_ws, 2))
    theirs = factories.api_client(other_ws)
    exp_id = _post(
        theirs, "/api/v1/experiments", {"name": "T", "segment_id": foreign_seg.id, "variants": AB}
    ).json()["id"]
    mine = factories.api_client(ws)

    create = _post(
        mine, "/api/v1/experiments", {"name": "M", "segment_id": foreign_seg.id, "variants": AB}
    )
    start = _post(mine, f"/api/v1/experiments/{exp_id}/start")
    results = mine.get(f"/api/v1/experiments/{exp_id}/results")

    assert (create.status_code, create.json()["path"]) == (422, "segment_id")
    assert (start.status_code, results.status_code) == (404, 404)
    assert Experiment.objects.get(id=exp_id).status == "draft"
    assert not ExperimentAssignment.objects.exists()


def test_unassigned_contact_is_404(ws):
    api = factories.api_client(ws)
    seg = factories.segment_with(ws, [])
    exp_id = _post(
        api, "/api/v1/experiments", {"name": "E", "segment_id": seg.id, "variants": AB}
    ).json()["id"]

    response = api.get(f"/api/v1/experiments/{exp_id}/variant/123456")

    assert (response.status_code, response.json()["code"]) == (404, "not_assigned")
