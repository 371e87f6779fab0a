"""Who is looking, and at which workspace.

Every console view is wrapped by ``console_view``: it requires a login, picks the current
workspace from the session among the user's memberships (the first one otherwise), and sets
``request.workspace`` and ``request.membership``. Objects are then always looked up through the
workspace, so an id from another workspace is simply not found (404), never forbidden — a 403
would confirm that the id exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from zoneinfo import ZoneInfo

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from siyu.errors import DomainError
from siyu.tenancy import queries as tenancy_queries
from siyu.tenancy.models import Membership

SESSION_WORKSPACE = "console_workspace_id"

View = Callable[..., HttpResponse]


def current_membership(request: HttpRequest) -> tuple[Membership | None, list[Membership]]:
    """The membership for the workspace kept in the session, and all of the user's memberships."""
    memberships = list(tenancy_queries.memberships_for_user(request.user))
    wanted = request.session.get(SESSION_WORKSPACE)
    chosen = next((m for m in memberships if m.workspace_id == wanted), None)
    return chosen or (memberships[0] if memberships else None), memberships


def console_view(*, roles: Iterable[str] | None = None) -> Callable[[View], View]:
    allowed = frozenset(roles) if roles is not None else None

    def decorator(view: View) -> View:
        @wraps(view)
        @login_required
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            membership, memberships = current_membership(request)
            if membership is None:
                return render(request, "console/no_workspace.html", status=403)
            if allowed is not None and membership.role not in allowed:
                raise PermissionDenied
            membership.user = (
                request.user
            )  # already loaded; spares a query wherever the role is checked
            request.workspace = membership.workspace
            request.membership = membership
            request.memberships = memberships
            # Times on every page read in the brand's own time zone.
            with timezone.override(ZoneInfo(membership.workspace.time_zone)):
                try:
                    return view(request, *args, **kwargs)
                except DomainError as exc:
                    if exc.http_status == 404:
                        raise Http404(exc.message) from exc
                    raise

        return wrapped

    return decorator


def deferred_in_browser(template: str) -> Callable[[View], View]:
    """For a page whose figures take seconds over a large pool: a browser that opens it gets
    the page's frame at once (its title, menu and scripts, from ``template`` rendered with
    ``deferred_url`` and nothing else) with a "computing" line, which loads the page itself
    with htmx and puts its content in place. A browser's navigation asks for HTML and is no
    htmx request; htmx's own request, a CSV export, the API and scripts get the page as
    always. Goes under ``console_view``, so the frame is shown only to whom may see the page."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            navigation = (
                request.method == "GET"
                and "text/html" in request.headers.get("Accept", "")
                and not request.headers.get("HX-Request")
                and "format" not in request.GET
            )
            if navigation:
                return render(request, template, {"deferred_url": request.get_full_path()})
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
