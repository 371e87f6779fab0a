"""Background work for journeys: a thin task calling the engine."""

from __future__ import annotations

from django_tasks import task

from siyu.journeys import services


@task()
def run_journeys() -> int:
    """Enqueued by the scheduler every few seconds: fires schedules, enrolls from new trigger
    rows, exits on goals and moves due enrollments on. Several can run at once."""
    return services.journeys_tick().moved
