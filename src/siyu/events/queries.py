"""Reads over events."""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet

from siyu import bulk
from siyu.events.models import Event
from siyu.tenancy.models import Workspace


def events_for_contact(
    *, workspace: Workspace, contact_id: int, limit: int = 200
) -> QuerySet[Event]:
    return Event.objects.filter(workspace=workspace, contact_id=contact_id).order_by(
        "-occurred_at"
    )[:limit]


def event_ids_stored(*, workspace: Workspace, event_ids: list[str]) -> set[str]:
    """Which of ``event_ids`` the workspace already has, in one query."""
    if not event_ids:
        return set()
    match, params = bulk.in_list(event_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT event_id FROM {Event._meta.db_table} WHERE workspace_id = %s AND event_id {match}",  # noqa: S608
            [workspace.id, *params],
        )
        return {row[0] for row in cursor.fetchall()}
