"""The experiments console: list, create form (with the service's refusal shown), start, the
results page with its chart and verdict, CSV export, roles and cross-workspace 404s."""

import csv
import io
import json
import re

import pytest

from siyu.experiments import services, stats
from siyu.experiments.models import Experiment, ExperimentAssignment
from tests import factories

pytestmark = pytest.mark.django_db

AB = [{"key": "A", "weight": 50}, {"key": "B", "weight": 50}]


def _login(client, ws, role="owner"):
    client.force_login(factories.member(ws, role=role))


def _form(segment_id, **extra):
    data = {
        "name": "Coupon",
        "segment": segment_id,
        "window_days": 14,
        "key_0": "A",
        "weight_0": 50,
        "key_1": "B",
        "weight_1": 50,
    }
    return {**data, **extra}


def test_create_start_and_results_page(client, ws):
    _login(client, ws)
    members = factories.contacts_many(ws, 8)
    seg = factories.segment_with(ws, members, name="VIP")

    created = client.post("/experiments/new/", _form(seg.id))
    exp = Experiment.objects.get(workspace=ws)
    # The salt is random per experiment; with 8 members a group can come out nearly empty, which
    # is a different verdict. Pick a salt that gives both groups at least two of these ids.
    ids = [c.id for c in members]
    salt = next(
        f"t{i}"
        for i in range(100)
        if min(list(stats.assign_variants(f"t{i}", ids, exp.variants)).count(k) for k in ("A", "B"))
        >= 2
    )
    Experiment.objects.filter(id=exp.id).update(salt=salt)
    started = client.post(f"/experiments/{exp.id}/start/")
    html = client.get(f"/experiments/{exp.id}/").content.decode()
    listing = client.get("/experiments/").content.decode()

    assert created.status_code == 302 and started.status_code == 302
    assert ExperimentAssignment.objects.filter(experiment=exp).count() == 8
    assert (
        min(
            ExperimentAssignment.objects.filter(experiment=exp, variant=key).count()
            for key in ("A", "B")
        )
        >= 2
    )
    figure = json.loads(
        re.search(
            r'<script id="figure-conversion" type="application/json">(.*?)</script>', html, re.S
        ).group(1)
    )
    assert figure["data"][0]["x"] == ["A", "B"]
    assert "error_y" in figure["data"][0]
    assert "与 A 的转化率差异不显著" in html
    assert "Coupon" in listing and "VIP" in listing


def test_form_shows_weight_error(client, ws):
    _login(client, ws)
    seg = factories.segment_with(ws, [])

    response = client.post("/experiments/new/", _form(seg.id, weight_1=30))

    assert response.status_code == 400
    assert "各版本权重之和须为 100，现在是 80。" in response.content.decode()
    assert not Experiment.objects.exists()


def test_csv_export(client, ws):
    _login(client, ws)
    seg = factories.segment_with(ws, factories.contacts_many(ws, 4))
    exp = services.experiment_create(workspace=ws, name="E", segment_id=seg.id, variants=AB)
    services.experiment_start(workspace=ws, experiment=exp)

    response = client.get(f"/experiments/{exp.id}/results.csv")

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:4] == ["variant", "control", "contacts", "converters"]
    assert [r[0] for r in rows[1:]] == ["A", "B"]
    assert sum(int(r[2]) for r in rows[1:]) == 4


def test_other_workspace_gets_404_and_nothing_changes(client, ws, other_ws):
    seg = factories.segment_with(other_ws, factories.contacts_many(other_ws, 3))
    exp = services.experiment_create(
        workspace=other_ws, name="Theirs", segment_id=seg.id, variants=AB
    )
    _login(client, ws)

    assert client.get(f"/experiments/{exp.id}/").status_code == 404
    assert client.get(f"/experiments/{exp.id}/results.csv").status_code == 404
    assert client.post(f"/experiments/{exp.id}/start/").status_code == 404
    exp.refresh_from_db()
    assert exp.status == "draft"
    assert not ExperimentAssignment.objects.exists()


def test_analyst_cannot_start(client, ws):
    seg = factories.segment_with(ws, factories.contacts_many(ws, 2))
    exp = services.experiment_create(workspace=ws, name="E", segment_id=seg.id, variants=AB)
    _login(client, ws, role="analyst")

    assert client.post(f"/experiments/{exp.id}/start/").status_code == 403
    assert "开始实验" not in client.get(f"/experiments/{exp.id}/").content.decode()
    assert not ExperimentAssignment.objects.exists()
