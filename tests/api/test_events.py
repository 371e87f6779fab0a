import pytest
from django.test import override_settings

from siyu.events.models import Event
from tests import factories
from tests.api.helpers import PHONE, errors, event, post


@pytest.fixture
def known(ws):
    return factories.contact(ws, phone=PHONE)


@pytest.mark.django_db
def test_posting_the_same_events_twice_stores_them_once(api, known):
    batch = [
        event("e-1"),
        event("e-2", type="share", properties={"to": "group"}),
        event("e-3", contact_id=None),
    ]
    first = post(api, "/api/v1/events", batch)
    second = post(api, "/api/v1/events", batch)
    assert first.json() == {"created": 3, "duplicates": 0}
    assert second.json() == {"created": 0, "duplicates": 3}
    assert Event.objects.filter(contact=known).count() == 3


@pytest.mark.django_db
def test_an_event_can_name_its_contact_by_siyu_id(api, known):
    item = {
        "event_id": "e-9",
        "type": "follow",
        "contact_id": known.id,
        "occurred_at": "2026-03-01T10:00:00Z",
    }
    assert post(api, "/api/v1/events", [item]).json() == {"created": 1, "duplicates": 0}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"colour": "red"}, "0.colour", "Extra inputs are not permitted"),
        (
            {"duration_seconds": "long"},
            "0.duration_seconds",
            "Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            {"type": "teleport"},
            "0.type",
            "Input should be 'page_view', 'product_view', 'add_to_cart', 'share', 'invite', 'join_group', 'leave_group', 'message_read', 'message_click', 'coupon_claim', 'coupon_redeem', 'content_view', 'contact_added', 'follow', 'unfollow', 'sign_up', 'search' or 'custom'",
        ),
        (
            {"occurred_at": "2026-02-30T10:00:00+08:00"},
            "0.occurred_at",
            "Input should be a valid datetime or date, day value is outside expected range",
        ),
        (
            {"occurred_at": "2026-03-01T10:00:00"},
            "0.occurred_at",
            "timestamp needs a time zone offset, e.g. 2026-05-01T10:00:00+08:00",
        ),
        (
            {"contact": {"kind": "phone", "value": "13900000000"}},
            "0.contact",
            "unknown contact identity phone:139****0000; upsert the contact first",
        ),
        ({"contact_id": 999999}, "0.contact_id", "unknown contact_id 999999"),
    ],
)
def test_a_bad_event_is_refused_with_its_path_and_nothing_stored(api, known, change, path, message):
    response = post(api, "/api/v1/events", [event("e-1", **change)])
    assert errors(response) == [{"path": path, "message": message}]
    assert Event.objects.count() == 0


@pytest.mark.django_db
def test_every_bad_event_in_a_batch_is_named_and_the_good_ones_are_not_stored(api, known):
    batch = [event("e-1"), event("e-2", phone="13900000000"), event("e-1"), event("e-4")]
    response = post(api, "/api/v1/events", batch)
    assert (
        response.json()["detail"]
        == "1.contact: unknown contact identity phone:139****0000; upsert the contact first (and 1 more)"
    )
    assert errors(response) == [
        {
            "path": "1.contact",
            "message": "unknown contact identity phone:139****0000; upsert the contact first",
        },
        {
            "path": "2.event_id",
            "message": "'e-1' appears more than once in this batch (first at item 0)",
        },
    ]
    assert Event.objects.count() == 0


@pytest.mark.django_db
def test_a_batch_over_the_limit_is_refused_naming_the_limit(api, known):
    response = post(api, "/api/v1/events", [event(f"e-{n}") for n in range(1001)])
    assert errors(response) == [
        {"path": "", "message": "a batch carries at most 1000 items; this one has 1001"}
    ]
    assert Event.objects.count() == 0


@pytest.mark.django_db
@override_settings(SIYU_API_MAX_BATCH=2)
def test_the_batch_limit_follows_the_setting(api, known):
    assert errors(post(api, "/api/v1/events", [event("a"), event("b"), event("c")]))[0][
        "message"
    ] == ("a batch carries at most 2 items; this one has 3")
    assert post(api, "/api/v1/events", [event("a"), event("b")]).json() == {
        "created": 2,
        "duplicates": 0,
    }


@pytest.mark.django_db
def test_a_body_that_is_not_a_list_or_not_json_is_refused(api):
    assert errors(post(api, "/api/v1/events", {"event_id": "e-1"})) == [
        {"path": "", "message": "Input should be a valid list"}
    ]
    response = api.post("/api/v1/events", "[{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"code": "bad_request", "detail": "Cannot parse request body"}


@pytest.mark.django_db
def test_garbled_text_in_properties_is_kept_as_sent(api, known):
    garbage = "ÖÐÎÄ 锟斤拷 \ufffd\u200b"
    post(
        api,
        "/api/v1/events",
        [event("e-1", type="custom", name="乱码", properties={"note": garbage})],
    )
    assert Event.objects.get(event_id="e-1").properties == {"note": garbage}


@pytest.mark.django_db
def test_events_of_another_workspaces_contact_are_refused(api, other_ws):
    theirs = factories.contact(other_ws, phone="13900000008")
    response = post(
        api,
        "/api/v1/events",
        [event("e-1", phone="13900000008"), event("e-2", contact_id=theirs.id)],
    )
    assert [e["path"] for e in errors(response)] == ["0.contact", "1.contact_id"]
    assert Event.objects.count() == 0
