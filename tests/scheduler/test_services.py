from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings
from django_tasks import task

from siyu.scheduler import services
from siyu.scheduler.jobs import Job
from siyu.scheduler.models import PeriodicJob

RUNS: list[str] = []
IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@task()
def record_run() -> None:
    RUNS.append("ran")


JOB = (Job("test.record", 3600, "tests.scheduler.test_services.record_run"),)
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clear():
    RUNS.clear()


@pytest.mark.django_db
@override_settings(TASKS=IMMEDIATE)
def test_a_due_job_runs_once_per_slot():
    assert services.tick(now=T0, jobs=JOB) == ["test.record"]
    assert services.tick(now=T0 + timedelta(minutes=30), jobs=JOB) == []
    assert services.tick(now=T0 + timedelta(hours=1), jobs=JOB) == ["test.record"]
    assert RUNS == ["ran", "ran"]


@pytest.mark.django_db
@override_settings(TASKS=IMMEDIATE)
def test_a_worker_down_for_a_day_runs_the_job_once_not_24_times():
    services.tick(now=T0, jobs=JOB)
    back = T0 + timedelta(hours=25, minutes=10)
    assert services.tick(now=back, jobs=JOB) == ["test.record"]
    assert services.tick(now=back, jobs=JOB) == []
    assert RUNS == ["ran", "ran"]
    # The grid is kept: the next run is at the next whole hour after coming back.
    assert PeriodicJob.objects.get(name="test.record").next_run_at == T0 + timedelta(hours=26)


@pytest.mark.django_db
@override_settings(TASKS=IMMEDIATE)
def test_changing_the_interval_in_code_updates_the_row():
    services.tick(now=T0, jobs=JOB)
    services.tick(now=T0, jobs=(Job("test.record", 60, JOB[0].task_path),))
    assert PeriodicJob.objects.get(name="test.record").every_seconds == 60
