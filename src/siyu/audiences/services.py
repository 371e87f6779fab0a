"""Writes for tags and segments.

Membership is computed and written in SQL: the segment's rule compiles to one SELECT of contact
ids, and a refresh is four set statements (who left, who entered, delete the leavers, insert
the entrants) in one savepoint, so a refresh that fails leaves the previous membership exactly
as it was. Bulk tagging from a segment is one INSERT … SELECT.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import ibis
from django.db import DatabaseError, connection, models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from siyu import bulk
from siyu.analytics.tables import to_sql_fragment
from siyu.audiences.models import (
    ContactTag,
    Segment,
    SegmentChange,
    SegmentChangeKind,
    SegmentKind,
    SegmentMember,
    SegmentRefresh,
    SegmentSchedule,
    SegmentSizeHistory,
    SegmentStatus,
    Tag,
    TagGroup,
    TagSource,
)
from siyu.audiences.queries import ListProblem, contacts_from_list
from siyu.audiences.rules import RuleSQL, rule_sql, validate_rule
from siyu.contacts.models import Contact
from siyu.contacts.services import MERGE_HANDLERS
from siyu.errors import ValidationFailed
from siyu.tenancy.models import Workspace
from siyu.tenancy.services import audit_record

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_TAG_IDS = 10_000


def _q(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _db_time(moment: datetime) -> Any:
    """A timestamp as the database stores it (naive UTC text on SQLite), for raw statements."""
    return connection.ops.adapt_datetimefield_value(moment)


def _execute(sql: str, params: list[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# --- tags ---------------------------------------------------------------------------------------


def _check_tag_fields(*, name: str, color: str) -> None:
    if not name.strip() or len(name) > 64:
        raise ValidationFailed("invalid", "a tag name has 1 to 64 characters", path="name")
    if not _COLOR.match(color):
        raise ValidationFailed("invalid", "color is #rrggbb, e.g. #e11d48", path="color")


@transaction.atomic
def tag_group_create(*, workspace: Workspace, name: str) -> TagGroup:
    """Groups hold related tags (lifecycle, intent, interests); names are unique per workspace."""
    name = name.strip()
    if not name or len(name) > 64:
        raise ValidationFailed("invalid", "a tag group name has 1 to 64 characters", path="group")
    group, _ = TagGroup.objects.get_or_create(workspace=workspace, name=name)
    return group


@transaction.atomic
def tag_create(
    *, workspace: Workspace, group: TagGroup, name: str, color: str = "#6b7280", rule: Any = None
) -> Tag:
    """A tag, optionally an auto tag with a rule (validated like a segment's)."""
    if group.workspace_id != workspace.id:
        raise ValidationFailed(
            "invalid", "the tag group belongs to another workspace", path="group"
        )
    name = name.strip()
    _check_tag_fields(name=name, color=color)
    if Tag.objects.filter(group=group, name=name).exists():
        raise ValidationFailed(
            "duplicate", f"tag '{name}' already exists in group '{group.name}'", path="name"
        )
    if rule is not None:
        _validate(workspace, rule)
    return Tag.objects.create(workspace=workspace, group=group, name=name, color=color, rule=rule)


@transaction.atomic
def tag_update(*, workspace: Workspace, tag: Tag, name: str, color: str, rule: Any = None) -> Tag:
    name = name.strip()
    _check_tag_fields(name=name, color=color)
    if Tag.objects.filter(group_id=tag.group_id, name=name).exclude(id=tag.id).exists():
        raise ValidationFailed(
            "duplicate", f"tag '{name}' already exists in this group", path="name"
        )
    if rule is not None:
        _validate(workspace, rule)
    tag.name, tag.color, tag.rule = name, color, rule
    tag.save(update_fields=["name", "color", "rule"])
    return tag


@transaction.atomic
def tag_delete(*, workspace: Workspace, tag: Tag, actor: Any = None) -> Tag:
    """Removes the tag from every contact. Segments that name it will fail their next refresh
    (their membership stays as it was) until their rule is changed."""
    removed = ContactTag.objects.filter(workspace=workspace, tag=tag).count()
    audit_record(
        workspace=workspace,
        action="tag.delete",
        actor_user=actor,
        target=tag,
        data={"name": tag.name, "contacts": removed},
    )
    tag.delete()
    return tag


def _contact_ids_in_workspace(workspace: Workspace, contact_ids: list[int]) -> list[int]:
    if len(contact_ids) > MAX_TAG_IDS:
        raise ValidationFailed(
            "too_many", f"at most {MAX_TAG_IDS} contacts at a time", path="contact_ids"
        )
    unique = list(dict.fromkeys(contact_ids))
    known = set(
        Contact.objects.filter(workspace=workspace, id__in=unique).values_list("id", flat=True)
    )
    for i, cid in enumerate(contact_ids):
        if cid not in known:
            raise ValidationFailed(
                "unknown_reference",
                f"contact {cid} does not exist in this workspace",
                path=f"contact_ids.{i}",
            )
    return unique


def _check_same_workspace(workspace: Workspace, *objs: models.Model | None) -> None:
    for obj in objs:
        if obj is not None and obj.workspace_id != workspace.id:
            raise ValidationFailed(
                "cross_workspace", f"{obj._meta.verbose_name} {obj.pk} belongs to another workspace"
            )


@transaction.atomic
def tag_contacts(
    *,
    workspace: Workspace,
    tag: Tag,
    contact_ids: list[int] | None = None,
    segment: Segment | None = None,
    contacts: QuerySet[Contact] | None = None,
    source: str = TagSource.MANUAL,
) -> int:
    """Tags the given contacts (ids, or a queryset for a set too big to list, as a journey's
    step has), or every member of ``segment``; contacts already tagged keep their original
    source. Returns how many were newly tagged."""
    _check_same_workspace(workspace, tag, segment)
    now = timezone.now()
    if contacts is not None:
        sub_sql, sub_params = (
            contacts.filter(workspace=workspace).values("id").query.sql_with_params()
        )
        sql = (
            f"INSERT INTO {_q(ContactTag)} (workspace_id, contact_id, tag_id, source, created_at) "  # noqa: S608 - table names from models
            f"SELECT %s, c.id, %s, %s, %s FROM ({sub_sql}) c "
            f"WHERE NOT EXISTS (SELECT 1 FROM {_q(ContactTag)} t WHERE t.tag_id = %s AND t.contact_id = c.id)"
        )
        return _execute(sql, [workspace.id, tag.id, source, _db_time(now), *sub_params, tag.id])
    if segment is not None:
        sql = (
            f"INSERT INTO {_q(ContactTag)} (workspace_id, contact_id, tag_id, source, created_at) "  # noqa: S608 - table names from models
            f"SELECT %s, m.contact_id, %s, %s, %s FROM {_q(SegmentMember)} m WHERE m.segment_id = %s "
            f"AND NOT EXISTS (SELECT 1 FROM {_q(ContactTag)} t WHERE t.tag_id = %s AND t.contact_id = m.contact_id)"
        )
        return _execute(sql, [workspace.id, tag.id, source, _db_time(now), segment.id, tag.id])
    ids = _contact_ids_in_workspace(workspace, contact_ids or [])
    already = set(
        ContactTag.objects.filter(tag=tag, contact_id__in=ids).values_list("contact_id", flat=True)
    )
    new = [
        ContactTag(workspace=workspace, contact_id=cid, tag=tag, source=source, created_at=now)
        for cid in ids
        if cid not in already
    ]
    ContactTag.objects.bulk_create(new, batch_size=2000)
    return len(new)


@transaction.atomic
def untag_contacts(
    *,
    workspace: Workspace,
    tag: Tag,
    contact_ids: list[int] | None = None,
    segment: Segment | None = None,
    contacts: QuerySet[Contact] | None = None,
) -> int:
    """Removes the tag from the given contacts (ids or a queryset) or from every member of
    ``segment``."""
    _check_same_workspace(workspace, tag, segment)
    rows = ContactTag.objects.filter(workspace=workspace, tag=tag)
    if contacts is not None:
        rows = rows.filter(contact_id__in=contacts.filter(workspace=workspace).values("id"))
    elif segment is not None:
        rows = rows.filter(
            contact_id__in=SegmentMember.objects.filter(segment=segment).values("contact_id")
        )
    else:
        rows = rows.filter(contact_id__in=_contact_ids_in_workspace(workspace, contact_ids or []))
    deleted, _ = rows.delete()
    return deleted


@transaction.atomic
def tag_rule_apply(
    *, workspace: Workspace, tag: Tag, now: datetime | None = None
) -> tuple[int, int]:
    """Applies an auto tag's rule: tags who matches, untags who it tagged before and no longer
    matches. Tags set by hand, import or API are left alone. Returns (added, removed)."""
    _check_same_workspace(workspace, tag)
    if tag.rule is None:
        raise ValidationFailed("no_rule", f"tag {tag.id} has no rule", path="rule")
    now = now or timezone.now()
    rule = rule_sql(workspace=workspace, rule=tag.rule, now=now)
    removed = _execute(
        f"DELETE FROM {_q(ContactTag)} WHERE tag_id = %s AND source = %s "  # noqa: S608 - table names from models
        f"AND contact_id NOT IN (SELECT r.contact_id FROM ({rule.sql}) r)",
        [tag.id, TagSource.RULE, *rule.params],
    )
    added = _execute(
        f"INSERT INTO {_q(ContactTag)} (workspace_id, contact_id, tag_id, source, created_at) "  # noqa: S608
        f"SELECT %s, r.contact_id, %s, %s, %s FROM ({rule.sql}) r "
        f"WHERE NOT EXISTS (SELECT 1 FROM {_q(ContactTag)} t WHERE t.tag_id = %s AND t.contact_id = r.contact_id)",
        [workspace.id, tag.id, TagSource.RULE, _db_time(now), *rule.params, tag.id],
    )
    return added, removed


# --- segments -----------------------------------------------------------------------------------


def _validate(workspace: Workspace, rule: Any) -> None:
    """Rule errors are reported under ``rule.``, the body field they came in."""
    try:
        validate_rule(workspace=workspace, rule=rule, now=timezone.now())
    except ValidationFailed as exc:
        raise ValidationFailed(
            exc.code, exc.message, path="rule" + (f".{exc.path}" if exc.path else "")
        ) from exc


def _check_name(workspace: Workspace, name: str, exclude_id: int | None = None) -> str:
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationFailed("invalid", "a segment name has 1 to 100 characters", path="name")
    if Segment.objects.filter(workspace=workspace, name=name).exclude(id=exclude_id).exists():
        raise ValidationFailed("duplicate", f"a segment named '{name}' already exists", path="name")
    return name


@transaction.atomic
def segment_create(
    *,
    workspace: Workspace,
    name: str,
    rule: Any,
    kind: str = SegmentKind.DYNAMIC,
    description: str = "",
    actor: Any = None,
    now: datetime | None = None,
) -> Segment:
    """Saves a validated rule. A static segment takes its members now, once; a dynamic one
    gets them at each refresh."""
    name = _check_name(workspace, name)
    _validate(workspace, rule)
    segment = Segment.objects.create(
        workspace=workspace, name=name, rule=rule, kind=kind, description=description[:500]
    )
    audit_record(
        workspace=workspace,
        action="segment.create",
        actor_user=actor,
        target=segment,
        data={"rule": rule},
    )
    if kind == SegmentKind.STATIC:
        segment = _refresh(workspace=workspace, segment=segment, now=now or timezone.now())
    return segment


@transaction.atomic
def segment_update(
    *,
    workspace: Workspace,
    segment: Segment,
    name: str,
    rule: Any,
    description: str = "",
    actor: Any = None,
) -> Segment:
    """A new rule applies from the next refresh; a static segment's rule cannot change."""
    _check_same_workspace(workspace, segment)
    name = _check_name(workspace, name, exclude_id=segment.id)
    if segment.kind == SegmentKind.STATIC and rule != segment.rule:
        raise ValidationFailed(
            "segment_static",
            "a static segment keeps its rule and members; create a new segment",
            path="rule",
        )
    _validate(workspace, rule)
    segment.name, segment.rule, segment.description = name, rule, description[:500]
    segment.save(update_fields=["name", "rule", "description", "updated_at"])
    audit_record(
        workspace=workspace,
        action="segment.update",
        actor_user=actor,
        target=segment,
        data={"rule": rule},
    )
    return segment


@transaction.atomic
def segment_refresh(
    *, workspace: Workspace, segment: Segment, now: datetime | None = None
) -> Segment:
    """Recomputes a dynamic segment. On failure the membership is untouched and the segment
    says why (status ``failed``, ``last_error``); the refresh row records either outcome."""
    _check_same_workspace(workspace, segment)
    if segment.kind == SegmentKind.STATIC:
        raise ValidationFailed(
            "segment_static", "a static segment keeps the members it was created with"
        )
    return _refresh(workspace=workspace, segment=segment, now=now or timezone.now())


def _refresh(*, workspace: Workspace, segment: Segment, now: datetime) -> Segment:
    segment = Segment.objects.select_for_update().get(workspace=workspace, id=segment.id)
    refresh = SegmentRefresh.objects.create(
        workspace=workspace, segment=segment, started_at=now, status=SegmentStatus.NEW
    )
    try:
        with transaction.atomic():
            entered, left = _write_membership(
                segment=segment,
                refresh=refresh,
                rule=rule_sql(workspace=workspace, rule=segment.rule, now=now),
                at=now,
            )
    except ValidationFailed as exc:
        return _refresh_failed(
            segment, refresh, f"rule.{exc.path}: {exc.message}" if exc.path else exc.message
        )
    except DatabaseError as exc:
        return _refresh_failed(segment, refresh, f"database error: {exc}")
    size = SegmentMember.objects.filter(segment=segment).count()
    finished = timezone.now()
    SegmentRefresh.objects.filter(id=refresh.id).update(
        entered=entered, left=left, size=size, status=SegmentStatus.READY, finished_at=finished
    )
    segment.size, segment.refreshed_at, segment.status, segment.last_error = (
        size,
        now,
        SegmentStatus.READY,
        "",
    )
    segment.save(update_fields=["size", "refreshed_at", "status", "last_error", "updated_at"])
    day = now.astimezone(ZoneInfo(workspace.time_zone)).date()
    SegmentSizeHistory.objects.update_or_create(
        segment=segment, date=day, defaults={"workspace": workspace, "size": size}
    )
    return segment


def _refresh_failed(segment: Segment, refresh: SegmentRefresh, error: str) -> Segment:
    SegmentRefresh.objects.filter(id=refresh.id).update(
        status=SegmentStatus.FAILED, error=error, finished_at=timezone.now(), size=segment.size
    )
    segment.status, segment.last_error = SegmentStatus.FAILED, error
    segment.save(update_fields=["status", "last_error", "updated_at"])
    return segment


def _write_membership(
    *, segment: Segment, refresh: SegmentRefresh, rule: RuleSQL, at: datetime
) -> tuple[int, int]:
    """Set difference in the database: leavers are members not in the rule's result, entrants
    are results not yet members. Returns (entered, left)."""
    member, change = _q(SegmentMember), _q(SegmentChange)
    stamp = _db_time(at)
    head = [segment.workspace_id, segment.id, refresh.id]
    left = _execute(
        f"INSERT INTO {change} (workspace_id, segment_id, refresh_id, contact_id, change, at) "  # noqa: S608 - table names from models
        f"SELECT %s, %s, %s, m.contact_id, %s, %s FROM {member} m WHERE m.segment_id = %s "
        f"AND NOT EXISTS (SELECT 1 FROM ({rule.sql}) r WHERE r.contact_id = m.contact_id)",
        [*head, SegmentChangeKind.LEFT, stamp, segment.id, *rule.params],
    )
    entered = _execute(
        f"INSERT INTO {change} (workspace_id, segment_id, refresh_id, contact_id, change, at) "  # noqa: S608
        f"SELECT %s, %s, %s, r.contact_id, %s, %s FROM ({rule.sql}) r "
        f"WHERE NOT EXISTS (SELECT 1 FROM {member} m WHERE m.segment_id = %s AND m.contact_id = r.contact_id)",
        [*head, SegmentChangeKind.ENTERED, stamp, *rule.params, segment.id],
    )
    _execute(
        f"DELETE FROM {member} WHERE segment_id = %s AND contact_id IN "  # noqa: S608
        f"(SELECT contact_id FROM {change} WHERE refresh_id = %s AND change = %s)",
        [segment.id, refresh.id, SegmentChangeKind.LEFT],
    )
    _execute(
        f"INSERT INTO {member} (workspace_id, segment_id, contact_id, added_at) "  # noqa: S608
        f"SELECT workspace_id, segment_id, contact_id, at FROM {change} WHERE refresh_id = %s AND change = %s",
        [refresh.id, SegmentChangeKind.ENTERED],
    )
    return entered, left


@transaction.atomic
def segment_delete(*, workspace: Workspace, segment: Segment, actor: Any = None) -> Segment:
    _check_same_workspace(workspace, segment)
    audit_record(
        workspace=workspace,
        action="segment.delete",
        actor_user=actor,
        target=segment,
        data={"name": segment.name, "size": segment.size},
    )
    segment.delete()
    return segment


# --- merges -------------------------------------------------------------------------------------


def _merge_unique_rows(
    model: type[models.Model], key: str, survivor: Contact, other_ids: list[int]
) -> int:
    """Moves ``model`` rows of the merged contacts to the survivor, keeping one row per ``key``
    (the survivor's, else the oldest) so the per-contact unique constraint holds."""
    taken = set(model.objects.filter(contact=survivor).values_list(key, flat=True))
    keep, drop = [], []
    for row_id, value in (
        model.objects.filter(contact_id__in=other_ids).order_by("id").values_list("id", key)
    ):
        if value in taken:
            drop.append(row_id)
        else:
            taken.add(value)
            keep.append(row_id)
    model.objects.filter(id__in=drop).delete()
    return model.objects.filter(id__in=keep).update(contact=survivor)


def _merge_tags(workspace: Workspace, survivor: Contact, other_ids: list[int]) -> int:
    return _merge_unique_rows(ContactTag, "tag_id", survivor, other_ids)


def _merge_segment_members(workspace: Workspace, survivor: Contact, other_ids: list[int]) -> int:
    return _merge_unique_rows(SegmentMember, "segment_id", survivor, other_ids)


MERGE_HANDLERS[ContactTag] = _merge_tags
MERGE_HANDLERS[SegmentMember] = _merge_segment_members


# --- console: saving with a schedule, scheduled refreshes, exports, tag groups, lists ----------

SCHEDULE_STEP = {
    SegmentSchedule.HOURLY: timedelta(hours=1),
    SegmentSchedule.DAILY: timedelta(days=1),
}
MAX_LIST_LINES = 100_000


def _next_refresh(segment: Segment, now: datetime) -> datetime | None:
    """When the worker should refresh next: never for a manual or a static segment."""
    step = SCHEDULE_STEP.get(segment.refresh_every)
    return now + step if step is not None and segment.kind == SegmentKind.DYNAMIC else None


@transaction.atomic
def segment_save(
    *,
    workspace: Workspace,
    name: str,
    rule: Any,
    kind: str = SegmentKind.DYNAMIC,
    refresh_every: str = SegmentSchedule.MANUAL,
    segment: Segment | None = None,
    actor: Any = None,
    now: datetime | None = None,
) -> Segment:
    """What the console's builder saves: the segment (new, or ``segment`` changed) with its
    refresh schedule, and a dynamic one refreshed at once so the operator lands on real numbers
    (a size, a first point on the size chart) rather than an empty segment."""
    now = now or timezone.now()
    if refresh_every not in SegmentSchedule.values:
        raise ValidationFailed(
            "invalid",
            f"refresh_every is one of: {', '.join(SegmentSchedule.values)}",
            path="refresh_every",
        )
    if segment is None:
        if kind not in SegmentKind.values:
            raise ValidationFailed(
                "invalid", f"kind is one of: {', '.join(SegmentKind.values)}", path="kind"
            )
        segment = segment_create(
            workspace=workspace, name=name, rule=rule, kind=kind, actor=actor, now=now
        )
    else:
        segment = segment_update(
            workspace=workspace,
            segment=segment,
            name=name,
            rule=rule,
            description=segment.description,
            actor=actor,
        )
    segment.refresh_every = refresh_every
    segment.next_refresh_at = _next_refresh(segment, now)
    segment.save(update_fields=["refresh_every", "next_refresh_at", "updated_at"])
    if segment.kind == SegmentKind.DYNAMIC:
        segment = _refresh(workspace=workspace, segment=segment, now=now)
    return segment


def segments_refresh_due(*, now: datetime) -> int:
    """Refreshes every dynamic segment, in every workspace, whose scheduled time has passed, and
    sets its next time. Each segment is taken in its own transaction with SKIP LOCKED (on
    PostgreSQL), so several workers share the work and never refresh the same segment at once,
    and one slow or failing segment holds up no other. Returns how many were refreshed."""
    done = 0
    while True:
        with transaction.atomic():
            segment = (
                Segment.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(kind=SegmentKind.DYNAMIC, next_refresh_at__lte=now)
                .exclude(refresh_every=SegmentSchedule.MANUAL)
                .select_related("workspace")
                .order_by("next_refresh_at", "id")
                .first()
            )
            if segment is None:
                return done
            # A failed refresh also moves on: it is recorded on the segment, and retrying it
            # every minute would not fix a rule that names a deleted tag.
            refreshed = _refresh(workspace=segment.workspace, segment=segment, now=now)
            Segment.objects.filter(id=refreshed.id).update(
                next_refresh_at=_next_refresh(refreshed, now)
            )
        done += 1


def segment_export_record(
    *, workspace: Workspace, segment: Segment, actor: Any, rows: int, full_phone: bool
) -> None:
    """Every export of personal data leaves an audit row: who, which segment, how many rows and
    whether full phone numbers left the system."""
    _check_same_workspace(workspace, segment)
    audit_record(
        workspace=workspace,
        action="segment.export",
        actor_user=actor,
        target=segment,
        data={"segment_id": segment.id, "rows": rows, "full_phone": full_phone},
    )


@transaction.atomic
def tag_group_rename(*, workspace: Workspace, group: TagGroup, name: str) -> TagGroup:
    _check_same_workspace(workspace, group)
    name = name.strip()
    if not name or len(name) > 64:
        raise ValidationFailed("invalid", "a tag group name has 1 to 64 characters", path="group")
    if TagGroup.objects.filter(workspace=workspace, name=name).exclude(id=group.id).exists():
        raise ValidationFailed("duplicate", f"tag group '{name}' already exists", path="group")
    group.name = name
    group.save(update_fields=["name"])
    return group


@transaction.atomic
def tag_group_delete(*, workspace: Workspace, group: TagGroup, actor: Any = None) -> TagGroup:
    """Deletes the group with its tags, each removed from every contact (and audited) as
    ``tag_delete`` does."""
    _check_same_workspace(workspace, group)
    for tag in Tag.objects.filter(workspace=workspace, group=group).order_by("id"):
        tag_delete(workspace=workspace, tag=tag, actor=actor)
    audit_record(
        workspace=workspace,
        action="tag_group.delete",
        actor_user=actor,
        target=group,
        data={"name": group.name},
    )
    group.delete()
    return group


@transaction.atomic
def tag_contacts_from_list(
    *, workspace: Workspace, tag: Tag, column: str, values: list[str]
) -> tuple[int, list[ListProblem]]:
    """Tags the contacts named in an uploaded list (one phone, member number or contact id per
    line). Lines that name nobody are reported back, not fatal: the rest are tagged.
    Returns (newly tagged, problems)."""
    _check_same_workspace(workspace, tag)
    if len(values) > MAX_LIST_LINES:
        raise ValidationFailed(
            "too_many", f"a list has at most {MAX_LIST_LINES} lines", path="file"
        )
    ids, problems = contacts_from_list(workspace=workspace, column=column, values=values)
    ids = list(dict.fromkeys(ids))
    tagged = 0
    for start in range(0, len(ids), MAX_TAG_IDS):
        tagged += tag_contacts(
            workspace=workspace,
            tag=tag,
            contact_ids=ids[start : start + MAX_TAG_IDS],
            source=TagSource.IMPORT,
        )
    return tagged, problems


@transaction.atomic
def segment_create_from_expression(
    *,
    workspace: Workspace,
    name: str,
    contact_ids: ibis.Table,
    source: dict[str, Any],
    description: str = "",
    actor: Any = None,
    now: datetime | None = None,
) -> Segment:
    """Saves the contacts an analysis found (e.g. a funnel's drop-offs: an Ibis expression with
    a ``contact_id`` column) as a static segment, in one INSERT … SELECT. ``source`` — what
    produced them — is kept as the segment's rule for the record; a static segment is never
    recomputed, so it need not be a rule the rule language could run. Ids outside the workspace
    are ignored."""
    name = _check_name(workspace, name)
    now = now or timezone.now()
    segment = Segment.objects.create(
        workspace=workspace,
        name=name,
        rule={"source": source},
        kind=SegmentKind.STATIC,
        description=description[:500],
        status=SegmentStatus.READY,
        refreshed_at=now,
    )
    member, contact = _q(SegmentMember), _q(Contact)
    size = _execute(
        f"INSERT INTO {member} (workspace_id, segment_id, contact_id, added_at) "  # noqa: S608 - table names from models
        f"SELECT DISTINCT %s, %s, r.contact_id, %s FROM ({to_sql_fragment(contact_ids)}) r "
        f"WHERE r.contact_id IN (SELECT id FROM {contact} WHERE workspace_id = %s)",
        [workspace.id, segment.id, _db_time(now), workspace.id],
    )
    segment.size = size
    segment.save(update_fields=["size", "updated_at"])
    day = now.astimezone(ZoneInfo(workspace.time_zone)).date()
    SegmentSizeHistory.objects.create(workspace=workspace, segment=segment, date=day, size=size)
    audit_record(
        workspace=workspace,
        action="segment.create",
        actor_user=actor,
        target=segment,
        data={"rule": segment.rule},
    )
    return segment


@transaction.atomic
def segment_create_from_list(
    *,
    workspace: Workspace,
    name: str,
    column: str,
    values: list[str],
    actor: Any = None,
    now: datetime | None = None,
) -> tuple[Segment, list[ListProblem]]:
    """A static segment from an uploaded list (phones, member numbers or contact ids): the
    contacts found become its members at once; lines that name nobody are reported back."""
    if len(values) > MAX_LIST_LINES:
        raise ValidationFailed(
            "too_many", f"a list has at most {MAX_LIST_LINES} lines", path="file"
        )
    name = _check_name(workspace, name)
    now = now or timezone.now()
    ids, problems = contacts_from_list(workspace=workspace, column=column, values=values)
    ids = list(dict.fromkeys(ids))
    segment = Segment.objects.create(
        workspace=workspace,
        name=name,
        rule={"source": {"uploaded_list": column, "lines": len(values)}},
        kind=SegmentKind.STATIC,
        status=SegmentStatus.READY,
        refreshed_at=now,
        size=len(ids),
    )
    bulk.insert_rows(
        SegmentMember._meta.db_table,
        ["workspace_id", "segment_id", "contact_id", "added_at"],
        ((workspace.id, segment.id, cid, _db_time(now)) for cid in ids),
    )
    day = now.astimezone(ZoneInfo(workspace.time_zone)).date()
    SegmentSizeHistory.objects.create(workspace=workspace, segment=segment, date=day, size=len(ids))
    audit_record(
        workspace=workspace,
        action="segment.create",
        actor_user=actor,
        target=segment,
        data={"rule": segment.rule},
    )
    return segment, problems
