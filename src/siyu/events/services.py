"""Event ingestion: validated, resolved to contacts in bulk, deduplicated by event_id."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from siyu.contacts import queries as contact_queries
from siyu.events.models import Event
from siyu.events.schemas import EventIn
from siyu.ingest import BatchResult, RowError, duplicate_ids
from siyu.tenancy.models import Workspace

#: Events further in the future than this are refused: a wrong clock or a wrong time zone.
MAX_CLOCK_SKEW_SECONDS = 3600


@dataclass
class PreparedEvents:
    events: list[Event]
    unchanged: int


def prepare_events(*, workspace: Workspace, items: list[EventIn]) -> tuple[PreparedEvents, list[RowError]]:
    errors: dict[int, RowError] = {i: RowError(i, "event_id", m) for i, m in duplicate_ids([e.event_id for e in items]).items()}
    contact_ids, unresolved = contact_queries.resolve_identity_refs(
        workspace=workspace,
        refs=[e.contact.model_dump() if e.contact else None for e in items],
        contact_ids=[e.contact_id for e in items],
    )
    for i, msg in unresolved.items():
        errors.setdefault(i, RowError(i, "contact_id" if items[i].contact_id else "contact", msg))
    now = timezone.now()
    for i, e in enumerate(items):
        if i not in errors and (e.occurred_at - now).total_seconds() > MAX_CLOCK_SKEW_SECONDS:
            errors[i] = RowError(i, "occurred_at", f"{e.occurred_at.isoformat()} is in the future")
    existing = set(
        Event.objects.filter(workspace=workspace, event_id__in=[e.event_id for e in items]).values_list("event_id", flat=True)
    )
    events, unchanged = [], 0
    for i, e in enumerate(items):
        if i in errors:
            continue
        if e.event_id in existing:
            unchanged += 1
            continue
        events.append(
            Event(
                workspace=workspace, event_id=e.event_id, contact_id=contact_ids[i], type=e.type, name=e.name,
                channel=e.channel, occurred_at=e.occurred_at, duration_seconds=e.duration_seconds, properties=e.properties,
            )
        )
    return PreparedEvents(events, unchanged), sorted(errors.values(), key=lambda r: r.index)


@transaction.atomic
def write_events(*, workspace: Workspace, prepared: PreparedEvents) -> BatchResult:
    # ignore_conflicts covers a concurrent writer sending the same event_id between our check and insert.
    Event.objects.bulk_create(prepared.events, batch_size=2000, ignore_conflicts=True)
    return BatchResult(created=len(prepared.events), unchanged=prepared.unchanged)


@transaction.atomic
def events_ingest(*, workspace: Workspace, items: list[EventIn], partial: bool = False) -> BatchResult:
    prepared, errors = prepare_events(workspace=workspace, items=items)
    if errors and not partial:
        BatchResult(errors=errors).raise_if_errors()
    result = write_events(workspace=workspace, prepared=prepared)
    result.errors = errors
    return result
