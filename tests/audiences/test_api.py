"""The audiences router on its own, with the workspace an API key would give the request. The
mapping of domain errors to 422 responses is the API app's and tested there; here a refusal
surfaces as the ValidationFailed it raises."""

from __future__ import annotations

import pytest
from ninja.testing import TestClient

from siyu.audiences.api import router
from siyu.audiences.models import ContactTag, Segment
from siyu.errors import ValidationFailed

client = TestClient(router)


@pytest.mark.django_db
def test_preview_save_refresh_and_list_members(pool):
    rule = {"all": [{"field": "contact.city", "op": "eq", "value": "上海"}]}
    preview = client.post("/segments/preview", json={"rule": rule}, workspace=pool.ws)
    assert preview.status_code == 200
    assert preview.json()["count"] == 2
    assert [c["name"] for c in preview.json()["sample"]] == ["A", "C"]

    created = client.post("/segments", json={"name": "上海", "rule": rule}, workspace=pool.ws)
    assert created.status_code == 201 and created.json()["status"] == "new"
    segment_id = created.json()["id"]

    refreshed = client.post(f"/segments/{segment_id}/refresh", workspace=pool.ws)
    assert refreshed.status_code == 200
    assert (refreshed.json()["status"], refreshed.json()["size"]) == ("ready", 2)

    page = client.get(f"/segments/{segment_id}/members?limit=1", workspace=pool.ws).json()
    assert [c["name"] for c in page["items"]] == ["A"] and page["next_after"] == pool.contacts[
        "a"
    ].id
    rest = client.get(
        f"/segments/{segment_id}/members?limit=1&after={page['next_after']}", workspace=pool.ws
    ).json()
    assert [c["name"] for c in rest["items"]] == ["C"] and rest["next_after"] is None

    assert [s["name"] for s in client.get("/segments", workspace=pool.ws).json()] == ["上海"]


@pytest.mark.django_db
def test_preview_of_a_bad_rule_names_the_path_under_rule(pool):
    with pytest.raises(ValidationFailed) as info:
        client.post(
            "/segments/preview",
            json={"rule": {"all": [{"field": "contact.city", "op": "gt", "value": 1}]}},
            workspace=pool.ws,
        )
    assert (info.value.http_status, info.value.path, info.value.message) == (
        422,
        "rule.all.0.op",
        "operator 'gt' does not apply to text field contact.city",
    )


@pytest.mark.django_db
def test_another_workspaces_segment_is_not_found(pool, other_ws):
    segment = Segment.objects.create(workspace=other_ws, name="x", rule={"tag": 1})
    with pytest.raises(Exception, match=f"Segment {segment.id} not found."):
        client.post(f"/segments/{segment.id}/refresh", workspace=pool.ws)
    assert Segment.objects.get(id=segment.id).status == "new"


@pytest.mark.django_db
def test_create_a_tag_and_tag_contacts_by_ids_then_by_segment(pool):
    a, b = pool.contacts["a"], pool.contacts["b"]
    tag = client.post(
        "/tags", json={"group": "意向", "name": "报价", "color": "#2563eb"}, workspace=pool.ws
    )
    assert tag.status_code == 201 and tag.json()["group"] == "意向"
    tag_id = tag.json()["id"]

    tagged = client.post(
        f"/tags/{tag_id}/contacts", json={"contact_ids": [a.id, b.id, a.id]}, workspace=pool.ws
    )
    assert tagged.json() == {"changed": 2}
    assert set(ContactTag.objects.filter(tag_id=tag_id).values_list("contact_id", "source")) == {
        (a.id, "api"),
        (b.id, "api"),
    }

    removed = client.post(
        f"/tags/{tag_id}/contacts", json={"contact_ids": [b.id], "remove": True}, workspace=pool.ws
    )
    assert removed.json() == {"changed": 1}

    segment = client.post(
        "/segments",
        json={"name": "北京", "rule": {"field": "contact.city", "op": "eq", "value": "北京"}},
        workspace=pool.ws,
    ).json()
    client.post(f"/segments/{segment['id']}/refresh", workspace=pool.ws)
    by_segment = client.post(
        f"/tags/{tag_id}/contacts", json={"segment_id": segment["id"]}, workspace=pool.ws
    )
    assert by_segment.json() == {"changed": 1}
    assert set(ContactTag.objects.filter(tag_id=tag_id).values_list("contact_id", flat=True)) == {
        a.id,
        b.id,
    }

    with pytest.raises(ValidationFailed) as info:
        client.post(
            f"/tags/{tag_id}/contacts",
            json={"contact_ids": [a.id], "segment_id": segment["id"]},
            workspace=pool.ws,
        )
    assert info.value.message == "give contact_ids or segment_id, not both"
