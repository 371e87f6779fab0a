"""Event ingestion: validated, resolved to contacts in bulk, deduplicated by event_id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from siyu import bulk
from siyu.contacts import queries as contact_queries
from siyu.events import queries
from siyu.events.models import Event
from siyu.events.schemas import EventIn
from siyu.ingest import BatchResult, RowError, duplicate_ids
from siyu.tenancy.models import Workspace

#: Events further in the future than this are refused: a wrong clock or a wrong time zone.
MAX_CLOCK_SKEW_SECONDS = 3600
#: The columns of a prepared event row, in order.
EVENT_COLUMNS = (
    "workspace_id",
    "event_id",
    "contact_id",
    "type",
    "name",
    "channel",
    "occurred_at",
    "duration_seconds",
    "properties",
    "received_at",
)
_JSON = DjangoJSONEncoder(ensure_ascii=False)


@dataclass
class PreparedEvents:
    """New events as rows of ``EVENT_COLUMNS`` values, ready for the database."""

    rows: list[tuple[Any, ...]]
    unchanged: int


def prepare_events(
    *, workspace: Workspace, items: list[EventIn]
) -> tuple[PreparedEvents, list[RowError]]:
    errors: dict[int, RowError] = {
        i: RowError(i, "event_id", m) for i, m in duplicate_ids([e.event_id for e in items]).items()
    }
    contact_ids, unresolved = contact_queries.resolve_identity_refs(
        workspace=workspace,
        refs=[e.contact for e in items],
        contact_ids=[e.contact_id for e in items],
    )
    for i, msg in unresolved.items():
        errors.setdefault(i, RowError(i, "contact_id" if items[i].contact_id else "contact", msg))
    now = timezone.now()
    for i, e in enumerate(items):
        if i not in errors and (e.occurred_at - now).total_seconds() > MAX_CLOCK_SKEW_SECONDS:
            errors[i] = RowError(i, "occurred_at", f"{e.occurred_at.isoformat()} is in the future")
    existing = queries.event_ids_stored(workspace=workspace, event_ids=[e.event_id for e in items])
    rows, unchanged, ws = [], 0, workspace.id
    for i, e in enumerate(items):
        if i in errors:
            continue
        if e.event_id in existing:
            unchanged += 1
            continue
        rows.append(
            (
                ws,
                e.event_id,
                contact_ids[i],
                e.type.value,
                e.name,
                e.channel,
                e.occurred_at,
                e.duration_seconds,
                _JSON.encode(e.properties),
                now,
            )
        )
    return PreparedEvents(rows, unchanged), sorted(errors.values(), key=lambda r: r.index)


@transaction.atomic
def write_events(*, workspace: Workspace, prepared: PreparedEvents) -> BatchResult:
    # A concurrent writer may store the same event_id between our check and insert: skipped, unchanged.
    created = bulk.insert(Event, EVENT_COLUMNS, prepared.rows, unique=("workspace_id", "event_id"))
    return BatchResult(created=created, unchanged=prepared.unchanged + len(prepared.rows) - created)


@transaction.atomic
def events_ingest(
    *, workspace: Workspace, items: list[EventIn], partial: bool = False
) -> BatchResult:
    prepared, errors = prepare_events(workspace=workspace, items=items)
    if errors and not partial:
        BatchResult(errors=errors).raise_if_errors()
    result = write_events(workspace=workspace, prepared=prepared)
    result.errors = errors
    return result
