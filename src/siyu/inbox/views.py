"""The task inbox console: my tasks (a store manager's: their store's; HQ's: everyone's, with
filters), completing and snoozing inline with htmx, reassigning and cancelling for managers and
HQ, the team page with open and overdue counts per staff member, and the contact page's panel
with the contact's tasks and follow-up cadence. Reads go through ``queries``, writes through
``services``; a refusal shows in place, never as a reload."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from siyu import errors
from siyu.audiences import queries as audiences_queries
from siyu.commerce import queries as commerce_queries
from siyu.console.access import console_view
from siyu.contacts import queries as contacts_queries
from siyu.inbox import queries, services
from siyu.inbox.models import StaffTask, TaskKind, TaskStatus
from siyu.inbox.queries import Viewer

TASKS_PER_PAGE = 50
CONTACT_TASKS = 20
#: Snooze choices offered inline: key -> (label, how to compute the moment from local now).
SNOOZE_CHOICES: dict[str, Any] = {
    "1h": gettext_lazy("1 小时后"),
    "tomorrow": gettext_lazy("明天 9:00"),
    "3d": gettext_lazy("3 天后 9:00"),
    "week": gettext_lazy("下周 9:00"),
}


def _snooze_until(choice: str, now: datetime) -> datetime:
    local = timezone.localtime(now)
    if choice == "1h":
        return now + timedelta(hours=1)
    days = {"tomorrow": 1, "3d": 3, "week": 7}.get(choice)
    if days is None:
        raise errors.ValidationFailed("bad_snooze", _("请选择延后到什么时候。"), path="until")
    return datetime.combine(local.date() + timedelta(days=days), time(9, 0), tzinfo=local.tzinfo)


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _viewer(request: HttpRequest) -> Viewer:
    return queries.viewer_for(workspace=request.workspace, membership=request.membership)


def _decorate(tasks: list[StaffTask], viewer: Viewer, now: datetime) -> list[StaffTask]:
    """What each row may offer: set on the instances so the row template needs no lookups."""
    for task in tasks:
        task.is_open = queries.task_is_open(task, now)
        task.is_overdue = queries.task_is_overdue(task, now)
        task.is_pending = task.status in (TaskStatus.OPEN, TaskStatus.SNOOZED)
        task.can_act = task.is_pending and viewer.can_act_on(task)
        task.can_manage = task.is_pending and viewer.can_manage(task)
    return tasks


def _assignable(
    request: HttpRequest, viewer: Viewer, tasks: list[StaffTask]
) -> dict[int | None, list]:
    """Staff a manager or HQ may pick per store, for the stores on the page only (one query)."""
    if not (viewer.is_hq or viewer.manages_store):
        return {}
    store_ids = {t.store_id for t in tasks if t.can_manage}
    staff = queries.staff_choices(workspace=request.workspace, viewer=viewer)
    if viewer.is_hq:
        staff = staff.filter(store_id__in=[s for s in store_ids if s is not None])
    by_store: dict[int | None, list] = {}
    for member in staff:
        by_store.setdefault(member.store_id, []).append(member)
    return by_store


def _attach_choices(tasks: list[StaffTask], choices: dict[int | None, list]) -> None:
    for task in tasks:
        task.assignable = choices.get(task.store_id, []) if task.can_manage else []


def _row(request: HttpRequest, task: StaffTask, error: str = "") -> HttpResponse:
    viewer, now = _viewer(request), timezone.now()
    _decorate([task], viewer, now)
    _attach_choices([task], _assignable(request, viewer, [task]))
    return render(
        request,
        "inbox/_task_row.html",
        {
            "task": task,
            "error": error,
            "show_contact": request.POST.get("ctx") != "contact",
            "snooze_choices": SNOOZE_CHOICES,
        },
    )


def _filters(request: HttpRequest) -> dict[str, Any]:
    status = request.GET.get("status") or "open"
    return {
        "status": status if status in queries.STATUS_FILTERS else "open",
        "store_id": _int(request.GET.get("store")),
        "assignee_id": _int(request.GET.get("assignee")),
        "unassigned": request.GET.get("assignee") == "none",
        "overdue": request.GET.get("overdue") == "1",
    }


def _staff_filter(ws: Any, viewer: Viewer, store_id: int | None) -> Any:
    """The assignee filter's choices: a manager's store staff; for HQ the chosen store's staff
    only, so a chain with thousands of staff never renders them all in one select."""
    if viewer.manages_store:
        return queries.staff_choices(workspace=ws, viewer=viewer)
    if viewer.is_hq and store_id is not None:
        return queries.staff_choices(workspace=ws, viewer=viewer).filter(store_id=store_id)
    return []


@console_view()
def tasks_list(request: HttpRequest) -> HttpResponse:
    ws, viewer, now = request.workspace, _viewer(request), timezone.now()
    filters = _filters(request)
    rows = queries.tasks_list(workspace=ws, viewer=viewer, now=now, **filters)
    page = Paginator(rows, TASKS_PER_PAGE).get_page(request.GET.get("page"))
    tasks = _decorate(list(page.object_list), viewer, now)
    _attach_choices(tasks, _assignable(request, viewer, tasks))
    sees_others = viewer.sees_all or viewer.manages_store
    query = {k: v for k, v in request.GET.items() if k != "page"}
    return render(
        request,
        "inbox/list.html",
        {
            "page": page,
            "tasks": tasks,
            "filters": filters,
            "query": urlencode(query),
            "viewer": viewer,
            "sees_others": sees_others,
            "stores": commerce_queries.stores_list(workspace=ws) if viewer.sees_all else [],
            "staff": _staff_filter(ws, viewer, filters["store_id"]),
            "snooze_choices": SNOOZE_CHOICES,
            "show_contact": True,
            "no_staff_record": viewer.role == "staff" and viewer.staff_id is None,
        },
    )


@console_view()
def team(request: HttpRequest) -> HttpResponse:
    """Who is behind: open and overdue tasks per staff member and per store queue."""
    ws, viewer = request.workspace, _viewer(request)
    if not (viewer.sees_all or viewer.manages_store):
        raise PermissionDenied
    rows = queries.workload_by_staff(workspace=ws, viewer=viewer, now=timezone.now())
    return render(
        request,
        "inbox/team.html",
        {
            "rows": rows,
            "total_open": sum(r["open"] for r in rows),
            "total_overdue": sum(r["overdue"] for r in rows),
            "viewer": viewer,
            "segments": audiences_queries.segments_list(workspace=ws) if viewer.is_hq else [],
            "notice": request.GET.get("cadence_set"),
        },
    )


def _act(request: HttpRequest, task_id: int, action) -> HttpResponse:
    """Runs ``action`` and answers the row: refreshed, or unchanged with the refusal in it."""
    ws = request.workspace
    try:
        task = action()
    except errors.ValidationFailed as exc:
        viewer = _viewer(request)
        return _row(
            request, queries.task_get(workspace=ws, viewer=viewer, task_id=task_id), exc.message
        )
    except errors.PermissionDenied as exc:
        raise PermissionDenied(exc.message) from exc
    return _row(request, queries.task_get(workspace=ws, viewer=_viewer(request), task_id=task.id))


@require_POST
@console_view()
def task_complete(request: HttpRequest, task_id: int) -> HttpResponse:
    return _act(
        request,
        task_id,
        lambda: services.task_complete(
            workspace=request.workspace,
            task_id=task_id,
            membership=request.membership,
            outcome=request.POST.get("outcome", ""),
        ),
    )


@require_POST
@console_view()
def task_snooze(request: HttpRequest, task_id: int) -> HttpResponse:
    def snooze() -> StaffTask:
        until = _snooze_until(request.POST.get("until", ""), timezone.now())
        return services.task_snooze(
            workspace=request.workspace, task_id=task_id, until=until, membership=request.membership
        )

    return _act(request, task_id, snooze)


@require_POST
@console_view()
def task_reassign(request: HttpRequest, task_id: int) -> HttpResponse:
    value = request.POST.get("assignee", "")
    return _act(
        request,
        task_id,
        lambda: services.task_reassign(
            workspace=request.workspace,
            task_id=task_id,
            assignee_id=None if value in ("", "none") else (_int(value) or 0),
            membership=request.membership,
        ),
    )


@require_POST
@console_view()
def task_cancel(request: HttpRequest, task_id: int) -> HttpResponse:
    return _act(
        request,
        task_id,
        lambda: services.task_cancel(
            workspace=request.workspace,
            task_id=task_id,
            membership=request.membership,
            reason=request.POST.get("reason", ""),
        ),
    )


# --- the contact page's panel -----------------------------------------------------------------


def _panel(
    request: HttpRequest, contact_id: int, *, error: str = "", status: int = 200
) -> HttpResponse:
    ws, membership, viewer, now = (
        request.workspace,
        request.membership,
        _viewer(request),
        timezone.now(),
    )
    contact = contacts_queries.contact_get(
        workspace=ws, contact_id=contact_id, membership=membership
    )
    rows = queries.tasks_list(
        workspace=ws, viewer=viewer, now=now, status="all", contact_id=contact.id
    )
    tasks = _decorate(list(rows.order_by("-due_at", "-id")[:CONTACT_TASKS]), viewer, now)
    _attach_choices(tasks, _assignable(request, viewer, tasks))
    return render(
        request,
        "inbox/_contact_tasks.html",
        {
            "contact": contact,
            "tasks": tasks,
            "cadence": queries.cadence_for_contact(workspace=ws, contact=contact),
            "can_write": viewer.is_hq or viewer.staff_id is not None,
            "kinds": TaskKind.choices,
            "default_due": timezone.localtime(now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
            "snooze_choices": SNOOZE_CHOICES,
            "show_contact": False,
            "error": error,
        },
        status=status,
    )


@console_view()
def contact_panel(request: HttpRequest, contact_id: int) -> HttpResponse:
    return _panel(request, contact_id)


def _panel_write(request: HttpRequest, contact_id: int, action) -> HttpResponse:
    try:
        action()
    except errors.ValidationFailed as exc:
        return _panel(request, contact_id, error=exc.message)
    except errors.PermissionDenied as exc:
        raise PermissionDenied(exc.message) from exc
    return _panel(request, contact_id)


@require_POST
@console_view()
def contact_cadence(request: HttpRequest, contact_id: int) -> HttpResponse:
    raw = request.POST.get("every_days", "").strip()

    def save() -> None:
        if request.POST.get("clear") or raw == "":
            every: int | None = None
        elif raw.lstrip("-").isdigit():
            every = int(raw)
        else:
            raise errors.ValidationFailed(
                "bad_cadence", _("跟进周期请填写 1–365 之间的天数。"), path="every_days"
            )
        services.cadence_set(
            workspace=request.workspace,
            contact_id=contact_id,
            every_days=every,
            membership=request.membership,
        )

    return _panel_write(request, contact_id, save)


@require_POST
@console_view()
def contact_task_new(request: HttpRequest, contact_id: int) -> HttpResponse:
    def create() -> None:
        raw = request.POST.get("due_at", "")
        try:
            due = timezone.make_aware(datetime.fromisoformat(raw))
        except ValueError as exc:
            raise errors.ValidationFailed("bad_time", _("请填写截止时间。"), path="due_at") from exc
        services.task_create(
            workspace=request.workspace,
            contact_id=contact_id,
            kind=request.POST.get("kind", ""),
            title=request.POST.get("title", ""),
            note=request.POST.get("note", ""),
            due_at=due,
            membership=request.membership,
        )

    return _panel_write(request, contact_id, create)


@require_POST
@console_view()
def segment_cadence(request: HttpRequest) -> HttpResponse:
    """HQ sets one cadence for a segment's members (e.g. 高价值: every 14 days)."""
    viewer = _viewer(request)
    if not viewer.is_hq:
        raise PermissionDenied
    raw = request.POST.get("every_days", "").strip()
    try:
        count = services.cadence_set_for_segment(
            workspace=request.workspace,
            segment_id=_int(request.POST.get("segment")) or 0,
            every_days=int(raw) if raw.isdigit() else -1,
            membership=request.membership,
        )
    except errors.ValidationFailed as exc:
        rows = queries.workload_by_staff(
            workspace=request.workspace, viewer=viewer, now=timezone.now()
        )
        return render(
            request,
            "inbox/team.html",
            {
                "rows": rows,
                "total_open": sum(r["open"] for r in rows),
                "total_overdue": sum(r["overdue"] for r in rows),
                "viewer": viewer,
                "segments": audiences_queries.segments_list(workspace=request.workspace),
                "cadence_error": exc.message,
            },
            status=400,
        )
    return redirect(f"{reverse('console:inbox:team')}?cadence_set={count}")
