"""Reads over events."""

from __future__ import annotations

from django.db.models import QuerySet

from siyu.events.models import Event
from siyu.tenancy.models import Workspace


def events_for_contact(*, workspace: Workspace, contact_id: int, limit: int = 200) -> QuerySet[Event]:
    return Event.objects.filter(workspace=workspace, contact_id=contact_id).order_by("-occurred_at")[:limit]
