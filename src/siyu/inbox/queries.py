"""Reads of the task inbox. Who sees what: owners, operators and analysts (and API keys) see every
task of the workspace; a store manager sees all tasks of their store (colleagues' overdue ones
and the store's unassigned queue included) plus their own; other staff see only their own. A
staff login without a Staff record sees nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet

from siyu.commerce.models import Staff
from siyu.contacts.models import Contact
from siyu.errors import NotFound, ValidationFailed
from siyu.inbox.models import ContactCadence, StaffTask, TaskKind, TaskStatus
from siyu.tenancy.models import Membership, Role, Workspace

#: The status filter's values: ``open`` is what waits for action now (open, and snoozed tasks
#: whose snooze ended); ``snoozed`` those still asleep.
STATUS_FILTERS = ("open", "snoozed", "done", "cancelled", "all")


@dataclass(frozen=True)
class Viewer:
    """Who is asking, reduced to what the inbox's rules need. ``role`` None is an API key,
    which acts for the whole workspace."""

    role: str | None
    staff_id: int | None = None
    store_id: int | None = None
    is_manager: bool = False

    @property
    def is_hq(self) -> bool:
        return self.role in (None, Role.OWNER, Role.OPERATOR)

    @property
    def sees_all(self) -> bool:
        return self.is_hq or self.role == Role.ANALYST

    @property
    def manages_store(self) -> bool:
        return self.role == Role.STAFF and self.is_manager and self.store_id is not None

    def can_act_on(self, task: StaffTask) -> bool:
        """Complete or snooze: HQ any task; staff their own; a store manager their store's."""
        if self.is_hq:
            return True
        if self.role != Role.STAFF or self.staff_id is None:
            return False
        return task.assignee_id == self.staff_id or (
            self.manages_store and task.store_id == self.store_id
        )

    def can_manage(self, task: StaffTask) -> bool:
        """Reassign or cancel: HQ, or the manager of the task's store."""
        return self.is_hq or (self.manages_store and task.store_id == self.store_id)


def viewer_for(*, workspace: Workspace, membership: Membership | None) -> Viewer:
    """The viewer behind a console membership (None: an API key). A staff member is linked to
    their login by ``Staff.user``, as in ``contacts.queries.contacts_visible``."""
    if membership is None:
        return Viewer(role=None)
    if membership.role != Role.STAFF:
        return Viewer(role=membership.role)
    staff = (
        Staff.objects.filter(workspace=workspace, user_id=membership.user_id, is_active=True)
        .values("id", "store_id", "is_manager")
        .first()
    )
    if staff is None:
        return Viewer(role=Role.STAFF)
    return Viewer(
        role=Role.STAFF,
        staff_id=staff["id"],
        store_id=staff["store_id"],
        is_manager=staff["is_manager"],
    )


def tasks_visible(*, workspace: Workspace, viewer: Viewer) -> QuerySet[StaffTask]:
    qs = StaffTask.objects.filter(workspace=workspace)
    if viewer.sees_all:
        return qs
    if viewer.staff_id is None:
        return qs.none()
    if viewer.manages_store:
        return qs.filter(Q(store_id=viewer.store_id) | Q(assignee_id=viewer.staff_id))
    return qs.filter(assignee_id=viewer.staff_id)


def _open_now(now: datetime) -> Q:
    return Q(status=TaskStatus.OPEN) | Q(status=TaskStatus.SNOOZED, snoozed_until__lte=now)


def tasks_list(
    *,
    workspace: Workspace,
    viewer: Viewer,
    now: datetime,
    status: str = "open",
    store_id: int | None = None,
    assignee_id: int | None = None,
    unassigned: bool = False,
    overdue: bool = False,
    contact_id: int | None = None,
    kind: str | None = None,
) -> QuerySet[StaffTask]:
    """Tasks the viewer may see, soonest due first; a page of rows costs one query."""
    if status not in STATUS_FILTERS:
        raise ValidationFailed(
            "bad_status",
            f"Unknown status {status!r}; use one of {', '.join(STATUS_FILTERS)}.",
            path="status",
        )
    if kind is not None and kind not in TaskKind.values:
        raise ValidationFailed(
            "bad_kind",
            f"Unknown task kind {kind!r}; use one of {', '.join(TaskKind.values)}.",
            path="kind",
        )
    qs = tasks_visible(workspace=workspace, viewer=viewer)
    if status == "open" or overdue:
        qs = qs.filter(_open_now(now))
    if status == "snoozed":
        qs = qs.filter(status=TaskStatus.SNOOZED, snoozed_until__gt=now)
    elif status in ("done", "cancelled"):
        qs = qs.filter(status=status)
    if overdue:
        qs = qs.filter(due_at__lt=now)
    if store_id is not None:
        qs = qs.filter(store_id=store_id)
    if unassigned:
        qs = qs.filter(assignee__isnull=True)
    elif assignee_id is not None:
        qs = qs.filter(assignee_id=assignee_id)
    if contact_id is not None:
        qs = qs.filter(contact_id=contact_id)
    if kind is not None:
        qs = qs.filter(kind=kind)
    order = ("-completed_at", "-id") if status == "done" else ("due_at", "id")
    return qs.select_related("contact", "assignee", "store").order_by(*order)


def task_get(*, workspace: Workspace, viewer: Viewer, task_id: int) -> StaffTask:
    task = (
        tasks_visible(workspace=workspace, viewer=viewer)
        .select_related("contact", "assignee", "store")
        .filter(id=task_id)
        .first()
    )
    if task is None:
        raise NotFound("not_found", f"Task {task_id} not found.")
    return task


def task_is_overdue(task: StaffTask, now: datetime) -> bool:
    return task_is_open(task, now) and task.due_at < now


def task_is_open(task: StaffTask, now: datetime) -> bool:
    return task.status == TaskStatus.OPEN or (
        task.status == TaskStatus.SNOOZED
        and task.snoozed_until is not None
        and task.snoozed_until <= now
    )


def workload_by_staff(*, workspace: Workspace, viewer: Viewer, now: datetime) -> list[dict]:
    """Open and overdue counts per assignee (and per store's unassigned queue), most overdue
    first: the store manager's and HQ's view of who is behind. One grouped query."""
    rows = (
        tasks_visible(workspace=workspace, viewer=viewer)
        .filter(_open_now(now))
        .values("assignee_id", "assignee__name", "store_id", "store__name")
        .annotate(open=Count("id"), overdue=Count("id", filter=Q(due_at__lt=now)))
        .order_by("-overdue", "-open", "assignee__name", "store__name")
    )
    return list(rows)


def cadence_for_contact(*, workspace: Workspace, contact: Contact) -> ContactCadence | None:
    return ContactCadence.objects.filter(workspace=workspace, contact=contact).first()


def staff_choices(*, workspace: Workspace, viewer: Viewer) -> QuerySet[Staff]:
    """Active staff the viewer may assign tasks to: all for HQ, their store's for a manager."""
    qs = Staff.objects.filter(workspace=workspace, is_active=True).select_related("store")
    if viewer.is_hq:
        return qs.order_by("store__name", "name")
    if viewer.manages_store:
        return qs.filter(store_id=viewer.store_id).order_by("name")
    return qs.none()
