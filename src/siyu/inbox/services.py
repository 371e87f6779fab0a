"""Every write of the task inbox: creating tasks (for a whole audience in one INSERT … SELECT,
or one by hand), completing, snoozing, reassigning and cancelling them, and the follow-up
cadence with the periodic run that turns overdue cadences into follow-up tasks.

A task goes to the contact's owner staff member while they are active; otherwise it waits
unassigned in the contact's (or that staff member's) store queue, or HQ's when neither has a
store. Titles and notes may use the message template variables ({{nickname}}, {{name}},
{{store}}, …), rendered in SQL exactly as messages are (``messaging.rendering``).

The raw SQL below is composed only of table names from model ``_meta``, status and kind
constants, and the template variables' SQL; every value a user gives travels as a parameter.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.audiences import queries as audiences_queries
from siyu.commerce.models import Staff, Store
from siyu.contacts import queries as contacts_queries
from siyu.contacts.models import Contact
from siyu.contacts.services import MERGE_HANDLERS
from siyu.errors import PermissionDenied, ValidationFailed
from siyu.inbox.models import (
    PENDING_STATUSES,
    ContactCadence,
    SourceKind,
    StaffTask,
    TaskKind,
    TaskStatus,
)
from siyu.inbox.queries import Viewer, task_get, viewer_for
from siyu.messaging import rendering
from siyu.messaging.models import OUT_STATUSES, Message
from siyu.tenancy.models import Membership, Workspace

TITLE_MAX = 200
NOTE_MAX = 4000
OUTCOME_MAX = 2000
PREFIX_MAX = 150
SNOOZE_MAX = timedelta(days=90)
CADENCE_MAX_DAYS = 365
_SOURCE_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

_TASK = StaffTask._meta.db_table
_CADENCE = ContactCadence._meta.db_table
_CONTACT = Contact._meta.db_table
_STAFF = Staff._meta.db_table
_STORE = Store._meta.db_table
_MESSAGE = Message._meta.db_table
_PENDING_SQL = ", ".join(f"'{s}'" for s in PENDING_STATUSES)
_OUT_SQL = ", ".join(f"'{s}'" for s in OUT_STATUSES)
#: The contact's owner staff while active (``st`` LEFT JOINed on ``c.owner_staff_id``).
_ASSIGNEE_SQL = "CASE WHEN st.is_active THEN st.id END"
#: The contact's store, else the owner staff member's.
_STORE_SQL = "COALESCE(c.store_id, st.store_id)"
_TASK_COLUMNS = (
    "workspace_id, contact_id, assignee_id, store_id, kind, title, note, due_at, status, outcome, "
    "source_kind, source_id, source_key, idempotency_key, created_at, updated_at"
)


def _ts(value: datetime | None) -> Any:
    """A datetime as a raw-SQL parameter stored the way the ORM stores it."""
    return connection.ops.adapt_datetimefield_value(value)


# --- validation -------------------------------------------------------------------------------


def _kind(kind: str) -> str:
    if kind not in TaskKind.values:
        raise ValidationFailed(
            "bad_kind",
            f"Unknown task kind {kind!r}; use one of {', '.join(TaskKind.values)}.",
            path="kind",
        )
    return kind


def _text(value: str, *, field: str, limit: int, required: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise ValidationFailed("required", f"The {field} must not be empty.", path=field)
    if len(value) > limit:
        raise ValidationFailed(
            "too_long", f"The {field} has {len(value)} characters; at most {limit}.", path=field
        )
    return value


def _aware(value: datetime, *, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValidationFailed("bad_time", f"The {field} must be a date and time.", path=field)
    if timezone.is_naive(value):
        raise ValidationFailed(
            "naive_time",
            f"The {field} must carry a time zone offset (e.g. 2026-03-01T10:00:00+08:00).",
            path=field,
        )
    return value


def _source_kind(value: str) -> str:
    if not _SOURCE_KIND.match(value or ""):
        raise ValidationFailed(
            "bad_source_kind",
            f"source_kind {value!r} must be a short lower-case identifier such as "
            f"{', '.join(SourceKind.values)}.",
            path="source_kind",
        )
    return value


def _prefix(value: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationFailed(
            "required", "idempotency_prefix must not be empty.", path="idempotency_prefix"
        )
    if len(value) > PREFIX_MAX:
        raise ValidationFailed(
            "too_long",
            f"idempotency_prefix has {len(value)} characters; at most {PREFIX_MAX}.",
            path="idempotency_prefix",
        )
    return value


def _template(text: str, *, field: str, limit: int, required: bool = False) -> str:
    """A title or note checked like a message template; only the contact variables
    ({{nickname}}, {{name}}, {{city}}, {{member_no}}, {{store}}) make sense for a task."""
    text = rendering.normalise(
        _text(text, field=field, limit=limit, required=required), field=field
    )
    constants = sorted(rendering.used(text) & set(rendering.CONSTANT_VARIABLES))
    if constants:
        known = ", ".join(f"{{{{{v}}}}}" for v in rendering.CONTACT_VARIABLES)
        raise ValidationFailed(
            "unknown_variable",
            f"{{{{{constants[0]}}}}} has no value in a task's {field}; use one of {known}.",
            path=field,
        )
    return text


def _render_sql(text: str) -> tuple[str, list[str]]:
    """SQL over contact ``c`` and store ``s`` rendering ``text`` per row, with its parameters."""
    return rendering.render_sql(text, {})


def _every_days(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= CADENCE_MAX_DAYS:
        raise ValidationFailed(
            "bad_cadence",
            f"every_days must be a whole number of days from 1 to {CADENCE_MAX_DAYS}; got {value!r}.",
            path="every_days",
        )
    return value


def task_text_check(*, kind: str, title: str, note: str = "") -> None:
    """Judges a task's kind, title and note without creating anything, so a journey step can be
    refused when it is saved rather than when it runs."""
    _kind(kind)
    _template(title, field="title", limit=TITLE_MAX, required=True)
    _template(note, field="note", limit=NOTE_MAX)


# --- creating tasks ---------------------------------------------------------------------------


@transaction.atomic
def tasks_create_for_contacts(
    *,
    workspace: Workspace,
    contacts: QuerySet[Contact],
    kind: str,
    title: str,
    note: str = "",
    due_at: datetime,
    idempotency_prefix: str,
    source_kind: str,
    source_id: int | None = None,
    source_key: str = "",
) -> int:
    """One task per contact of ``contacts`` (only those of ``workspace`` count), in a single
    INSERT … SELECT keyed "<prefix>:contact:<id>" and skipped on conflict, so a journey step
    that runs twice creates nothing the second time. Returns how many tasks were created."""
    kind = _kind(kind)
    title = _template(title, field="title", limit=TITLE_MAX, required=True)
    note = _template(note, field="note", limit=NOTE_MAX)
    _aware(due_at, field="due_at")
    prefix = _prefix(idempotency_prefix) + ":contact:"
    source_kind = _source_kind(source_kind)
    source_key = _text(source_key, field="source_key", limit=200)
    if not isinstance(contacts, QuerySet) or contacts.model is not Contact:
        raise ValidationFailed(
            "bad_audience", "contacts must be a queryset of contacts.", path="contacts"
        )
    members_sql, members_params = (
        contacts.filter(workspace=workspace).order_by().values("id").query.sql_with_params()
    )
    title_sql, title_params = _render_sql(title)
    note_sql, note_params = _render_sql(note)
    now = timezone.now()
    sql = (
        f"INSERT INTO {_TASK} ({_TASK_COLUMNS}) "  # noqa: S608
        f"SELECT %s, c.id, {_ASSIGNEE_SQL}, {_STORE_SQL}, %s, SUBSTR({title_sql}, 1, {TITLE_MAX}), {note_sql}, "
        f"%s, '{TaskStatus.OPEN}', '', %s, CAST(%s AS bigint), %s, %s || CAST(c.id AS TEXT), %s, %s "
        f"FROM {_CONTACT} c LEFT JOIN {_STAFF} st ON st.id = c.owner_staff_id "
        f"LEFT JOIN {_STORE} s ON s.id = {_STORE_SQL} "
        f"WHERE c.workspace_id = %s AND c.id IN ({members_sql}) "
        "ON CONFLICT (workspace_id, idempotency_key) DO NOTHING"
    )
    params = [
        workspace.id,
        kind,
        *title_params,
        *note_params,
        _ts(due_at),
        source_kind,
        source_id,
        source_key,
        prefix,
        _ts(now),
        _ts(now),
        workspace.id,
        *members_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _render_for(contact: Contact, store_id: int | None, texts: list[str]) -> list[str]:
    """``texts`` rendered for one contact with the same SQL the set-based path uses."""
    rendered = [_render_sql(t) for t in texts]
    columns = ", ".join(sql for sql, _params in rendered)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {_CONTACT} c LEFT JOIN {_STORE} s ON s.id = %s WHERE c.id = %s",  # noqa: S608
            [*(p for _sql, params in rendered for p in params), store_id, contact.id],
        )
        return list(cursor.fetchone())


def _active_staff(*, workspace: Workspace, staff_id: int, field: str = "assignee_id") -> Staff:
    staff = Staff.objects.filter(workspace=workspace, id=staff_id).first()
    if staff is None:
        raise ValidationFailed("unknown_staff", f"Staff {staff_id} not found.", path=field)
    if not staff.is_active:
        raise ValidationFailed(
            "inactive_staff", f"Staff {staff.name} ({staff.code}) is no longer active.", path=field
        )
    return staff


def _assignee_allowed(viewer: Viewer, staff: Staff | None) -> None:
    """HQ may assign anyone; a store manager someone of their store (or the store's queue);
    other staff only themselves."""
    if viewer.is_hq:
        return
    if viewer.manages_store and (staff is None or staff.store_id == viewer.store_id):
        return
    if staff is not None and staff.id == viewer.staff_id:
        return
    raise PermissionDenied(
        "cannot_assign",
        "You may assign tasks only to yourself (a store manager: to the store's staff).",
    )


@transaction.atomic
def task_create(
    *,
    workspace: Workspace,
    contact_id: int,
    kind: str,
    title: str,
    due_at: datetime,
    note: str = "",
    assignee_id: int | None = None,
    membership: Membership | None = None,
    idempotency_key: str = "",
    source_kind: str = SourceKind.MANUAL,
) -> StaffTask:
    """One task by hand. Without ``assignee_id`` it goes to the staff member creating it, else
    the contact's owner staff. A repeated ``idempotency_key`` returns the task made the first time."""
    viewer = viewer_for(workspace=workspace, membership=membership)
    contact = contacts_queries.contact_get(
        workspace=workspace, contact_id=contact_id, membership=membership
    )
    if not (viewer.is_hq or viewer.staff_id is not None):
        raise PermissionDenied("read_only", "Your role may not create tasks.")
    kind = _kind(kind)
    title = _template(title, field="title", limit=TITLE_MAX, required=True)
    note = _template(note, field="note", limit=NOTE_MAX)
    _aware(due_at, field="due_at")
    source_kind = _source_kind(source_kind)
    key = _text(idempotency_key, field="idempotency_key", limit=PREFIX_MAX)
    if key:
        existing = StaffTask.objects.filter(workspace=workspace, idempotency_key=key).first()
        if existing is not None:
            return existing
    if assignee_id is not None:
        assignee = _active_staff(workspace=workspace, staff_id=assignee_id)
    elif viewer.staff_id is not None:
        assignee = Staff.objects.get(id=viewer.staff_id)
    else:
        owner = contact.owner_staff
        assignee = owner if owner is not None and owner.is_active else None
    _assignee_allowed(viewer, assignee)
    store_id = contact.store_id or (assignee.store_id if assignee else None)
    rendered_title, rendered_note = _render_for(contact, store_id, [title, note])
    now = timezone.now()
    return StaffTask.objects.create(
        workspace=workspace,
        contact=contact,
        assignee=assignee,
        store_id=store_id,
        kind=kind,
        title=rendered_title[:TITLE_MAX],
        note=rendered_note,
        due_at=due_at,
        source_kind=source_kind,
        idempotency_key=key or f"{source_kind}:{uuid.uuid4().hex}",
        created_at=now,
        updated_at=now,
    )


# --- acting on a task -------------------------------------------------------------------------


def _task_for(
    *, workspace: Workspace, task_id: int, membership: Membership | None, manage: bool = False
) -> tuple[StaffTask, Viewer]:
    """The task locked for update: 404 when the viewer cannot see it, 403 when they see it but
    may not do this, 422 when it is already closed."""
    viewer = viewer_for(workspace=workspace, membership=membership)
    task_get(workspace=workspace, viewer=viewer, task_id=task_id)
    task = (
        StaffTask.objects.select_for_update(of=("self",))
        .select_related("contact", "assignee", "store")
        .get(workspace=workspace, id=task_id)
    )
    allowed = viewer.can_manage(task) if manage else viewer.can_act_on(task)
    if not allowed:
        raise PermissionDenied(
            "not_your_task",
            "Only the task's assignee, their store manager or HQ may do this."
            if not manage
            else "Only the store manager or HQ may reassign or cancel a task.",
        )
    if task.status not in PENDING_STATUSES:
        raise ValidationFailed(
            "task_closed",
            f"Task {task.id} is already {task.get_status_display()} ({task.status}); it can no longer change.",
        )
    return task, viewer


@transaction.atomic
def task_complete(
    *,
    workspace: Workspace,
    task_id: int,
    membership: Membership | None = None,
    outcome: str = "",
    now: datetime | None = None,
) -> StaffTask:
    """Done, with what came of it ("约了周六到店"): the outcome is the follow-up's record, and
    completing counts as the contact's last touch for their cadence."""
    task, _viewer = _task_for(workspace=workspace, task_id=task_id, membership=membership)
    now = now or timezone.now()
    task.status = TaskStatus.DONE
    task.outcome = _text(outcome, field="outcome", limit=OUTCOME_MAX)
    task.completed_at = now
    task.completed_by = membership.user if membership is not None else None
    task.updated_at = now
    task.save(update_fields=["status", "outcome", "completed_at", "completed_by", "updated_at"])
    return task


@transaction.atomic
def task_snooze(
    *,
    workspace: Workspace,
    task_id: int,
    until: datetime,
    membership: Membership | None = None,
    now: datetime | None = None,
) -> StaffTask:
    """Hides the task until ``until``; it then reappears among the open tasks, due no earlier
    than that moment (so it does not come back already overdue)."""
    task, _viewer = _task_for(workspace=workspace, task_id=task_id, membership=membership)
    now = now or timezone.now()
    _aware(until, field="until")
    if until <= now:
        raise ValidationFailed("snooze_in_past", "Snooze until a time in the future.", path="until")
    if until - now > SNOOZE_MAX:
        raise ValidationFailed(
            "snooze_too_long", f"Snooze for at most {SNOOZE_MAX.days} days.", path="until"
        )
    task.status = TaskStatus.SNOOZED
    task.snoozed_until = until
    task.due_at = max(task.due_at, until)
    task.updated_at = now
    task.save(update_fields=["status", "snoozed_until", "due_at", "updated_at"])
    return task


@transaction.atomic
def task_reassign(
    *,
    workspace: Workspace,
    task_id: int,
    assignee_id: int | None,
    membership: Membership | None = None,
) -> StaffTask:
    """To another staff member (the task moves to their store if it had none), or back to the
    store's unassigned queue with None."""
    task, viewer = _task_for(
        workspace=workspace, task_id=task_id, membership=membership, manage=True
    )
    assignee = (
        _active_staff(workspace=workspace, staff_id=assignee_id)
        if assignee_id is not None
        else None
    )
    _assignee_allowed(viewer, assignee)
    task.assignee = assignee
    if assignee is not None and assignee.store_id is not None and viewer.is_hq:
        task.store_id = assignee.store_id
    task.updated_at = timezone.now()
    task.save(update_fields=["assignee", "store", "updated_at"])
    return task


@transaction.atomic
def task_cancel(
    *,
    workspace: Workspace,
    task_id: int,
    membership: Membership | None = None,
    reason: str = "",
) -> StaffTask:
    task, _viewer = _task_for(
        workspace=workspace, task_id=task_id, membership=membership, manage=True
    )
    task.status = TaskStatus.CANCELLED
    task.outcome = _text(reason, field="reason", limit=OUTCOME_MAX)
    task.updated_at = timezone.now()
    task.save(update_fields=["status", "outcome", "updated_at"])
    return task


@transaction.atomic
def tasks_wake_snoozed(*, workspace: Workspace, now: datetime) -> int:
    """Snoozed tasks whose time came are open again. (Lists already show them from that moment;
    this keeps the stored status honest for exports and counts.)"""
    return StaffTask.objects.filter(
        workspace=workspace, status=TaskStatus.SNOOZED, snoozed_until__lte=now
    ).update(status=TaskStatus.OPEN, updated_at=now)


# --- follow-up cadence ------------------------------------------------------------------------


def _cadence_writer(workspace: Workspace, membership: Membership | None) -> Viewer:
    viewer = viewer_for(workspace=workspace, membership=membership)
    if not (viewer.is_hq or viewer.staff_id is not None):
        raise PermissionDenied("read_only", "Your role may not change follow-up cadences.")
    return viewer


@transaction.atomic
def cadence_set(
    *,
    workspace: Workspace,
    contact_id: int,
    every_days: int | None,
    membership: Membership | None = None,
    now: datetime | None = None,
) -> ContactCadence | None:
    """How often this contact should be followed up; None removes the cadence. Changing the
    number keeps the start, so the last touch still counts."""
    _cadence_writer(workspace, membership)
    contact = contacts_queries.contact_get(
        workspace=workspace, contact_id=contact_id, membership=membership
    )
    if every_days is None:
        ContactCadence.objects.filter(workspace=workspace, contact=contact).delete()
        return None
    every_days = _every_days(every_days)
    now = now or timezone.now()
    cadence, created = ContactCadence.objects.get_or_create(
        workspace=workspace,
        contact=contact,
        defaults={"every_days": every_days, "starts_at": now, "updated_at": now},
    )
    if not created and cadence.every_days != every_days:
        cadence.every_days = every_days
        cadence.updated_at = now
        cadence.save(update_fields=["every_days", "updated_at"])
    return cadence


@transaction.atomic
def cadence_set_for_segment(
    *,
    workspace: Workspace,
    segment_id: int,
    every_days: int | None,
    membership: Membership | None = None,
    now: datetime | None = None,
) -> int:
    """The same cadence for every member of a segment (as of its last refresh) that the viewer
    can see, in one upsert; None removes theirs. Returns how many contacts it touched."""
    _cadence_writer(workspace, membership)
    segment = audiences_queries.segment_get(workspace=workspace, segment_id=segment_id)
    members = audiences_queries.segment_members(
        workspace=workspace, segment=segment, membership=membership
    )
    if every_days is None:
        deleted, _counts = ContactCadence.objects.filter(
            workspace=workspace, contact_id__in=members.order_by().values("id")
        ).delete()
        return deleted
    every_days = _every_days(every_days)
    now = now or timezone.now()
    members_sql, members_params = members.order_by().values("id").query.sql_with_params()
    sql = (
        f"INSERT INTO {_CADENCE} (workspace_id, contact_id, every_days, starts_at, updated_at) "  # noqa: S608
        f"SELECT %s, m.id, %s, %s, %s FROM ({members_sql}) m WHERE 1 = 1 "
        "ON CONFLICT (workspace_id, contact_id) DO UPDATE SET every_days = excluded.every_days, "
        "updated_at = excluded.updated_at"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace.id, every_days, _ts(now), _ts(now), *members_params])
        return cursor.rowcount


