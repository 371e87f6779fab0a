"""The task inbox over the API. An API key acts for the whole workspace (HQ): it sees every task,
filters by store, assignee, status and overdue, creates tasks, completes, snoozes, reassigns and
cancels them, and sets follow-up cadences for a contact or a segment's members."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status

from siyu.api.common import ErrorOut, local_time
from siyu.inbox import queries, services
from siyu.inbox.models import ContactCadence, SourceKind, StaffTask
from siyu.schemas import AwareDatetime, StrictModel
from siyu.tenancy.models import Workspace

router = Router()
HQ = queries.Viewer(role=None)


class TaskOut(Schema):
    id: int
    contact_id: int
    contact_name: str
    assignee_id: int | None
    assignee_name: str | None
    store_id: int | None
    store_name: str | None
    kind: str
    title: str
    note: str
    due_at: datetime
    status: str
    overdue: bool
    snoozed_until: datetime | None
    completed_at: datetime | None
    outcome: str
    source_kind: str
    source_id: int | None
    source_key: str
    idempotency_key: str
    created_at: datetime


class TaskFilter(Schema):
    status: str = Field(
        "open",
        description="open (incl. snoozed tasks whose time came), snoozed, done, cancelled, all",
    )
    store_id: int | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    overdue: bool = False
    contact_id: int | None = None
    kind: str | None = None
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class TaskIn(StrictModel):
    contact_id: int
    kind: str
    title: str
    note: str = ""
    due_at: AwareDatetime
    assignee_id: int | None = None
    idempotency_key: str = Field(
        "", description="a repeated key returns the task made the first time"
    )


class CompleteIn(StrictModel):
    outcome: str = ""


class SnoozeIn(StrictModel):
    until: AwareDatetime


class ReassignIn(StrictModel):
    assignee_id: int | None = Field(
        ..., description="null puts the task in its store's unassigned queue"
    )


class CancelIn(StrictModel):
    reason: str = ""


class CadenceIn(StrictModel):
    every_days: int | None = Field(..., description="1–365; null removes the cadence")


class CadenceOut(Schema):
    contact_id: int
    every_days: int | None
    starts_at: datetime | None
    updated_at: datetime | None


class SegmentCadenceOut(Schema):
    segment_id: int
    every_days: int | None
    contacts: int


def _task_out(task: StaffTask, workspace: Workspace, now: datetime) -> dict:
    return {
        "id": task.id,
        "contact_id": task.contact_id,
        "contact_name": task.contact.display_name,
        "assignee_id": task.assignee_id,
        "assignee_name": task.assignee.name if task.assignee else None,
        "store_id": task.store_id,
        "store_name": task.store.name if task.store else None,
        "kind": task.kind,
        "title": task.title,
        "note": task.note,
        "due_at": local_time(task.due_at, workspace),
        "status": task.status,
        "overdue": queries.task_is_overdue(task, now),
        "snoozed_until": local_time(task.snoozed_until, workspace),
        "completed_at": local_time(task.completed_at, workspace),
        "outcome": task.outcome,
        "source_kind": task.source_kind,
        "source_id": task.source_id,
        "source_key": task.source_key,
        "idempotency_key": task.idempotency_key,
        "created_at": local_time(task.created_at, workspace),
    }


def _fresh(workspace: Workspace, task: StaffTask) -> dict:
    task = queries.task_get(workspace=workspace, viewer=HQ, task_id=task.id)
    return _task_out(task, workspace, timezone.now())


@router.get("/tasks", response={200: list[TaskOut], 422: ErrorOut}, summary="List staff tasks")
def tasks_list(request: HttpRequest, filters: Query[TaskFilter]) -> list[dict]:
    """Soonest due first (done: latest completed first). Times in the workspace's zone."""
    workspace, now = request.workspace, timezone.now()
    rows = queries.tasks_list(
        workspace=workspace,
        viewer=HQ,
        now=now,
        status=filters.status,
        store_id=filters.store_id,
        assignee_id=filters.assignee_id,
        unassigned=filters.unassigned,
        overdue=filters.overdue,
        contact_id=filters.contact_id,
        kind=filters.kind,
    )[filters.offset : filters.offset + filters.limit]
    return [_task_out(t, workspace, now) for t in rows]


