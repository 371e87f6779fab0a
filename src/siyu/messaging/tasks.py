"""Background work for messaging: thin tasks calling services."""

from __future__ import annotations

from django_tasks import task

from siyu.messaging import services


@task()
def dispatch_outbox() -> int:
    """Enqueued by the scheduler every few seconds; sends what is due until the outbox is empty
    or its time budget is spent (the next run picks up the rest). Several can run at once."""
    return services.outbox_drain(worker_id=services.worker_name())
