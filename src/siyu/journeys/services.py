"""Every write of journeys: create, edit (a new version when live), publish, pause, resume,
stop, launch, and the engine that enrolls contacts and walks them through the steps.

The engine works on sets, never contact by contact. Entering is one INSERT … SELECT from the
trigger's source rows (new contacts, events, orders, segment changes, a segment's members) with
the entry filter and the re-entry rule in its WHERE. A step runs for every enrollment due at it
at once: the rows are claimed (FOR UPDATE SKIP LOCKED on PostgreSQL, so several workers share
the work), the step's effect is written (outbox rows, tags, staff tasks) and the rows move on,
all in ONE transaction. A worker that dies mid-step therefore leaves nothing half-done: the
transaction rolls back and the rows are due again; the outbox's idempotency keys
("journey:<id>:<step>:<entry number>:contact:<id>") make a repeated step a no-op besides. A
journey that starts by sending runs that step as contacts enter (``_enter_sending``): one write
per walk instead of an insert and a move.

Raw SQL here is composed of table names from model ``_meta``, constants and compiled rule SQL;
every value travels as a parameter.
"""

from __future__ import annotations

import json
import logging
import time as clock
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, models, transaction
from django.db.models import F, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from siyu import bulk
from siyu.audiences import services as audiences_services
from siyu.audiences.models import (
    Segment,
    Tag,
    TagSource,
)
from siyu.audiences.rules import rule_sql
from siyu.commerce.models import Order
from siyu.contacts.models import Contact
from siyu.contacts.services import MERGE_HANDLERS
from siyu.errors import DomainError, ValidationFailed
from siyu.events.models import Event
from siyu.experiments import stats
from siyu.inbox import services as inbox_services
from siyu.journeys import cron, sources
from siyu.journeys import definition as spec
from siyu.journeys.models import (
    Enrollment,
    EnrollmentStatus,
    Journey,
    JourneyRun,
    JourneyStatus,
    JourneyVersion,
    StepCount,
)
from siyu.messaging import services as messaging_services
from siyu.messaging.models import ChannelConfig, MessageTemplate
from siyu.tenancy.models import Workspace
from siyu.tenancy.services import actor_login, audit_record

logger = logging.getLogger(__name__)

#: Source rows that arrived up to this long before the last scan are scanned again: a row
#: written by a transaction that began before the scan but committed after it is not missed.
#: Entry keys make the second look harmless.
SCAN_OVERLAP = timedelta(minutes=2)
#: Enrollments moved per transaction.
CHUNK = 20_000


