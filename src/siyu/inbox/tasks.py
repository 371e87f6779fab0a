"""Background work of the task inbox: thin tasks calling services."""

from __future__ import annotations

from django_tasks import task

from siyu.inbox import services


@task()
def run_cadences() -> int:
    """Enqueued by the scheduler every hour: wakes snoozed tasks whose time came and creates the
    follow-up tasks that contacts' cadences call for (at most one per contact and day)."""
    return services.cadence_run_all()
