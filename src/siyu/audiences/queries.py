"""Reads for tags and segments. A staff member's preview and member list are narrowed to their
store's contacts, like every contact list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
from django.db.models import Count, QuerySet
from django.utils import timezone

from siyu.analytics.tables import fetch
from siyu.audiences.models import (
    Segment,
    SegmentChange,
    SegmentRefresh,
    SegmentSizeHistory,
    Tag,
    TagGroup,
)
from siyu.audiences.rules import compile_rule
from siyu.commerce import queries as commerce_queries
from siyu.contacts.models import Contact
from siyu.contacts.queries import contacts_visible
from siyu.errors import NotFound
from siyu.tenancy.models import Membership, Role, Workspace

SAMPLE_SIZE = 20


@dataclass(frozen=True)
class Preview:
    count: int
    sample: list[Contact]


def segment_expression(
    *,
    workspace: Workspace,
    rule: Any,
    membership: Membership | None = None,
    now: datetime | None = None,
) -> ibis.Table | None:
    """The rule's Ibis expression as ``membership`` may see it; None for a staff login that
    belongs to no store (it sees no contacts)."""
    store_id = None
    if membership is not None and membership.role == Role.STAFF:
        store_id = commerce_queries.store_id_for_user(workspace=workspace, user=membership.user)
        if store_id is None:
            return None
    return compile_rule(
        workspace=workspace, rule=rule, now=now or timezone.now(), store_id=store_id
    )


def segment_preview(
    *,
    workspace: Workspace,
    rule: Any,
    membership: Membership | None = None,
    now: datetime | None = None,
) -> Preview:
    """How many contacts a rule matches right now and the first 20 of them (by id), without
    saving anything: two statements on the database, whatever the pool's size."""
    expr = segment_expression(workspace=workspace, rule=rule, membership=membership, now=now)
    if expr is None:
        return Preview(count=0, sample=[])
    [(count,)] = fetch(expr.count())
    ids = [row[0] for row in fetch(expr.order_by("contact_id").limit(SAMPLE_SIZE))]
    sample = list(Contact.objects.filter(workspace=workspace, id__in=ids).order_by("id"))
    return Preview(count=count, sample=sample)


def segments_list(*, workspace: Workspace) -> QuerySet[Segment]:
    return Segment.objects.filter(workspace=workspace).order_by("name")


def segment_get(*, workspace: Workspace, segment_id: int) -> Segment:
    segment = Segment.objects.filter(workspace=workspace, id=segment_id).first()
    if segment is None:
        raise NotFound("not_found", f"Segment {segment_id} not found.")
    return segment


def segment_members(
    *, workspace: Workspace, segment: Segment, membership: Membership | None = None
) -> QuerySet[Contact]:
    """The members as of the last refresh, newest contacts last (ordered by id)."""
    return (
        contacts_visible(workspace=workspace, membership=membership)
        .filter(segment_memberships__segment=segment)
        .order_by("id")
    )


def segment_refreshes(*, workspace: Workspace, segment: Segment) -> QuerySet[SegmentRefresh]:
    return SegmentRefresh.objects.filter(workspace=workspace, segment=segment).order_by(
        "-started_at", "-id"
    )


def segment_changes(*, workspace: Workspace, refresh: SegmentRefresh) -> QuerySet[SegmentChange]:
    return SegmentChange.objects.filter(workspace=workspace, refresh=refresh).order_by(
        "change", "contact_id"
    )


def segment_size_history(*, workspace: Workspace, segment: Segment) -> QuerySet[SegmentSizeHistory]:
    return SegmentSizeHistory.objects.filter(workspace=workspace, segment=segment).order_by("date")


def tag_groups_list(*, workspace: Workspace) -> QuerySet[TagGroup]:
    return TagGroup.objects.filter(workspace=workspace).order_by("name")


def tags_list(*, workspace: Workspace) -> QuerySet[Tag]:
    """Tags with their group and how many contacts carry each, in one query."""
    return (
        Tag.objects.filter(workspace=workspace)
        .select_related("group")
        .annotate(contacts_count=Count("contact_tags"))
        .order_by("group__name", "name")
    )


def tag_get(*, workspace: Workspace, tag_id: int) -> Tag:
    tag = Tag.objects.filter(workspace=workspace, id=tag_id).select_related("group").first()
    if tag is None:
        raise NotFound("not_found", f"Tag {tag_id} not found.")
    return tag


def tags_for_contact(*, workspace: Workspace, contact: Contact) -> QuerySet[Tag]:
    return (
        Tag.objects.filter(workspace=workspace, contact_tags__contact=contact)
        .select_related("group")
        .order_by("name")
    )