@router.post(
    "/tasks", response={201: TaskOut, 404: ErrorOut, 422: ErrorOut}, summary="Create a task"
)
def task_create(request: HttpRequest, payload: TaskIn):
    """For the contact's owner staff unless ``assignee_id`` is given."""
    workspace = request.workspace
    task = services.task_create(
        workspace=workspace,
        contact_id=payload.contact_id,
        kind=payload.kind,
        title=payload.title,
        note=payload.note,
        due_at=payload.due_at,
        assignee_id=payload.assignee_id,
        idempotency_key=payload.idempotency_key,
        source_kind=SourceKind.API,
    )
    return Status(201, _fresh(workspace, task))


@router.get("/tasks/{task_id}", response={200: TaskOut, 404: ErrorOut}, summary="One task")
def task_get(request: HttpRequest, task_id: int) -> dict:
    workspace = request.workspace
    return _task_out(
        queries.task_get(workspace=workspace, viewer=HQ, task_id=task_id), workspace, timezone.now()
    )


@router.post(
    "/tasks/{task_id}/complete",
    response={200: TaskOut, 404: ErrorOut, 422: ErrorOut},
    summary="Complete a task",
)
def task_complete(request: HttpRequest, task_id: int, payload: CompleteIn) -> dict:
    workspace = request.workspace
    task = services.task_complete(workspace=workspace, task_id=task_id, outcome=payload.outcome)
    return _fresh(workspace, task)


@router.post(
    "/tasks/{task_id}/snooze",
    response={200: TaskOut, 404: ErrorOut, 422: ErrorOut},
    summary="Snooze a task",
)
def task_snooze(request: HttpRequest, task_id: int, payload: SnoozeIn) -> dict:
    workspace = request.workspace
    task = services.task_snooze(workspace=workspace, task_id=task_id, until=payload.until)
    return _fresh(workspace, task)


@router.post(
    "/tasks/{task_id}/reassign",
    response={200: TaskOut, 404: ErrorOut, 422: ErrorOut},
    summary="Reassign a task",
)
def task_reassign(request: HttpRequest, task_id: int, payload: ReassignIn) -> dict:
    workspace = request.workspace
    task = services.task_reassign(
        workspace=workspace, task_id=task_id, assignee_id=payload.assignee_id
    )
    return _fresh(workspace, task)


@router.post(
    "/tasks/{task_id}/cancel",
    response={200: TaskOut, 404: ErrorOut, 422: ErrorOut},
    summary="Cancel a task",
)
def task_cancel(request: HttpRequest, task_id: int, payload: CancelIn) -> dict:
    workspace = request.workspace
    task = services.task_cancel(workspace=workspace, task_id=task_id, reason=payload.reason)
    return _fresh(workspace, task)


def _cadence_out(contact_id: int, cadence: ContactCadence | None, workspace: Workspace) -> dict:
    return {
        "contact_id": contact_id,
        "every_days": cadence.every_days if cadence else None,
        "starts_at": local_time(cadence.starts_at, workspace) if cadence else None,
        "updated_at": local_time(cadence.updated_at, workspace) if cadence else None,
    }


@router.put(
    "/contacts/{contact_id}/cadence",
    response={200: CadenceOut, 404: ErrorOut, 422: ErrorOut},
    summary="Set a contact's follow-up cadence",
)
def cadence_set(request: HttpRequest, contact_id: int, payload: CadenceIn) -> dict:
    """A follow-up task is created once the contact's last touch is older than ``every_days``."""
    workspace = request.workspace
    cadence = services.cadence_set(
        workspace=workspace, contact_id=contact_id, every_days=payload.every_days
    )
    return _cadence_out(contact_id, cadence, workspace)


@router.put(
    "/segments/{segment_id}/cadence",
    response={200: SegmentCadenceOut, 404: ErrorOut, 422: ErrorOut},
    summary="Set the follow-up cadence of a segment's members",
)
def segment_cadence_set(request: HttpRequest, segment_id: int, payload: CadenceIn) -> dict:
    """For the members as of the segment's last refresh; later members are not included."""
    count = services.cadence_set_for_segment(
        workspace=request.workspace, segment_id=segment_id, every_days=payload.every_days
    )
    return {"segment_id": segment_id, "every_days": payload.every_days, "contacts": count}
