"""The scheduler tick: enqueue every due periodic job exactly once.

Policy for missed runs (a worker down at 08:00): a job whose due time has passed runs ONCE when
a worker comes back, and its next run is the next slot after now — never a burst of catch-up
runs."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from siyu.scheduler.jobs import JOBS, Job
from siyu.scheduler.models import PeriodicJob


def _next_slot(due: datetime, every: int, now: datetime) -> datetime:
    """The first slot on the job's grid strictly after ``now``."""
    missed = math.floor((now - due).total_seconds() / every) + 1
    return due + timedelta(seconds=every * max(missed, 1))


def jobs_sync(*, now: datetime, jobs: tuple[Job, ...] = JOBS) -> None:
    for job in jobs:
        PeriodicJob.objects.get_or_create(name=job.name, defaults={"every_seconds": job.every_seconds, "next_run_at": now})
        PeriodicJob.objects.filter(name=job.name).exclude(every_seconds=job.every_seconds).update(every_seconds=job.every_seconds)


@transaction.atomic
def tick(*, now: datetime | None = None, jobs: tuple[Job, ...] = JOBS) -> list[str]:
    """Enqueues the due jobs and returns their names. Rows are locked with SKIP LOCKED on
    PostgreSQL, so a second worker ticking at the same moment skips them instead of waiting and
    enqueueing again; SQLite serialises writers, which gives the same guarantee."""
    now = now or timezone.now()
    jobs_sync(now=now, jobs=jobs)
    by_name = {job.name: job for job in jobs}
    due = PeriodicJob.objects.filter(name__in=by_name, next_run_at__lte=now).order_by("id")
    if connection.features.has_select_for_update_skip_locked:
        due = due.select_for_update(skip_locked=True)
    enqueued = []
    for row in due:
        job = by_name[row.name]
        job.task().enqueue()
        row.next_run_at = _next_slot(row.next_run_at, job.every_seconds, now)
        row.last_enqueued_at = now
        row.runs += 1
        row.save(update_fields=["next_run_at", "last_enqueued_at", "runs"])
        enqueued.append(row.name)
    return enqueued