def _days_before(param: str, days_column: str) -> str:
    """SQL for the moment ``days_column`` days before the timestamp parameter."""
    if connection.vendor == "postgresql":
        return f"(CAST({param} AS timestamptz) - {days_column} * INTERVAL '1 day')"
    return f"datetime({param}, '-' || {days_column} || ' days')"


@transaction.atomic
def cadence_run(*, workspace: Workspace, now: datetime) -> int:
    """One follow-up task for each contact whose last touch — their last completed task, the
    last message that went out to them, or the cadence's start — is older than their cadence,
    and who has no pending follow-up task. One INSERT … SELECT; keyed per contact and local
    day, so running it hourly (or twice at once) creates at most one task a day."""
    zone = ZoneInfo(workspace.time_zone)
    today = now.astimezone(zone).date()
    due_at = datetime.combine(today, time(23, 59, 59), tzinfo=zone)
    prefix = f"cadence:{today.isoformat()}:contact:"
    title_sql, title_params = _render_sql(
        rendering.normalise(_("定期跟进 {{nickname}}"), field="title")
    )
    before, after = _("跟进周期：每 %(days)s 天").split("%(days)s")
    cutoff = _days_before("%s", "cc.every_days")
    sql = (
        f"INSERT INTO {_TASK} ({_TASK_COLUMNS}) "  # noqa: S608
        f"SELECT cc.workspace_id, c.id, {_ASSIGNEE_SQL}, {_STORE_SQL}, '{TaskKind.FOLLOW_UP}', "
        f"SUBSTR({title_sql}, 1, {TITLE_MAX}), "
        f"%s || CAST(cc.every_days AS TEXT) || %s, %s, '{TaskStatus.OPEN}', '', "
        f"'{SourceKind.CADENCE}', cc.id, '', %s || CAST(c.id AS TEXT), %s, %s "
        f"FROM {_CADENCE} cc JOIN {_CONTACT} c ON c.id = cc.contact_id "
        f"LEFT JOIN {_STAFF} st ON st.id = c.owner_staff_id "
        f"LEFT JOIN {_STORE} s ON s.id = {_STORE_SQL} "
        f"WHERE cc.workspace_id = %s AND c.workspace_id = %s AND cc.starts_at < {cutoff} "
        f"AND NOT EXISTS (SELECT 1 FROM {_TASK} p WHERE p.workspace_id = cc.workspace_id "
        f"AND p.contact_id = c.id AND p.status IN ({_PENDING_SQL}) AND p.kind = '{TaskKind.FOLLOW_UP}') "
        f"AND NOT EXISTS (SELECT 1 FROM {_TASK} d WHERE d.workspace_id = cc.workspace_id "
        f"AND d.contact_id = c.id AND d.status = '{TaskStatus.DONE}' AND d.completed_at >= {cutoff}) "
        f"AND NOT EXISTS (SELECT 1 FROM {_MESSAGE} m WHERE m.workspace_id = cc.workspace_id "
        f"AND m.contact_id = c.id AND m.status IN ({_OUT_SQL}) AND m.sent_at >= {cutoff}) "
        "ON CONFLICT (workspace_id, idempotency_key) DO NOTHING"
    )
    stamp = _ts(now)
    params = [
        *title_params,
        before,
        after,
        _ts(due_at),
        prefix,
        stamp,
        stamp,
        workspace.id,
        workspace.id,
        stamp,
        stamp,
        stamp,
    ]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(sql, params)
            return cursor.rowcount
        # Right after a bulk load (a journey just made 100k tasks) the statistics still say the
        # task table is nearly empty, and PostgreSQL then nests loops over it: 100k × 100k
        # comparisons, half an hour. Hash anti-joins cost one pass whatever the statistics say.
        # SET LOCAL lasts until the transaction ends; the old value is put back on success (a
        # failure rolls the savepoint back, and the setting with it).
        cursor.execute("SELECT current_setting('enable_nestloop')")
        previous = cursor.fetchone()[0]
        cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute(sql, params)
        created = cursor.rowcount
        cursor.execute("SELECT set_config('enable_nestloop', %s, true)", [previous])
        return created


