from datetime import UTC, datetime

import pytest

from siyu.commerce.models import Order
from siyu.contacts import pii
from siyu.contacts.models import Consent, Contact, ContactMerge, Identity
from siyu.contacts.schemas import ContactIn
from siyu.contacts.services import contacts_upsert
from siyu.errors import ValidationFailed
from tests import factories


def _upsert(ws, **kw):
    return contacts_upsert(workspace=ws, items=[ContactIn(**kw)])[0]


@pytest.mark.django_db
def test_phone_is_normalised_encrypted_and_masked(ws):
    result = _upsert(ws, identities=[{"kind": "phone", "value": "138-1234-5678"}], name="王芳")
    c = result.contact
    assert result.created
    assert c.phone_masked == "138****5678"
    assert "13812345678" not in c.phone_enc
    assert pii.decrypt(c.phone_enc) == "+8613812345678"
    ident = Identity.objects.get(contact=c)
    assert ident.display == "138****5678" and "138" not in ident.value


@pytest.mark.django_db
def test_same_phone_in_other_format_finds_same_contact(ws):
    first = _upsert(ws, identities=[{"kind": "phone", "value": "13812345678"}]).contact
    again = _upsert(ws, identities=[{"kind": "phone", "value": "+86 138 1234 5678"}], city="上海")
    assert not again.created and again.contact.id == first.id
    assert Contact.objects.get(id=first.id).city == "上海"


@pytest.mark.django_db
def test_identities_of_two_contacts_merge_into_the_oldest_with_audit(ws):
    old = _upsert(ws, identities=[{"kind": "phone", "value": "13800000001"}], name="李雷",
                  first_seen_at=datetime(2025, 1, 1, tzinfo=UTC)).contact
    young = _upsert(ws, identities=[{"kind": "wechat_unionid", "value": "u-1"}], nickname="lilei",
                    first_seen_at=datetime(2026, 1, 1, tzinfo=UTC)).contact
    Order.objects.create(workspace=ws, order_no="A1", contact=young, channel="store", paid_at=datetime(2026, 2, 1, tzinfo=UTC),
                         gross_amount="10.00", amount="10.00")
    result = _upsert(ws, identities=[{"kind": "phone", "value": "13800000001"}, {"kind": "wechat_unionid", "value": "u-1"}])
    assert result.contact.id == old.id and result.merged_ids == [young.id]
    assert not Contact.objects.filter(id=young.id).exists()
    assert Order.objects.get(order_no="A1").contact_id == old.id
    assert Identity.objects.filter(contact_id=old.id).count() == 2
    merge = ContactMerge.objects.get(survivor=old)
    assert merge.merged_contact_id == young.id
    assert merge.merged_snapshot["fields"]["nickname"] == "lilei"
    assert Contact.objects.get(id=old.id).nickname == "lilei"


@pytest.mark.django_db
def test_opt_out_survives_a_merge(ws):
    a = _upsert(ws, identities=[{"kind": "phone", "value": "13800000002"}], consent={"sms": "granted"}).contact
    _upsert(ws, identities=[{"kind": "member_no", "value": "M2"}], consent={"sms": "opted_out"})
    _upsert(ws, identities=[{"kind": "phone", "value": "13800000002"}, {"kind": "member_no", "value": "M2"}])
    assert Consent.objects.get(contact_id=a.id, channel="sms").status == "opted_out"


@pytest.mark.django_db
def test_bad_phone_names_the_identity_path(ws):
    with pytest.raises(ValidationFailed) as exc:
        contacts_upsert(workspace=ws, items=[ContactIn(identities=[{"kind": "phone", "value": "12345"}])])
    assert exc.value.path == "0.identities.0.value"
    assert "not a valid phone number" in exc.value.message
    assert Contact.objects.count() == 0


@pytest.mark.django_db
def test_identities_never_cross_workspaces(ws, other_ws):
    a = _upsert(ws, identities=[{"kind": "phone", "value": "13800000003"}]).contact
    b = _upsert(other_ws, identities=[{"kind": "phone", "value": "13800000003"}]).contact
    assert a.id != b.id and b.workspace_id == other_ws.id


@pytest.mark.django_db
def test_openid_needs_app_id(ws):
    with pytest.raises(ValidationFailed, match="needs the app_id"):
        _upsert(ws, identities=[{"kind": "wechat_openid", "value": "o-1"}])


@pytest.mark.django_db
def test_unknown_store_code_is_refused(ws):
    factories.store(ws, code="SH01")
    with pytest.raises(ValidationFailed, match="unknown store code 'NOPE'"):
        _upsert(ws, identities=[{"kind": "member_no", "value": "M9"}], store_code="NOPE")


@pytest.mark.django_db
def test_resending_the_same_contact_writes_nothing(ws):
    item = {"identities": [{"kind": "phone", "value": "13800000004"}], "name": "赵", "consent": {"sms": "granted"}}
    first = _upsert(ws, **item).contact
    stamp = Contact.objects.get(id=first.id).updated_at
    consent_stamp = Consent.objects.get(contact=first).updated_at
    again = _upsert(ws, **item)
    assert not again.created
    assert Contact.objects.get(id=first.id).updated_at == stamp
    assert Consent.objects.get(contact=first).updated_at == consent_stamp


@pytest.mark.django_db
def test_an_item_merged_later_in_the_same_batch_answers_with_the_survivor(ws):
    _upsert(ws, identities=[{"kind": "member_no", "value": "OLD"}], first_seen_at=datetime(2024, 1, 1, tzinfo=UTC))
    results = contacts_upsert(workspace=ws, items=[
        ContactIn(identities=[{"kind": "phone", "value": "13800000005"}]),
        ContactIn(identities=[{"kind": "phone", "value": "13800000005"}, {"kind": "member_no", "value": "OLD"}]),
    ])
    assert results[0].contact.id == results[1].contact.id
    assert Contact.objects.filter(workspace=ws).count() == 1
