"""Reads for tags and segments. A staff member's preview and member list are narrowed to their
store's contacts, like every contact list."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import ibis
from django.db import connection
from django.db.models import Count, QuerySet
from django.utils import timezone

from siyu.audiences.models import (
    Segment,
    SegmentChange,
    SegmentChangeKind,
    SegmentRefresh,
    SegmentSizeHistory,
    Tag,
    TagGroup,
)
from siyu.audiences.rules import compile_rule, rule_sql
from siyu.commerce import queries as commerce_queries
from siyu.contacts import pii
from siyu.contacts.identities import normalise_identity
from siyu.contacts.models import Contact, SourceChannel
from siyu.contacts.queries import contact_ids_by_identities, contacts_visible
from siyu.errors import NotFound, ValidationFailed
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
    store_id = _store_scope(workspace, membership)
    if store_id == _NO_STORE:
        return None
    return compile_rule(
        workspace=workspace, rule=rule, now=now or timezone.now(), store_id=store_id
    )


#: ``_store_scope`` of a staff login that belongs to no store: it sees no contacts.
_NO_STORE = -1


def _store_scope(workspace: Workspace, membership: Membership | None) -> int | None:
    """The store a staff member's rules are narrowed to; None for the other roles."""
    if membership is None or membership.role != Role.STAFF:
        return None
    store_id = commerce_queries.store_id_for_user(workspace=workspace, user=membership.user)
    return _NO_STORE if store_id is None else store_id


def segment_preview(
    *,
    workspace: Workspace,
    rule: Any,
    membership: Membership | None = None,
    now: datetime | None = None,
) -> Preview:
    """How many contacts a rule matches right now and the first 20 of them (by id), without
    saving anything. The rule runs once: the count rides along each sampled row as a window
    over all the matches (a count and a sample apart ran it twice, 3.5 s for an events rule
    at a million contacts)."""
    store_id = _store_scope(workspace, membership)
    if store_id == _NO_STORE:
        return Preview(count=0, sample=[])
    matches = rule_sql(workspace=workspace, rule=rule, now=now or timezone.now(), store_id=store_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT r.contact_id, COUNT(*) OVER () FROM ({matches.sql}) r "  # noqa: S608 - compiled rule
            f"ORDER BY r.contact_id LIMIT {SAMPLE_SIZE}",
            matches.params,
        )
        rows = cursor.fetchall()
    count = rows[0][1] if rows else 0
    ids = [row[0] for row in rows]
    sample = list(
        Contact.objects.filter(workspace=workspace, id__in=ids)
        .select_related("store")
        .order_by("id")
    )
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


# --- console ------------------------------------------------------------------------------------

LIST_COLUMNS = ("phone", "member_no", "contact_id")


@dataclass(frozen=True)
class ListProblem:
    """A line of an uploaded list that names nobody; ``shown`` is safe to display (a phone is
    masked)."""

    line: int
    column: str
    reason: str  # "unknown" or "invalid"
    shown: str


def contacts_from_list(
    *, workspace: Workspace, column: str, values: list[str], first_line: int = 2
) -> tuple[list[int], list[ListProblem]]:
    """The contacts a list of phones, member numbers or contact ids names (line ``first_line``
    is ``values[0]``: the header is line 1), and the lines that name nobody. Phones and member
    numbers are looked up by their identity hash, 500 at a time, never by decrypting."""
    if column not in LIST_COLUMNS:
        raise ValidationFailed(
            "invalid", f"the column is one of: {', '.join(LIST_COLUMNS)}", path="column"
        )
    problems: list[ListProblem] = []
    wanted: list[tuple[int, Any]] = []  # (line, lookup key)
    for offset, raw in enumerate(values):
        line, value = first_line + offset, raw.strip()
        if not value:
            continue
        if column == "contact_id":
            if not value.isdigit():
                problems.append(ListProblem(line, column, "invalid", value[:32]))
                continue
            wanted.append((line, int(value)))
            continue
        try:
            ident = normalise_identity(column, value)
        except ValidationFailed:
            problems.append(ListProblem(line, column, "invalid", value[:32]))
            continue
        wanted.append((line, ident))
    if column == "contact_id":
        keys = {key for _, key in wanted}
        found = {
            cid: cid
            for cid in Contact.objects.filter(workspace=workspace, id__in=keys).values_list(
                "id", flat=True
            )
        }
    else:
        by_key = contact_ids_by_identities(workspace=workspace, identities=[i for _, i in wanted])
        found = {ident: by_key[ident.key] for _, ident in wanted if ident.key in by_key}
    ids = []
    for line, key in wanted:
        if key in found:
            ids.append(found[key])
        else:
            shown = str(key) if column == "contact_id" else key.display()
            problems.append(ListProblem(line, column, "unknown", shown))
    problems.sort(key=lambda p: p.line)
    return ids, problems


