from siyu.journeys.models import Enrollment
from siyu.tenancy.models import ApiKey, AuditLog
from tests import factories
from tests.journeys.conftest import send_step


def _definition(ws, console):
    members = factories.contacts_many(ws, 4)
    return {"trigger": {"type": "manual", "segment_id": factories.segment_with(ws, members).id}, "steps": [send_step(console)]}


def test_create_publish_launch_and_read_the_stats(api, ws, console):
    created = api.post("/api/v1/journeys", {"name": "欢迎", "definition": _definition(ws, console)}, content_type="application/json")
    assert created.status_code == 201, created.content
    journey_id = created.json()["id"]
    assert created.json()["status"] == "draft"

    assert api.post(f"/api/v1/journeys/{journey_id}/publish").json()["status"] == "live"
    launched = api.post(f"/api/v1/journeys/{journey_id}/launch", {}, content_type="application/json")
    assert launched.json()["enrolled"] == 4

    stats = api.get(f"/api/v1/journeys/{journey_id}/stats").json()
    assert stats["entered"] == 4
    assert stats["statuses"] == {"completed": 4}  # a first send step runs as they enter
    assert stats["roi"] is None and stats["roi_reason"]


def test_a_bad_definition_is_a_422_naming_the_path(api, ws, console):
    definition = _definition(ws, console)
    definition["steps"][0]["next"] = "missing"
    response = api.post("/api/v1/journeys", {"name": "x", "definition": definition}, content_type="application/json")
    assert response.status_code == 422
    assert "definition.steps.0.next" in response.content.decode()


def test_launching_a_draft_is_refused(api, ws, console):
    created = api.post("/api/v1/journeys", {"name": "d", "definition": _definition(ws, console)}, content_type="application/json")
    response = api.post(f"/api/v1/journeys/{created.json()['id']}/launch", {}, content_type="application/json")
    assert response.status_code == 409
    assert not Enrollment.objects.exists()


def test_another_workspace_gets_404_and_changes_nothing(api, other_api, ws, console):
    created = api.post("/api/v1/journeys", {"name": "mine", "definition": _definition(ws, console)}, content_type="application/json")
    journey_id = created.json()["id"]
    assert other_api.get(f"/api/v1/journeys/{journey_id}").status_code == 404
    assert other_api.post(f"/api/v1/journeys/{journey_id}/publish").status_code == 404
    assert other_api.get(f"/api/v1/journeys/{journey_id}/stats").status_code == 404
    assert other_api.get("/api/v1/journeys").json() == []
    assert api.get(f"/api/v1/journeys/{journey_id}").json()["status"] == "draft"


def test_dry_run_over_the_api(api, ws, console):
    response = api.post("/api/v1/journeys/dry-run", {"definition": _definition(ws, console)}, content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["audience"] == 4
    assert body["steps"][0]["reach"] == 4
    assert len(body["sample"]) == 4


def test_writes_through_the_api_are_audited_with_the_key_that_made_them(api, ws, console):
    created = api.post("/api/v1/journeys", {"name": "欢迎", "definition": _definition(ws, console)}, content_type="application/json")
    journey_id = created.json()["id"]
    api.post(f"/api/v1/journeys/{journey_id}/publish")
    api.post(f"/api/v1/journeys/{journey_id}/launch", {}, content_type="application/json")

    key = ApiKey.objects.get(workspace=ws)
    trail = AuditLog.objects.filter(workspace=ws, target_type="journey").order_by("id")
    assert [(a.action, a.actor_api_key_id, a.actor_user_id) for a in trail] == [
        ("journey.create", key.id, None),
        ("journey.publish", key.id, None),
        ("journey.launch", key.id, None),
    ]
