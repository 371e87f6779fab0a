import pytest

from siyu.contacts.models import Consent, Contact, ContactMerge, Identity
from tests import factories
from tests.api.helpers import PHONE, errors, post, put


def _contact(phone: str = PHONE, **kw) -> dict:
    return {"identities": [{"kind": "phone", "value": phone}], **kw}


@pytest.mark.django_db
def test_upsert_creates_then_reposting_the_batch_creates_nothing(api):
    batch = [_contact(name="王芳", city="上海"), _contact("13900000002", nickname="阿强")]
    first = post(api, "/api/v1/contacts", batch).json()
    again = post(api, "/api/v1/contacts", batch).json()
    assert first["created"] == 2 and first["existing"] == 0
    assert again == {
        "created": 0,
        "existing": 2,
        "merged": 0,
        "items": [
            {"contact_id": i["contact_id"], "created": False, "merged_ids": []}
            for i in first["items"]
        ],
    }
    assert Contact.objects.count() == 2 and Identity.objects.count() == 2


@pytest.mark.django_db
def test_identities_shared_by_two_contacts_merge_and_the_old_id_points_at_the_survivor(api, ws):
    old = post(
        api, "/api/v1/contacts", [_contact(name="李雷", first_seen_at="2025-01-01T00:00:00+08:00")]
    ).json()
    new = post(
        api, "/api/v1/contacts", [{"identities": [{"kind": "member_no", "value": "M-77"}]}]
    ).json()
    survivor_id, merged_id = old["items"][0]["contact_id"], new["items"][0]["contact_id"]

    both = [
        {
            "identities": [
                {"kind": "phone", "value": "+86 138 1234 5678"},
                {"kind": "member_no", "value": "M-77"},
            ]
        }
    ]
    response = post(api, "/api/v1/contacts", both).json()

    assert response["items"] == [
        {"contact_id": survivor_id, "created": False, "merged_ids": [merged_id]}
    ]
    assert response["merged"] == 1
    assert ContactMerge.objects.get(workspace=ws).merged_contact_id == merged_id
    gone = api.get(f"/api/v1/contacts/{merged_id}")
    assert gone.status_code == 404
    assert gone.json() == {
        "code": "contact_merged",
        "detail": f"Contact {merged_id} was merged into {survivor_id}.",
    }
    kept = api.get(f"/api/v1/contacts/{survivor_id}").json()
    assert kept["member_no"] == "M-77"
    assert sorted(i["display"] for i in kept["identities"]) == ["138****5678", "M-77"]


@pytest.mark.django_db
def test_get_contact_shows_masked_identities_consent_first_touch_and_codes(api, ws):
    store = factories.store(ws, code="SH-01")
    staff = factories.staff(ws, store, code="E-9")
    item = _contact(
        name="王芳",
        source_channel="store_qr",
        first_touch={
            "campaign": "会员日",
            "state": "qr-sh01",
            "store_code": "SH-01",
            "staff_code": "E-9",
        },
        store_code=store.code,
        owner_staff_code=staff.code,
        consent={"sms": "granted", "wecom": "opted_out"},
        identities=[
            {"kind": "phone", "value": PHONE},
            {"kind": "email", "value": "Wang.Fang@Example.com"},
        ],
    )
    contact_id = post(api, "/api/v1/contacts", [item]).json()["items"][0]["contact_id"]

    response = api.get(f"/api/v1/contacts/{contact_id}")
    body = response.json()

    assert response.status_code == 200
    assert PHONE not in response.content.decode() and "wang.fang" not in response.content.decode()
    assert body["phone"] == "138****5678"
    assert body["identities"] == [
        {"kind": "email", "app_id": "", "display": "w***@example.com"},
        {"kind": "phone", "app_id": "", "display": "138****5678"},
    ]
    assert body["consent"] == {"sms": "granted", "wecom": "opted_out"}
    assert body["source_channel"] == "store_qr"
    assert body["first_touch"] == {
        "campaign": "会员日",
        "state": "qr-sh01",
        "store_code": "SH-01",
        "staff_code": "E-9",
    }
    assert (body["store_code"], body["owner_staff_code"]) == ("SH-01", "E-9")


@pytest.mark.django_db
def test_another_workspaces_contact_is_not_found_and_left_unchanged(api, other_api, other_ws):
    theirs = factories.contact(other_ws, phone=PHONE, name="别家")
    factories.contact(other_ws, phone="13900000003")

    assert api.get(f"/api/v1/contacts/{theirs.id}").status_code == 404
    response = put(
        api, f"/api/v1/contacts/{theirs.id}/consent", {"channel": "sms", "status": "opted_out"}
    )

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": f"Contact {theirs.id} not found."}
    assert Consent.objects.filter(contact=theirs).count() == 0
    assert Contact.objects.filter(workspace=other_ws).count() == 2
    assert other_api.get(f"/api/v1/contacts/{theirs.id}").json()["name"] == "别家"


@pytest.mark.django_db
def test_the_same_phone_in_two_workspaces_stays_two_contacts(api, other_api, ws, other_ws):
    post(api, "/api/v1/contacts", [_contact(name="A")])
    post(other_api, "/api/v1/contacts", [_contact(name="B")])
    assert Contact.objects.get(workspace=ws).name == "A"
    assert Contact.objects.get(workspace=other_ws).name == "B"