def segment_export_rows(
    *,
    workspace: Workspace,
    segment: Segment,
    membership: Membership | None,
    full_phone: bool,
) -> Iterator[list[str]]:
    """The members as CSV rows, streamed 2,000 at a time so an export of a million members holds
    little memory. Phones are masked unless ``full_phone``."""
    labels = dict(SourceChannel.choices)
    tz = ZoneInfo(workspace.time_zone)
    rows = (
        segment_members(workspace=workspace, segment=segment, membership=membership)
        .select_related("store")
        .only(
            "id",
            "name",
            "nickname",
            "phone_enc",
            "phone_masked",
            "store__name",
            "source_channel",
            "first_seen_at",
        )
    )
    for c in rows.iterator(chunk_size=2000):
        phone = pii.decrypt(c.phone_enc) if full_phone and c.phone_enc else c.phone_masked
        yield [
            str(c.id),
            c.name or c.nickname,
            phone,
            c.store.name if c.store else "",
            str(labels.get(c.source_channel, c.source_channel)),
            c.first_seen_at.astimezone(tz).isoformat(timespec="seconds"),
        ]


@dataclass(frozen=True)
class RefreshLog:
    refresh: SegmentRefresh
    entered: list[Contact]
    left: list[Contact]


def segment_refresh_log(
    *,
    workspace: Workspace,
    segment: Segment,
    membership: Membership | None = None,
    refreshes: int = 10,
    names: int = 20,
) -> list[RefreshLog]:
    """The latest refreshes with the first ``names`` contacts who entered and who left at each
    (those the viewer may see): two small indexed queries per refresh, however many changed.
    The first ids are taken from the changes in contact order (their index) and only then
    joined to the contacts: the other way round, the first refresh's few hundred thousand
    entrants were all read to name twenty (1.3 s at a million contacts)."""
    visible = contacts_visible(workspace=workspace, membership=membership)
    log = []
    for refresh in segment_refreshes(workspace=workspace, segment=segment)[:refreshes]:
        who = {}
        for kind in (SegmentChangeKind.ENTERED, SegmentChangeKind.LEFT):
            first = (
                SegmentChange.objects.filter(
                    workspace=workspace, refresh=refresh, change=kind, contact__in=visible
                )
                .order_by("contact_id")
                .values("contact_id")[:names]
            )
            who[kind] = list(visible.filter(id__in=first).order_by("id"))
        log.append(RefreshLog(refresh, who[SegmentChangeKind.ENTERED], who[SegmentChangeKind.LEFT]))
    return log


def tag_groups_with_tags(*, workspace: Workspace) -> list[tuple[TagGroup, list[Tag]]]:
    """Every group with its tags and each tag's contact count, empty groups included: two
    queries."""
    by_group: dict[int, list[Tag]] = {}
    for tag in tags_list(workspace=workspace):
        by_group.setdefault(tag.group_id, []).append(tag)
    return [(g, by_group.get(g.id, [])) for g in tag_groups_list(workspace=workspace)]


def tag_group_get(*, workspace: Workspace, group_id: int) -> TagGroup:
    group = TagGroup.objects.filter(workspace=workspace, id=group_id).first()
    if group is None:
        raise NotFound("not_found", f"Tag group {group_id} not found.")
    return group
