"""Segments and tags over the API: preview a rule, save and refresh segments, list members, create
tags and tag contacts in bulk (by ids or a whole segment). Rule errors answer 422 with the
path of the offending part of the rule (``rule.all.2.orders.count``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from siyu.api.common import ErrorOut, api_actor, local_time
from siyu.audiences import queries, services
from siyu.audiences.models import Segment, SegmentKind, TagSource
from siyu.contacts.models import Contact
from siyu.errors import ValidationFailed
from siyu.schemas import StrictModel
from siyu.tenancy.models import Workspace

router = Router()


class RuleIn(StrictModel):
    rule: dict[str, Any] = Field(description="a segment rule, see docs/segment-rules.md")


class SegmentIn(StrictModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=500)
    kind: SegmentKind = SegmentKind.DYNAMIC
    rule: dict[str, Any]


class ContactBriefOut(Schema):
    id: int
    name: str
    city: str
    phone: str = Field(description="masked")


class PreviewOut(Schema):
    count: int
    sample: list[ContactBriefOut]


class SegmentOut(Schema):
    id: int
    name: str
    description: str
    kind: str
    rule: dict[str, Any]
    status: str = Field(
        description="new, ready or failed; a failed refresh keeps the previous members"
    )
    size: int
    refreshed_at: datetime | None
    last_error: str


class MembersParams(Schema):
    limit: int = Field(100, ge=1, le=1000)
    after: int = Field(0, ge=0, description="the last contact id of the previous page")


class MembersOut(Schema):
    items: list[ContactBriefOut]
    next_after: int | None


class TagIn(StrictModel):
    group: str = Field(
        min_length=1, max_length=64, description="the tag group's name; created if new"
    )
    name: str = Field(min_length=1, max_length=64)
    color: str = "#6b7280"
    rule: dict[str, Any] | None = Field(None, description="makes an auto tag")


class TagOut(Schema):
    id: int
    group: str
    name: str
    color: str
    rule: dict[str, Any] | None


class TagContactsIn(StrictModel):
    contact_ids: list[int] | None = Field(None, max_length=services.MAX_TAG_IDS)
    segment_id: int | None = None
    remove: bool = Field(False, description="untag instead of tag")


class TagContactsOut(Schema):
    changed: int


def _brief(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "name": contact.display_name,
        "city": contact.city,
        "phone": contact.phone_masked,
    }


def _segment_out(segment: Segment, workspace: Workspace) -> dict[str, Any]:
    return {
        "id": segment.id,
        "name": segment.name,
        "description": segment.description,
        "kind": segment.kind,
        "rule": segment.rule,
        "status": segment.status,
        "size": segment.size,
        "refreshed_at": local_time(segment.refreshed_at, workspace),
        "last_error": segment.last_error,
    }


def _rule_path(exc: ValidationFailed) -> ValidationFailed:
    return ValidationFailed(
        exc.code, exc.message, path="rule" + (f".{exc.path}" if exc.path else "")
    )


@router.post(
    "/segments/preview",
    response={200: PreviewOut, 422: ErrorOut},
    summary="Count and sample a rule",
)
def segment_preview(request: HttpRequest, payload: RuleIn) -> dict:
    try:
        preview = queries.segment_preview(workspace=request.workspace, rule=payload.rule)
    except ValidationFailed as exc:
        raise _rule_path(exc) from exc
    return {"count": preview.count, "sample": [_brief(c) for c in preview.sample]}


@router.post("/segments", response={201: SegmentOut, 422: ErrorOut}, summary="Save a segment")
def segment_create(request: HttpRequest, payload: SegmentIn) -> Status:
    segment = services.segment_create(
        workspace=request.workspace,
        name=payload.name,
        rule=payload.rule,
        kind=payload.kind,
        description=payload.description,
        actor=api_actor(request),
    )
    return Status(201, _segment_out(segment, request.workspace))


@router.get("/segments", response=list[SegmentOut], summary="List segments")
def segments_list(request: HttpRequest) -> list[dict]:
    return [
        _segment_out(s, request.workspace)
        for s in queries.segments_list(workspace=request.workspace)
    ]


@router.post(
    "/segments/{segment_id}/refresh",
    response={200: SegmentOut, 404: ErrorOut, 422: ErrorOut},
    summary="Recompute a dynamic segment",
    description="Answers with the segment; when the refresh failed, status is `failed`, "
    "`last_error` says why, and the members are those of the last good refresh.",
)
def segment_refresh(request: HttpRequest, segment_id: int) -> dict:
    segment = queries.segment_get(workspace=request.workspace, segment_id=segment_id)
    segment = services.segment_refresh(workspace=request.workspace, segment=segment)
    return _segment_out(segment, request.workspace)


@router.get(
    "/segments/{segment_id}/members",
    response={200: MembersOut, 404: ErrorOut},
    summary="Members as of the last refresh",
)
def segment_members(request: HttpRequest, segment_id: int, params: Query[MembersParams]) -> dict:
    segment = queries.segment_get(workspace=request.workspace, segment_id=segment_id)
    qs = queries.segment_members(workspace=request.workspace, segment=segment).filter(
        id__gt=params.after
    )
    page = list(qs[: params.limit + 1])
    more = len(page) > params.limit
    page = page[: params.limit]
    return {"items": [_brief(c) for c in page], "next_after": page[-1].id if more else None}


@router.post("/tags", response={201: TagOut, 422: ErrorOut}, summary="Create a tag")
def tag_create(request: HttpRequest, payload: TagIn) -> Status:
    group = services.tag_group_create(workspace=request.workspace, name=payload.group)
    tag = services.tag_create(
        workspace=request.workspace,
        group=group,
        name=payload.name,
        color=payload.color,
        rule=payload.rule,
    )
    return Status(
        201,
        {"id": tag.id, "group": group.name, "name": tag.name, "color": tag.color, "rule": tag.rule},
    )


@router.post(
    "/tags/{tag_id}/contacts",
    response={200: TagContactsOut, 404: ErrorOut, 422: ErrorOut},
    summary="Tag (or untag) contacts by ids or a whole segment",
)
def tag_contacts(request: HttpRequest, tag_id: int, payload: TagContactsIn) -> dict:
    workspace = request.workspace
    if (payload.contact_ids is None) == (payload.segment_id is None):
        raise ValidationFailed(
            "invalid", "give contact_ids or segment_id, not both", path="contact_ids"
        )
    tag = queries.tag_get(workspace=workspace, tag_id=tag_id)
    segment = (
        queries.segment_get(workspace=workspace, segment_id=payload.segment_id)
        if payload.segment_id
        else None
    )
    if payload.remove:
        changed = services.untag_contacts(
            workspace=workspace, tag=tag, contact_ids=payload.contact_ids, segment=segment
        )
    else:
        changed = services.tag_contacts(
            workspace=workspace,
            tag=tag,
            contact_ids=payload.contact_ids,
            segment=segment,
            source=TagSource.API,
        )
    return {"changed": changed}
