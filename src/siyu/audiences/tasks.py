"""Background work for audiences: thin tasks calling services."""

from __future__ import annotations

from django.utils import timezone
from django_tasks import task

from siyu.audiences import layers_services, services
from siyu.tenancy.models import Workspace


@task()
def refresh_due_segments() -> int:
    """Run by the scheduler every minute; refreshes the dynamic segments whose time has come."""
    return services.segments_refresh_due(now=timezone.now())


@task()
def refresh_layers(workspace_id: int) -> dict[str, int | str]:
    """Recomputes a workspace's layers (the console's 重新计算 button): a few seconds of set
    statements on a pool of tens of thousands, too long to hold the request."""
    done = layers_services.layers_refresh(workspace=Workspace.objects.get(id=workspace_id))
    return {"contacts": done.contacts, "month": done.month.strftime("%Y-%m")}
