"""Background work for audiences: thin tasks calling services."""

from __future__ import annotations

from django.utils import timezone
from django_tasks import task

from siyu.audiences import services


@task()
def refresh_due_segments() -> int:
    """Run by the scheduler every minute; refreshes the dynamic segments whose time has come."""
    return services.segments_refresh_due(now=timezone.now())