def _workspaces_with_cadences() -> QuerySet[Workspace]:
    return Workspace.objects.filter(
        id__in=ContactCadence.objects.values("workspace_id").distinct()
    ).order_by("id")


def cadence_run_all(*, now: datetime | None = None) -> int:
    """The periodic job's body: wake snoozed tasks and run every workspace's cadences, one
    transaction per workspace so one workspace's failure does not hold back the others."""
    now = now or timezone.now()
    created = 0
    for workspace in Workspace.objects.filter(
        id__in=StaffTask.objects.filter(status=TaskStatus.SNOOZED).values("workspace_id")
    ):
        tasks_wake_snoozed(workspace=workspace, now=now)
    for workspace in _workspaces_with_cadences():
        created += cadence_run(workspace=workspace, now=now)
    return created


def _merge_cadences(workspace: Workspace, survivor: Contact, other_ids: list[int]) -> int:
    """A merged contact keeps the survivor's cadence; without one, the shortest of the others'."""
    others = ContactCadence.objects.filter(workspace=workspace, contact_id__in=other_ids)
    if ContactCadence.objects.filter(workspace=workspace, contact=survivor).exists():
        others.delete()
        return 0
    keep = others.order_by("every_days", "id").first()
    if keep is None:
        return 0
    others.exclude(id=keep.id).delete()
    return others.filter(id=keep.id).update(contact=survivor)


MERGE_HANDLERS[ContactCadence] = _merge_cadences
