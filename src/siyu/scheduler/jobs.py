"""The registry of periodic jobs: name → (interval, task). Apps' tasks are listed here rather
than registering themselves, so the whole schedule reads in one place."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: int
    task_path: str  # dotted path of a django-tasks task taking no arguments

    def task(self):
        return import_string(self.task_path)


JOBS: tuple[Job, ...] = (
    Job("audiences.refresh_due_segments", 60, "siyu.audiences.tasks.refresh_due_segments"),
    Job("messaging.dispatch_outbox", 10, "siyu.messaging.tasks.dispatch_outbox"),
    Job("journeys.run", 10, "siyu.journeys.tasks.run_journeys"),
    Job("insights.refit_all_workspaces", 24 * 3600, "siyu.insights.tasks.refit_all_workspaces"),
    Job("analytics.rollups_update_recent", 15 * 60, "siyu.analytics.tasks.rollups_update_recent"),
    Job("inbox.run_cadences", 3600, "siyu.inbox.tasks.run_cadences"),
)