@pytest.mark.django_db
def test_consent_set_reports_whether_it_changed(api, ws):
    contact = factories.contact(ws, phone=PHONE)
    url = f"/api/v1/contacts/{contact.id}/consent"
    first = put(api, url, {"channel": "sms", "status": "opted_out"}).json()
    again = put(api, url, {"channel": "sms", "status": "opted_out"}).json()
    assert first == {"changed": True, "consent": {"sms": "opted_out"}}
    assert again == {"changed": False, "consent": {"sms": "opted_out"}}
    assert Consent.objects.get(contact=contact).source == "api"


@pytest.mark.django_db
def test_consent_with_unknown_channel_is_refused(api, ws):
    contact = factories.contact(ws, phone=PHONE)
    response = put(
        api, f"/api/v1/contacts/{contact.id}/consent", {"channel": "fax", "status": "granted"}
    )
    assert errors(response)[0]["path"] == "channel"
    assert Consent.objects.count() == 0


@pytest.mark.django_db
def test_bad_contacts_refuse_the_whole_batch_naming_each(api, ws):
    factories.store(ws, code="SH-01")
    batch = [
        _contact("13900000001"),
        _contact("13900000002", mood="happy"),
        _contact("12345"),
        _contact("13900000004", store_code="NOPE"),
        _contact("13900000005", birthday="2026-02-30"),
    ]
    response = post(api, "/api/v1/contacts", batch)
    # Shape errors are found first; fixing those reveals the reference errors.
    assert errors(response) == [
        {"path": "1.mood", "message": "Extra inputs are not permitted"},
        {
            "path": "4.birthday",
            "message": "Input should be a valid date or datetime, day value is outside expected range",
        },
    ]
    response = post(api, "/api/v1/contacts", batch[:1] + batch[2:4])
    assert response.json()["code"] == "invalid_batch"
    assert errors(response) == [
        {
            "path": "1.identities.0.value",
            "message": "'12345' is not a valid phone number (mainland mobile or +country code).",
        },
        {"path": "2.store_code", "message": "unknown store code 'NOPE'"},
    ]
    assert Contact.objects.count() == 0


@pytest.mark.django_db
def test_mojibake_and_unusual_text_is_stored_as_sent(api):
    garbage = "锟斤拷烫烫烫 ÃÂ¤Ã¤Â¸Â­ \u00a0\ufffd 𠀀"
    contact_id = post(api, "/api/v1/contacts", [_contact(name=garbage.strip())]).json()["items"][0][
        "contact_id"
    ]
    assert api.get(f"/api/v1/contacts/{contact_id}").json()["name"] == garbage.strip()


@pytest.mark.django_db
def test_search_finds_by_masked_or_full_phone_and_shows_masked_only(api, ws):
    factories.contact(ws, phone=PHONE, name="王芳")
    factories.contact(ws, phone="13900000009", name="李雷")
    for q in ("138****5678", "138 1234 5678", "王"):
        body = api.get("/api/v1/contacts", {"q": q}).json()
        assert [c["name"] for c in body["items"]] == ["王芳"]
        assert body["items"][0]["phone"] == "138****5678"


@pytest.mark.django_db
def test_list_pages_with_a_cursor_newest_first(api, ws):
    ids = [
        factories.contact(ws, first_seen_at=f"2026-01-0{day}T00:00:00+00:00").id
        for day in range(1, 6)
    ]
    first = api.get("/api/v1/contacts", {"limit": 2}).json()
    second = api.get("/api/v1/contacts", {"limit": 2, "cursor": first["next_cursor"]}).json()
    last = api.get("/api/v1/contacts", {"limit": 2, "cursor": second["next_cursor"]}).json()
    seen = [c["id"] for page in (first, second, last) for c in page["items"]]
    assert seen == ids[::-1]
    assert last["next_cursor"] is None


@pytest.mark.django_db
def test_list_refuses_a_forged_cursor_and_a_too_large_limit(api):
    bad = api.get("/api/v1/contacts", {"cursor": "not-a-cursor"})
    assert bad.status_code == 422
    assert bad.json() == {
        "code": "invalid_cursor",
        "detail": "cursor is not one this API gave out",
        "path": "cursor",
    }
    assert errors(api.get("/api/v1/contacts", {"limit": 500})) == [
        {"path": "limit", "message": "Input should be less than or equal to 200"}
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("count", [3, 30])
def test_list_costs_the_same_queries_however_many_contacts(
    api, ws, count, django_assert_num_queries
):
    store = factories.store(ws)
    staff = factories.staff(ws, store)
    for n in range(count):
        factories.contact(
            ws,
            phone=f"139{n:08d}",
            identities=[
                {"kind": "phone", "value": f"139{n:08d}"},
                {"kind": "member_no", "value": f"M{n}"},
            ],
            store_code=store.code,
            owner_staff_code=staff.code,
            consent={"sms": "granted"},
        )
    api.get("/api/v1/workspace")  # the key's last-use mark is written at most once a minute
    # key, contacts with store and staff, identities, consents
    with django_assert_num_queries(4):
        body = api.get("/api/v1/contacts", {"limit": 50}).json()
    assert len(body["items"]) == count
    assert all(c["store_code"] == store.code and len(c["identities"]) == 2 for c in body["items"])
