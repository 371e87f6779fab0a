"""Background upkeep of the daily rollups: thin tasks that call the services."""

from __future__ import annotations

from django_tasks import task

from siyu.analytics import services
from siyu.tenancy.models import Workspace


@task()
def rollups_update_recent() -> int:
    """Every 15 minutes (scheduler/jobs.py): the recent days of every workspace, and its health
    snapshots (read by the metrics page and the home dashboard)."""
    count = 0
    for workspace in Workspace.objects.order_by("id"):
        services.rollups_update_recent(workspace=workspace)
        services.health_snapshot_refresh(workspace=workspace)
        count += 1
    return count
