"""Console pages. Each view reads through the apps' ``queries`` and writes through their
``services``; ``console_view`` has already resolved the workspace and the viewer's role."""

from __future__ import annotations

from pathlib import Path

import plotly
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from siyu.analytics import queries as analytics
from siyu.commerce import queries as commerce_queries
from siyu.console import dashboard
from siyu.console.access import SESSION_WORKSPACE, console_view
from siyu.contacts import queries as contacts_queries
from siyu.contacts.models import ConsentChannel
from siyu.events import queries as events_queries
from siyu.insights import queries as insights_queries
from siyu.tenancy import queries as tenancy_queries
from siyu.tenancy import services as tenancy_services
from siyu.tenancy.models import Role

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
CONTACTS_PER_PAGE = 25


@console_view()
def home(request: HttpRequest) -> HttpResponse:
    ws, membership = request.workspace, request.membership
    # Completed days come from the daily rollups, today and un-rolled days from the raw tables.
    board = analytics.home_dashboard(
        workspace=ws, membership=membership, today=analytics.workspace_today(ws)
    )
    return render(
        request,
        "console/home.html",
        {
            "pool_size": board.pool_size,
            "cards": dashboard.kpi_cards(board.current, board.previous),
            "purchasers": board.purchasers,
            "repeaters": board.repeaters,
            "repeat_rate": board.repeaters / board.purchasers if board.purchasers else None,
            "new_contacts_figure": dashboard.new_contacts_figure(board.series),
            "orders_figure": dashboard.orders_figure(board.series),
        },
    )


@require_POST
@console_view()
def workspace_switch(request: HttpRequest) -> HttpResponse:
    wanted = request.POST.get("workspace_id", "")
    # Only a workspace the user belongs to can become current; anything else is ignored.
    if any(str(m.workspace_id) == wanted for m in request.memberships):
        request.session[SESSION_WORKSPACE] = int(wanted)
    return redirect("console:home")


@vary_on_headers("HX-Request")
@console_view()
def contacts_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    page = contacts_queries.contacts_list_page(
        workspace=request.workspace,
        membership=request.membership,
        q=q,
        number=request.GET.get("page"),
        per_page=CONTACTS_PER_PAGE,
    )
    # Live search and paging swap only the results; a history restore needs the whole page.
    partial = request.htmx and not request.htmx.history_restore_request
    template = "console/contacts/_results.html" if partial else "console/contacts/list.html"
    return render(request, template, {"q": q, "page": page})


@console_view()
def contact_detail(request: HttpRequest, contact_id: int) -> HttpResponse:
    ws, membership = request.workspace, request.membership
    contact = contacts_queries.contact_get(
        workspace=ws, contact_id=contact_id, membership=membership
    )
    consents = {
        c.channel: c for c in contacts_queries.consents_for_contact(workspace=ws, contact=contact)
    }
    return render(
        request,
        "console/contacts/detail.html",
        {
            "contact": contact,
            "phone": contacts_queries.phone_reveal(contact=contact, membership=membership),
            "identities": contacts_queries.identities_for_contact(workspace=ws, contact=contact),
            "consents": [
                (label, consents.get(channel)) for channel, label in ConsentChannel.choices
            ],
            "orders": commerce_queries.orders_for_contact(workspace=ws, contact_id=contact.id),
            "events": events_queries.events_for_contact(workspace=ws, contact_id=contact.id),
            "merges": contacts_queries.merges_for_contact(workspace=ws, contact=contact),
            "score": insights_queries.contact_score(
                workspace=ws, contact_id=contact.id, membership=membership
            ),
        },
    )


@console_view(roles=[Role.OWNER])
def api_keys(request: HttpRequest) -> HttpResponse:
    new_key = None
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:100] or _("未命名密钥")
        _key, new_key = tenancy_services.api_key_create(
            workspace=request.workspace, name=name, created_by=request.user
        )
    # The raw key is rendered into this one response and kept nowhere else, so it shows once.
    return render(
        request,
        "console/api_keys.html",
        {"keys": tenancy_queries.api_keys_list(workspace=request.workspace), "new_key": new_key},
    )


@require_POST
@console_view(roles=[Role.OWNER])
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    tenancy_services.api_key_revoke(workspace=request.workspace, key_id=key_id, actor=request.user)
    return redirect("console:api_keys")


@require_GET
@cache_control(public=True, max_age=86400)
def plotly_js(request: HttpRequest) -> FileResponse:
    """Plotly comes from the installed wheel, so the console never loads anything from the
    internet and the file always matches the Python package version."""
    return FileResponse(PLOTLY_JS.open("rb"), content_type="text/javascript")