def _q(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _ts(moment: datetime | None) -> Any:
    return connection.ops.adapt_datetimefield_value(moment)


def _execute(sql: str, params: list[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def arrival_time(step: dict, now: datetime, zone: ZoneInfo) -> datetime:
    """When an enrollment arriving at ``step`` now is due there: later only for a wait."""
    if step["type"] != "wait":
        return now
    if "duration" in step:
        return now + spec.wait_duration(step["duration"])
    until = step["until"]
    wall = spec.parse_time(until["time"])
    weekdays = set(until.get("weekdays") or range(1, 8))
    day = now.astimezone(zone).date()
    for offset in range(8):
        candidate = datetime.combine(day + timedelta(days=offset), wall, tzinfo=zone)
        if candidate > now and candidate.isoweekday() in weekdays:
            return candidate
    raise ValidationFailed("invalid_journey", "until never comes", path="until")  # unreachable


# --- editing ------------------------------------------------------------------------------------


def _check_name(workspace: Workspace, name: str, exclude_id: int | None = None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed(
            "invalid_journey", "A journey needs a name of 1–100 characters.", path="name"
        )
    if Journey.objects.filter(workspace=workspace, name=name).exclude(id=exclude_id).exists():
        raise ValidationFailed(
            "invalid_journey", f"A journey named {name!r} exists already.", path="name"
        )
    return name


def _validate(workspace: Workspace, definition: Any, now: datetime) -> dict:
    try:
        return spec.validate(workspace=workspace, definition=definition, now=now)
    except ValidationFailed as exc:
        raise ValidationFailed(
            exc.code, exc.message, path="definition" + (f".{exc.path}" if exc.path else "")
        ) from exc


@transaction.atomic
def journey_create(
    *,
    workspace: Workspace,
    name: str,
    definition: Any,
    description: str = "",
    actor: Any = None,
    now: datetime | None = None,
) -> Journey:
    """A draft with version 1; nothing runs until it is published."""
    now = now or timezone.now()
    journey = Journey.objects.create(
        workspace=workspace,
        name=_check_name(workspace, name),
        description=description[:500],
        status=JourneyStatus.DRAFT,
    )
    version = JourneyVersion.objects.create(
        workspace=workspace,
        journey=journey,
        number=1,
        definition=_validate(workspace, definition, now),
        created_by=actor_login(actor),
    )
    journey.current_version = version
    journey.save(update_fields=["current_version"])
    audit_record(workspace=workspace, action="journey.create", actor_user=actor, target=journey)
    return journey


def _locked(workspace: Workspace, journey: Journey) -> Journey:
    return Journey.objects.select_for_update().get(workspace=workspace, id=journey.id)


@transaction.atomic
def journey_update(
    *,
    workspace: Workspace,
    journey: Journey,
    definition: Any,
    name: str | None = None,
    description: str | None = None,
    actor: Any = None,
    now: datetime | None = None,
) -> Journey:
    """A draft is edited in place. A journey that was ever published gets a new version: new
    entrants take it, running enrollments finish on the version they entered."""
    now = now or timezone.now()
    journey = _locked(workspace, journey)
    clean = _validate(workspace, definition, now)
    if name is not None:
        journey.name = _check_name(workspace, name, exclude_id=journey.id)
    if description is not None:
        journey.description = description[:500]
    current = journey.current_version
    if current.published_at is None:
        current.definition = clean
        current.save(update_fields=["definition"])
    else:
        current = JourneyVersion.objects.create(
            workspace=workspace,
            journey=journey,
            number=current.number + 1,
            definition=clean,
            created_by=actor_login(actor),
            published_at=now if journey.status != JourneyStatus.DRAFT else None,
        )
        journey.current_version = current
    if journey.status in (JourneyStatus.LIVE, JourneyStatus.PAUSED):
        journey.next_fire_at = _next_fire(workspace, clean, now)
    journey.save()
    audit_record(
        workspace=workspace,
        action="journey.update",
        actor_user=actor,
        target=journey,
        data={"version": current.number},
    )
    return journey


def _schedule_of(trigger: dict) -> cron.Cron | None:
    """The clock a trigger runs on: its cron, a birthday trigger's daily hour, or none."""
    if trigger["type"] == "schedule":
        return cron.parse(trigger["cron"])
    if trigger["type"] == "event" and trigger["event"] == "birthday":
        hour, minute = trigger.get("at", sources.BIRTHDAY_AT).split(":")
        return cron.parse(f"{int(minute)} {int(hour)} * * *")
    return None


def _next_fire(workspace: Workspace, definition: dict, now: datetime) -> datetime | None:
    schedule = _schedule_of(definition["trigger"])
    return schedule.next_after(now, ZoneInfo(workspace.time_zone)) if schedule else None


@transaction.atomic
def journey_publish(
    *, workspace: Workspace, journey: Journey, actor: Any = None, now: datetime | None = None
) -> Journey:
    """Switches a draft or paused journey on. Event triggers count from this moment: what
    happened before (or while it was paused) does not enroll anybody."""
    now = now or timezone.now()
    journey = _locked(workspace, journey)
    if journey.status == JourneyStatus.STOPPED:
        raise DomainError(
            "journey_stopped",
            "A stopped journey cannot be switched on again; copy it.",
            http_status=409,
        )
    version = journey.current_version
    definition = _validate(workspace, version.definition, now)  # references may have gone
    if version.published_at is None:
        version.published_at = now
        version.save(update_fields=["published_at"])
    journey.status = JourneyStatus.LIVE
    journey.trigger_watermark = now
    journey.live_since = now
    journey.goal_checked_at = journey.goal_checked_at or now
    journey.next_fire_at = _next_fire(workspace, definition, now)
    journey.last_error = ""
    journey.save()
    audit_record(workspace=workspace, action="journey.publish", actor_user=actor, target=journey)
    return journey


@transaction.atomic
def journey_pause(*, workspace: Workspace, journey: Journey, actor: Any = None) -> Journey:
    """Nobody enters and nobody moves until it is resumed; messages already queued still go."""
    journey = _locked(workspace, journey)
    if journey.status != JourneyStatus.LIVE:
        raise DomainError("journey_not_live", "Only a live journey can be paused.", http_status=409)
    journey.status = JourneyStatus.PAUSED
    journey.save(update_fields=["status", "updated_at"])
    audit_record(workspace=workspace, action="journey.pause", actor_user=actor, target=journey)
    return journey


@transaction.atomic
def journey_stop(
    *, workspace: Workspace, journey: Journey, actor: Any = None, now: datetime | None = None
) -> Journey:
    """Ends the journey for good: every running enrollment exits as stopped."""
    now = now or timezone.now()
    journey = _locked(workspace, journey)
    Enrollment.objects.filter(journey=journey, status=EnrollmentStatus.ACTIVE).update(
        status=EnrollmentStatus.STOPPED, exited_at=now, exit_reason="journey stopped"
    )
    journey.status = JourneyStatus.STOPPED
    journey.next_fire_at = None
    journey.save(update_fields=["status", "next_fire_at", "updated_at"])
    audit_record(workspace=workspace, action="journey.stop", actor_user=actor, target=journey)
    return journey


@transaction.atomic
def journey_launch(
    *,
    workspace: Workspace,
    journey: Journey,
    segment: Segment | None = None,
    actor: Any = None,
    now: datetime | None = None,
) -> JourneyRun:
    """Enrolls a segment's members (the trigger's segment unless another is given; all
    contacts when neither) into a live manual journey."""
    now = now or timezone.now()
    journey = _locked(workspace, journey)
    version = journey.current_version
    trigger = version.definition["trigger"]
    if journey.status != JourneyStatus.LIVE:
        raise DomainError(
            "journey_not_live", "Publish the journey before launching it.", http_status=409
        )
    if trigger["type"] != "manual":
        raise DomainError(
            "not_manual",
            "Only a journey with a manual trigger is launched by hand.",
            http_status=409,
        )
    if segment is not None and segment.workspace_id != workspace.id:
        raise ValidationFailed(
            "invalid_journey", "Segment not found in this workspace.", path="segment_id"
        )
    segment_id = segment.id if segment is not None else trigger.get("segment_id")
    run = JourneyRun.objects.create(
        workspace=workspace, journey=journey, version=version, kind="launch", at=now
    )
    run.enrolled = _enroll(
        journey=journey,
        version=version,
        source=sources.audience_source(workspace, segment_id, f"launch:{run.id}"),
        now=now,
    )
    run.save(update_fields=["enrolled"])
    audit_record(
        workspace=workspace,
        action="journey.launch",
        actor_user=actor,
        target=journey,
        data={"segment_id": segment_id, "enrolled": run.enrolled},
    )
    return run


# --- entering -----------------------------------------------------------------------------------


def _enroll(
    *,
    journey: Journey,
    version: JourneyVersion,
    source: QuerySet,
    now: datetime,
    rescan: bool = False,
) -> int:
    """One INSERT … SELECT from ``source`` (cid, ekey); returns how many entered. A contact
    appearing several times in one batch enters once. Entrants who fall in the holdout are
    marked right away and never receive anything.

    ``rescan``: the source carries each row's arrival time ``arrived`` and may repeat rows seen by
    an earlier scan; a row that arrived before the contact's last entry is not a new entry."""
    workspace = journey.workspace
    definition = version.definition
    enr = _q(Enrollment)
    reentry = sources.reentry_of(definition)
    source_sql, source_params = source.query.sql_with_params()
    filters, filter_params = [], []
    if definition.get("entry_rule") is not None:
        rule = rule_sql(workspace=workspace, rule=definition["entry_rule"], now=now)
        filters.append(f"src.cid IN (SELECT r.contact_id FROM ({rule.sql}) r)")  # noqa: S608
        filter_params.extend(rule.params)
    if rescan:
        filters.append(
            f"NOT EXISTS (SELECT 1 FROM {enr} e WHERE e.journey_id = %s AND e.contact_id = src.cid "  # noqa: S608
            "AND e.entered_at >= src.arrived)"
        )
        filter_params.append(journey.id)
    if reentry == "once":
        filters.append(
            f"NOT EXISTS (SELECT 1 FROM {enr} e WHERE e.journey_id = %s AND e.contact_id = src.cid)"  # noqa: S608
        )
        filter_params.append(journey.id)
        seq_sql, seq_params = "1", []
    else:
        if reentry == "after_exit":
            filters.append(
                f"NOT EXISTS (SELECT 1 FROM {enr} e WHERE e.journey_id = %s AND e.contact_id = src.cid "  # noqa: S608
                f"AND e.status = '{EnrollmentStatus.ACTIVE}')"
            )
            filter_params.append(journey.id)
        seq_sql = (
            f"(SELECT COUNT(*) FROM {enr} e WHERE e.journey_id = %s AND e.contact_id = src.cid) + 1"  # noqa: S608
        )
        seq_params = [journey.id]
    first = definition["steps"][0]
    zone = ZoneInfo(workspace.time_zone)
    holdout = definition.get("holdout_percent", 0)

    def insert(
        status: str, step_key: str, next_run_at: datetime, exited: bool
    ) -> tuple[str, list[Any]]:
        """The INSERT … SELECT entering the source's contacts in ``status`` at ``step_key``."""
        values = [workspace.id, journey.id, version.id, *seq_params, step_key]
        values += [_ts(next_run_at), _ts(now), _ts(now) if exited else None]
        return (
            f"INSERT INTO {enr} (workspace_id, journey_id, version_id, contact_id, entry_key, seq, "  # noqa: S608
            "status, step_key, next_run_at, variant, entered_at, exited_at, exit_reason) "
            f"SELECT %s, %s, %s, src.cid, MIN(src.ekey), {seq_sql}, '{status}', %s, %s, '', %s, %s, "
            f"'{'completed' if exited else ''}' "
            f"FROM ({source_sql}) src WHERE {' AND '.join(filters) or '1 = 1'} GROUP BY src.cid "
            "ON CONFLICT DO NOTHING" + (" RETURNING id, contact_id" if holdout else ""),
            [*values, *source_params, *filter_params],
        )

    if (
        not holdout
        and first["type"] in ("send", "webhook")
        and arrival_time(first, now, zone) <= now
    ):
        try:
            with transaction.atomic():
                return _enter_sending(journey, version, first, now, reentry, insert)
        except (DomainError, MessageTemplate.DoesNotExist, ChannelConfig.DoesNotExist):
            pass  # a refused send: entered at the step instead, the walk fails them with the reason
    sql, params = insert(
        EnrollmentStatus.ACTIVE, first["key"], arrival_time(first, now, zone), False
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if not holdout:
            return cursor.rowcount
        rows = cursor.fetchall()
    buckets = stats.buckets(f"journey:{journey.id}:holdout", [c for _, c in rows])
    held = [rows[i][0] for i in (buckets < holdout * stats.BUCKETS // 100).nonzero()[0]]
    _update(held, status=EnrollmentStatus.HOLDOUT, exited_at=now, exit_reason="holdout")
    return len(rows)


def _enter_sending(
    journey: Journey,
    version: JourneyVersion,
    first: dict,
    now: datetime,
    reentry: str,
    insert: Callable[[str, str, datetime, bool], tuple[str, list[Any]]],
) -> int:
    """Entering a journey that starts by sending: the entrants' messages are queued in the same
    transaction and the walks are written already past the step (completed when it was the
    last), so a launch writes each enrollment once instead of inserting it at the step and
    moving it a moment later. What is written is what the walk would have written: the same
    outbox keys, caps and step count."""
    definition = version.definition
    after = first.get("next", spec.next_in_list(definition["steps"], 0))
    if after == spec.EXIT:
        sql, params = insert(EnrollmentStatus.COMPLETED, first["key"], now, True)
    else:
        step = spec.step_by_key(definition)[after][1]
        zone = ZoneInfo(journey.workspace.time_zone)
        sql, params = insert(EnrollmentStatus.ACTIVE, after, arrival_time(step, now, zone), False)
    staged = connection.vendor == "postgresql"
    entered = _enter_into_staging(sql, params) if staged else _execute(sql, params)
    if entered:
        _count(journey, version, first["key"], entered)
        now_entered = Enrollment.objects.filter(journey=journey, version=version, entered_at=now)
        if reentry == "once":
            seqs = [1]
        elif staged:
            seqs = _staged_seqs()
        else:
            seqs = sorted(set(now_entered.values_list("seq", flat=True)))
        for seq in seqs:
            ids = (
                RawSQL(f"SELECT contact_id FROM {_ENTERED} WHERE seq = %s", [seq])  # noqa: S608, S611
                if staged
                else now_entered.filter(seq=seq).values("contact_id")
            )
            _send(
                journey=journey,
                version=version,
                step=first,
                seq=seq,
                contact_ids=Contact.objects.filter(id__in=ids),
                now=now,
            )
    if staged:
        _execute(f"DROP TABLE {_ENTERED}", [])
    return entered


_ENTERED = "siyu_journey_entered"


def _enter_into_staging(sql: str, params: list[Any]) -> int:
    """Runs the entering INSERT and keeps who entered (contact, seq) in a temporary table, with
    statistics (PostgreSQL). The outbox is then planned for the real number of entrants: read
    back from the enrollments just written, which have no statistics yet, they were planned as
    one row, and the million-contact send became nested loops."""
    _execute(f"DROP TABLE IF EXISTS {_ENTERED}", [])
    _execute(f"CREATE TEMP TABLE {_ENTERED} (contact_id bigint, seq integer)", [])
    entered = _execute(
        f"WITH entered AS ({sql} RETURNING contact_id, seq) "  # noqa: S608
        f"INSERT INTO {_ENTERED} SELECT contact_id, seq FROM entered",
        params,
    )
    _execute(f"ANALYZE {_ENTERED}", [])
    return entered


def _staged_seqs() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT seq FROM {_ENTERED} ORDER BY seq")  # noqa: S608
        return [seq for (seq,) in cursor.fetchall()]


# --- walking ------------------------------------------------------------------------------------


def _update(ids: list[int], **fields: Any) -> None:
    """Sets ``fields`` on the enrollments ``ids``, a chunk at a time, matched by primary key
    (``= ANY(array)`` on PostgreSQL, so the plan is an index lookup per id, not a join)."""
    columns = ", ".join(f"{connection.ops.quote_name(name)} = %s" for name in fields)
    values = [_ts(v) if isinstance(v, datetime) else v for v in fields.values()]
    for start in range(0, len(ids), CHUNK):
        match, params = bulk.in_list(ids[start : start + CHUNK])
        _execute(f"UPDATE {_q(Enrollment)} SET {columns} WHERE id {match}", [*values, *params])  # noqa: S608


def _ids(values: list[int]) -> RawSQL:
    """A subquery of the given ids in one parameter, for a queryset another app's service
    takes: Django's ``__in`` with a list compiles one placeholder per value."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", [list(values)])
    return RawSQL("SELECT value FROM json_each(%s)", [json.dumps(list(values))])


def _count(journey: Journey, version: JourneyVersion, step_key: str, n: int) -> None:
    counter, _ = StepCount.objects.get_or_create(
        workspace_id=journey.workspace_id, journey=journey, version=version, step_key=step_key
    )
    StepCount.objects.filter(id=counter.id).update(reached=F("reached") + n)


@dataclass
class _Claimed:
    """The enrollments one transaction moves: ids and their contacts, in id order."""

    ids: list[int]
    contact_ids: list[int]

    def contacts(self, workspace: Workspace) -> QuerySet[Contact]:
        return Contact.objects.filter(workspace=workspace, id__in=_ids(self.contact_ids))

    def subset(self, contact_ids: set[int]) -> tuple[list[int], list[int]]:
        """(ids whose contact is in ``contact_ids``, the other ids)."""
        inside, outside = [], []
        for eid, cid in zip(self.ids, self.contact_ids, strict=True):
            (inside if cid in contact_ids else outside).append(eid)
        return inside, outside


def _effect(
    *,
    journey: Journey,
    version: JourneyVersion,
    step: dict,
    seq: int,
    claimed: _Claimed,
    now: datetime,
) -> list[tuple[list[int], str]]:
    """Writes what ``step`` does for the claimed enrollments; returns (ids, next step) routes
    covering every claimed enrollment still walking."""
    workspace = journey.workspace
    definition = version.definition
    index = spec.step_by_key(definition)[step["key"]][0]
    after = step.get("next", spec.next_in_list(definition["steps"], index))
    kind = step["type"]
    prefix = f"journey:{journey.id}:{step['key']}:{seq}"
    if kind in ("send", "webhook"):
        _send(
            journey=journey,
            version=version,
            step=step,
            seq=seq,
            contact_ids=claimed.contact_ids,
            now=now,
        )
    elif kind == "tag":
        tag = Tag.objects.get(workspace=workspace, id=step["tag_id"])
        if step["action"] == "add":
            audiences_services.tag_contacts(
                workspace=workspace,
                tag=tag,
                contacts=claimed.contacts(workspace),
                source=TagSource.JOURNEY,
            )
        else:
            audiences_services.untag_contacts(
                workspace=workspace, tag=tag, contacts=claimed.contacts(workspace)
            )
    elif kind == "task":
        inbox_services.tasks_create_for_contacts(
            workspace=workspace,
            contacts=claimed.contacts(workspace),
            kind=step["kind"],
            title=step["title"],
            note=step.get("note", ""),
            due_at=now + timedelta(hours=step["due_in_hours"]),
            idempotency_prefix=prefix,
            source_kind="journey",
            source_id=journey.id,
            source_key=step["key"],
        )
    elif kind == "branch":
        rule = rule_sql(workspace=workspace, rule=step["rule"], now=now)
        matching, params = bulk.in_list(claimed.contact_ids)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT r.contact_id FROM ({rule.sql}) r WHERE r.contact_id {matching}",  # noqa: S608
                [*rule.params, *params],
            )
            hits = {row[0] for row in cursor.fetchall()}
        yes, no = claimed.subset(hits)
        return [(yes, step["yes"]), (no, step["no"])]
    elif kind == "split":
        return _split(journey=journey, step=step, claimed=claimed, now=now)
    elif kind == "exit":
        return [(claimed.ids, spec.EXIT)]
    return [(claimed.ids, after)]


def _send(
    *,
    journey: Journey,
    version: JourneyVersion,
    step: dict,
    seq: int,
    contact_ids: list[int] | QuerySet[Contact],
    now: datetime,
) -> None:
    """Queues a send or webhook step's message for ``contact_ids`` under the walk's outbox keys,
    with the journey's caps."""
    workspace = journey.workspace
    caps = version.definition.get("caps") or {}
    messaging_services.messages_queue(
        workspace=workspace,
        template=MessageTemplate.objects.get(workspace=workspace, id=step["template_id"]),
        channel=ChannelConfig.objects.get(workspace=workspace, id=step["channel_id"]),
        contact_ids=contact_ids,
        idempotency_prefix=f"journey:{journey.id}:{step['key']}:{seq}",
        now=now,
        daily_cap=caps.get("daily"),
        weekly_cap=caps.get("weekly"),
        variables=step.get("variables") or None,
        journey_id=journey.id,
        journey_step=step["key"],
    )


def _split(
    *, journey: Journey, step: dict, claimed: _Claimed, now: datetime
) -> list[tuple[list[int], str]]:
    """Deterministic arms (the experiments' bucketing, salted by journey and step); the
    holdout arm exits at once and is measured against the others."""
    chosen = stats.assign_variants(
        f"journey:{journey.id}:{step['key']}", claimed.contact_ids, step["arms"]
    )
    routes = []
    for arm in step["arms"]:
        ids = [eid for eid, key in zip(claimed.ids, chosen, strict=True) if key == arm["key"]]
        if arm["key"] == spec.HOLDOUT_ARM:
            _update(
                ids,
                variant=arm["key"],
                status=EnrollmentStatus.HOLDOUT,
                exited_at=now,
                exit_reason="holdout",
            )
        else:
            _update(ids, variant=arm["key"])
            routes.append((ids, arm.get("next", spec.EXIT)))
    return routes


def _move(
    *, version: JourneyVersion, ids: list[int], target: str, now: datetime, zone: ZoneInfo
) -> None:
    if target == spec.EXIT:
        _update(ids, status=EnrollmentStatus.COMPLETED, exited_at=now, exit_reason="completed")
        return
    step = spec.step_by_key(version.definition)[target][1]
    _update(ids, step_key=target, next_run_at=arrival_time(step, now, zone))


def _claim(
    *, version: JourneyVersion, step_key: str, seq: int, now: datetime, limit: int
) -> _Claimed:
    """Locks up to ``limit`` enrollments due at the step for this transaction; other workers
    skip them (SKIP LOCKED on PostgreSQL; SQLite's write lock serialises workers)."""
    enr = _q(Enrollment)
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, contact_id FROM {enr} WHERE version_id = %s AND step_key = %s AND seq = %s "  # noqa: S608
            f"AND status = '{EnrollmentStatus.ACTIVE}' AND next_run_at <= %s ORDER BY id LIMIT %s{skip_locked}",
            [version.id, step_key, seq, _ts(now), limit],
        )
        rows = cursor.fetchall()
    return _Claimed(ids=[r[0] for r in rows], contact_ids=[r[1] for r in rows])


def advance_group(
    *,
    journey: Journey,
    version: JourneyVersion,
    step_key: str,
    seq: int,
    now: datetime,
    limit: int = CHUNK,
) -> int:
    """Runs one step for up to ``limit`` enrollments due at it, in one transaction; returns how
    many moved. A step whose effect is refused (a channel switched off, a tag deleted) fails
    those enrollments with the reason instead of leaving them stuck."""
    zone = ZoneInfo(journey.workspace.time_zone)
    step = spec.step_by_key(version.definition)[step_key][1]
    with transaction.atomic():
        claimed = _claim(version=version, step_key=step_key, seq=seq, now=now, limit=limit)
        if not claimed.ids:
            return 0
        _count(journey, version, step_key, len(claimed.ids))
        try:
            with transaction.atomic():
                routes = _effect(
                    journey=journey, version=version, step=step, seq=seq, claimed=claimed, now=now
                )
        except (
            DomainError,
            MessageTemplate.DoesNotExist,
            ChannelConfig.DoesNotExist,
            Tag.DoesNotExist,
        ) as exc:
            reason = getattr(exc, "message", None) or f"{step['type']} step {step_key}: {exc}"
            _update(
                claimed.ids, status=EnrollmentStatus.FAILED, exited_at=now, exit_reason=reason[:200]
            )
            Journey.objects.filter(id=journey.id).update(last_error=f"{step_key}: {reason}"[:2000])
            return len(claimed.ids)
        for ids, target in routes:
            _move(version=version, ids=ids, target=target, now=now, zone=zone)
    return len(claimed.ids)


# --- the tick -----------------------------------------------------------------------------------


@dataclass
class TickResult:
    fired: int = 0
    scanned: int = 0
    enrolled: int = 0
    converted: int = 0
    moved: int = 0
    errors: list[str] = field(default_factory=list)


def _fire_schedules(now: datetime, result: TickResult) -> None:
    """Schedule and birthday triggers whose slot has come. Missed slots (a worker was down)
    are not replayed: the latest one runs once, the others are counted as skipped."""
    due = list(
        Journey.objects.filter(status=JourneyStatus.LIVE, next_fire_at__lte=now).values_list(
            "id", flat=True
        )
    )
    for journey_id in due:
        with transaction.atomic():
            journey = (
                Journey.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("workspace", "current_version")
                .filter(id=journey_id, status=JourneyStatus.LIVE, next_fire_at__lte=now)
                .first()
            )
            if journey is None:
                continue
            workspace, version = journey.workspace, journey.current_version
            trigger = version.definition["trigger"]
            zone = ZoneInfo(workspace.time_zone)
            schedule = _schedule_of(trigger)
            slot, skipped = journey.next_fire_at, 0
            while (later := schedule.next_after(slot, zone)) <= now:
                slot, skipped = later, skipped + 1
            if trigger["type"] == "schedule":
                source = sources.audience_source(
                    workspace,
                    trigger.get("segment_id"),
                    f"schedule:{slot.astimezone(zone):%Y%m%dT%H%M}",
                )
            else:
                source = sources.birthday_source(workspace, slot.astimezone(zone).date())
            enrolled = _enroll(journey=journey, version=version, source=source, now=now)
            JourneyRun.objects.create(
                workspace=workspace,
                journey=journey,
                version=version,
                kind="schedule",
                slot=slot,
                skipped_slots=skipped,
                enrolled=enrolled,
                at=now,
            )
            journey.next_fire_at = schedule.next_after(now, zone)
            journey.last_fired_at = now
            journey.save(update_fields=["next_fire_at", "last_fired_at"])
            result.fired += 1
            result.enrolled += enrolled


def _scan_triggers(now: datetime, result: TickResult) -> None:
    live = Journey.objects.filter(status=JourneyStatus.LIVE).select_related("current_version")
    ids = [
        j.id
        for j in live
        if j.current_version.definition["trigger"]["type"] == "event"
        and j.current_version.definition["trigger"]["event"] != "birthday"
    ]
    for journey_id in ids:
        with transaction.atomic():
            journey = (
                Journey.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("workspace", "current_version")
                .filter(id=journey_id, status=JourneyStatus.LIVE)
                .first()
            )
            if journey is None:
                continue
            since = max(
                (journey.trigger_watermark or now) - SCAN_OVERLAP, journey.live_since or now
            )
            version = journey.current_version
            source = sources.trigger_source(
                journey.workspace, version.definition["trigger"], since, now
            )
            result.enrolled += _enroll(
                journey=journey, version=version, source=source, now=now, rescan=True
            )
            journey.trigger_watermark = now
            journey.save(update_fields=["trigger_watermark"])
            result.scanned += 1


def _check_goals(now: datetime, result: TickResult) -> None:
    """Running enrollments whose goal happened since they entered leave as converted (so a
    customer who just bought gets no "come back" message)."""
    enr = _q(Enrollment)
    for journey in Journey.objects.filter(status=JourneyStatus.LIVE).select_related(
        "current_version"
    ):
        goals = {
            v.id: v.definition.get("goal")
            for v in JourneyVersion.objects.filter(journey=journey, published_at__isnull=False)
            if v.definition.get("goal")
        }
        since = (journey.goal_checked_at or now) - SCAN_OVERLAP
        for version_id, goal in goals.items():
            if goal["type"] == "order_paid":
                table, arrived, at, extra, extra_params = _q(Order), "created_at", "paid_at", "", []
            else:
                table, arrived, at = _q(Event), "received_at", "occurred_at"
                extra, extra_params = " AND g.type = %s", [goal["event"]]
            result.converted += _execute(
                f"UPDATE {enr} SET status = %s, exited_at = %s, exit_reason = 'goal' "  # noqa: S608
                f"WHERE version_id = %s AND status = %s AND EXISTS (SELECT 1 FROM {table} g "
                f"WHERE g.workspace_id = %s AND g.{arrived} > %s{extra} "
                f"AND g.contact_id = {enr}.contact_id AND g.{at} >= {enr}.entered_at)",
                [
                    EnrollmentStatus.CONVERTED,
                    _ts(now),
                    version_id,
                    EnrollmentStatus.ACTIVE,
                    journey.workspace_id,
                    _ts(since),
                    *extra_params,
                ],
            )
        Journey.objects.filter(id=journey.id).update(goal_checked_at=now)


def _due_groups(now: datetime, limit: int = 200) -> list[tuple[int, int, str, int]]:
    enr, jt = _q(Enrollment), _q(Journey)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.journey_id, e.version_id, e.step_key, e.seq FROM {enr} e JOIN {jt} j ON j.id = e.journey_id "  # noqa: S608
            f"WHERE e.status = %s AND e.next_run_at <= %s AND j.status = %s "
            "GROUP BY e.journey_id, e.version_id, e.step_key, e.seq ORDER BY MIN(e.next_run_at) LIMIT %s",
            [EnrollmentStatus.ACTIVE, _ts(now), JourneyStatus.LIVE, limit],
        )
        return cursor.fetchall()


def journeys_tick(
    *, now: datetime | None = None, budget_seconds: float = 50.0, chunk: int = CHUNK
) -> TickResult:
    """Everything due: schedule slots, new trigger rows, goals, then steps until nothing is due
    or the time budget is spent (the next tick continues; at least one chunk of ``chunk``
    enrollments moves per tick). Safe to run in several workers."""
    now = now or timezone.now()
    stop = clock.monotonic() + budget_seconds
    result = TickResult()
    _fire_schedules(now, result)
    _scan_triggers(now, result)
    _check_goals(now, result)
    failing: set[tuple] = set()
    while True:  # at least one chunk per tick, however small the budget
        groups = [g for g in _due_groups(now) if g not in failing]
        if not groups:
            break
        for group in groups:
            journey_id, version_id, step_key, seq = group
            version = JourneyVersion.objects.select_related("journey__workspace").get(id=version_id)
            moved = chunk
            while moved == chunk:  # the whole group, chunk after chunk, before looking again
                try:
                    moved = advance_group(
                        journey=version.journey,
                        version=version,
                        step_key=step_key,
                        seq=seq,
                        now=now,
                        limit=chunk,
                    )
                except Exception as exc:  # one broken group must not stop the others
                    logger.exception("journey %s step %s failed", journey_id, step_key)
                    result.errors.append(f"journey {journey_id} step {step_key}: {exc}")
                    failing.add(group)
                    break
                result.moved += moved
                if clock.monotonic() >= stop:
                    return result
    return result


def _merge_enrollments(workspace: Workspace, survivor: Contact, other_ids: list[int]) -> int:
    """The merged contacts' walks move to the survivor, renumbered after the survivor's own
    entries into the same journey, so (journey, contact, seq) stays unique and a "once only"
    journey still sees that the person has been through it."""
    last: dict[int, int] = {}
    for journey_id, seq in Enrollment.objects.filter(contact=survivor).values_list(
        "journey_id", "seq"
    ):
        last[journey_id] = max(last.get(journey_id, 0), seq)
    moved = list(
        Enrollment.objects.filter(workspace=workspace, contact_id__in=other_ids)
        .order_by("entered_at", "id")
        .values_list("id", "journey_id")
    )
    for enrollment_id, journey_id in moved:
        last[journey_id] = last.get(journey_id, 0) + 1
        Enrollment.objects.filter(id=enrollment_id).update(contact=survivor, seq=last[journey_id])
    return len(moved)


MERGE_HANDLERS[Enrollment] = _merge_enrollments
