"""Contacts over the API: upsert by identities (merging when they meet), read one, search,
and set consent. API keys only ever see masked phones and e-mails."""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime
from typing import Any

from django.db.models import Prefetch, Q
from django.http import HttpRequest
from ninja import Body, Field, Query, Router, Schema

from siyu.api.common import ErrorOut, batch_of, local_time
from siyu.contacts import queries, services
from siyu.contacts.models import ConsentChannel, ConsentStatus, Contact, Identity
from siyu.contacts.schemas import ContactIn
from siyu.errors import ValidationFailed
from siyu.ingest import BatchResult, RowError
from siyu.schemas import StrictModel
from siyu.tenancy.models import Workspace

router = Router()

ContactBatch = batch_of(ContactIn)


class UpsertItemOut(Schema):
    contact_id: int
    created: bool
    merged_ids: list[int]


class UpsertOut(Schema):
    created: int
    existing: int
    merged: int
    items: list[UpsertItemOut]


class IdentityOut(Schema):
    kind: str
    app_id: str
    display: str = Field(description="masked for phone and e-mail")


class FirstTouchOut(Schema):
    campaign: str
    state: str
    store_code: str | None
    staff_code: str | None


class ContactOut(Schema):
    id: int
    name: str
    nickname: str
    gender: str
    birthday: date | None
    city: str
    phone: str = Field(description="masked, e.g. 138****5678")
    member_no: str
    source_channel: str
    first_seen_at: datetime
    first_touch: FirstTouchOut
    store_code: str | None
    owner_staff_code: str | None
    referred_by_id: int | None
    identities: list[IdentityOut]
    consent: dict[str, str]
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ContactPageOut(Schema):
    items: list[ContactOut]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last"
    )


class ContactListParams(Schema):
    q: str = Field(
        "", max_length=100, description="name, nickname, member number, phone or 138****5678"
    )
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None


class ConsentIn(StrictModel):
    channel: ConsentChannel
    status: ConsentStatus
    source: str = Field(default="api", max_length=64)


class ConsentOut(Schema):
    changed: bool
    consent: dict[str, str]


def _code(obj: Any) -> str | None:
    return obj.code if obj is not None else None


def _contact_out(contact: Contact, workspace: Workspace) -> dict[str, Any]:
    """Reads identities and consents through ``.all()`` so a prefetched list costs no query."""
    return {
        "id": contact.id,
        "name": contact.name,
        "nickname": contact.nickname,
        "gender": contact.gender,
        "birthday": contact.birthday,
        "city": contact.city,
        "phone": contact.phone_masked,
        "member_no": contact.member_no,
        "source_channel": contact.source_channel,
        "first_seen_at": local_time(contact.first_seen_at, workspace),
        "first_touch": {
            "campaign": contact.first_touch_campaign,
            "state": contact.first_touch_state,
            "store_code": _code(contact.first_touch_store),
            "staff_code": _code(contact.first_touch_staff),
        },
        "store_code": _code(contact.store),
        "owner_staff_code": _code(contact.owner_staff),
        "referred_by_id": contact.referred_by_id,
        "identities": [
            {"kind": i.kind, "app_id": i.app_id, "display": i.display}
            for i in sorted(contact.identities.all(), key=lambda i: (i.kind, i.created_at, i.id))
        ],
        "consent": {c.channel: c.status for c in contact.consents.all()},
        "attributes": contact.attributes or {},
        "created_at": local_time(contact.created_at, workspace),
        "updated_at": local_time(contact.updated_at, workspace),
    }


_RELATED = ("store", "owner_staff", "first_touch_store", "first_touch_staff")


def _with_related(qs):
    return qs.select_related(*_RELATED).prefetch_related(
        Prefetch("identities", queryset=Identity.objects.order_by("kind", "created_at", "id")),
        "consents",
    )


def _encode_cursor(contact: Contact) -> str:
    raw = f"{contact.first_seen_at.isoformat()}|{contact.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        stamp, _, pk = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(stamp), int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed(
            "invalid_cursor", "cursor is not one this API gave out", path="cursor"
        ) from exc


@router.post(
    "/contacts",
    response={200: UpsertOut, 422: ErrorOut},
    summary="Upsert contacts by their identities",
    description="Each item is matched by any of its identities; identities that belong to several "
    "contacts merge them into the oldest (merged_ids). At most 1000 items.",
)
def contacts_upsert(request: HttpRequest, payload: Body[ContactBatch]) -> dict:
    workspace = request.workspace
    bad = services.validate_contacts(workspace=workspace, items=payload)
    BatchResult(
        errors=[RowError(i, exc.path or "", exc.message) for i, exc in bad.items()]
    ).raise_if_errors()
    results = services.contacts_upsert(workspace=workspace, items=payload, api_key=request.api_key)
    created = sum(r.created for r in results)
    return {
        "created": created,
        "existing": len(results) - created,
        "merged": sum(len(r.merged_ids) for r in results),
        "items": [
            {"contact_id": r.contact.id, "created": r.created, "merged_ids": r.merged_ids}
            for r in results
        ],
    }


@router.get("/contacts", response={200: ContactPageOut, 422: ErrorOut}, summary="Search contacts")
def contacts_list(request: HttpRequest, params: Query[ContactListParams]) -> dict:
    workspace = request.workspace
    qs = queries.contacts_search(workspace=workspace, q=params.q)
    if params.cursor:
        seen_at, pk = _decode_cursor(params.cursor)
        qs = qs.filter(Q(first_seen_at__lt=seen_at) | Q(first_seen_at=seen_at, id__lt=pk))
    page = list(_with_related(qs)[: params.limit + 1])
    more = len(page) > params.limit
    page = page[: params.limit]
    return {
        "items": [_contact_out(c, workspace) for c in page],
        "next_cursor": _encode_cursor(page[-1]) if more else None,
    }


@router.get(
    "/contacts/{contact_id}", response={200: ContactOut, 404: ErrorOut}, summary="One contact"
)
def contact_get(request: HttpRequest, contact_id: int) -> dict:
    workspace = request.workspace
    contact = queries.contact_get(workspace=workspace, contact_id=contact_id)
    return _contact_out(contact, workspace)


@router.put(
    "/contacts/{contact_id}/consent",
    response={200: ConsentOut, 404: ErrorOut, 422: ErrorOut},
    summary="Set consent for one channel",
)
def contact_consent_set(request: HttpRequest, contact_id: int, payload: ConsentIn) -> dict:
    workspace = request.workspace
    contact = queries.contact_get(workspace=workspace, contact_id=contact_id)
    current = {c.channel: c.status for c in contact.consents.all()}
    changed = current.get(payload.channel) != payload.status
    if changed:
        services.consent_set(
            workspace=workspace,
            contact=contact,
            channel=payload.channel,
            status=payload.status,
            source=payload.source,
        )
        current[payload.channel] = payload.status
    return {"changed": changed, "consent": {str(k): str(v) for k, v in current.items()}}
