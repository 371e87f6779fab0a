"""The customer-value console page: the latest fit and its holdout check, the CLV distribution,
CLV against acquisition cost per channel, the valuable contacts at risk, and the forms that start
a fit and record channel spend. Reads go through ``queries``, writes through ``services``."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from siyu.commerce import queries as commerce_queries
from siyu.commerce import services as commerce_services
from siyu.console.access import console_view, deferred_in_browser
from siyu.contacts.models import SourceChannel
from siyu.insights import display, queries, tasks
from siyu.insights.forms import FitForm, SpendForm
from siyu.insights.models import FitStatus
from siyu.tenancy.models import Role

#: Fitting costs a few minutes of a worker on a large pool, so staff cannot start it.
FIT_ROLES = (Role.OWNER, Role.OPERATOR, Role.ANALYST)
#: Spend is money the brand paid: entered by those who run the budget.
SPEND_ROLES = (Role.OWNER, Role.OPERATOR)

#: Why a CLV:CAC cell shows a dash (the ``reason`` of ``queries.clv_by_channel``).
RATIO_REASONS = {
    "no_fit": _("还没有拟合好的模型，无法计算 CLV。"),
    "no_spend": _("没有录入该渠道的获客花费。"),
    "zero_spend": _("该渠道录入的花费为 0，CAC 无从计算。"),
    "no_new_contacts": _("有花费的月份里该渠道没有新增客户。"),
}


def _page(request: HttpRequest, *, fit_form: FitForm, spend_form: SpendForm) -> dict:
    ws, membership = request.workspace, request.membership
    fit = queries.latest_fit(workspace=ws)
    latest = queries.latest_fit(workspace=ws, done_only=False)
    labels = dict(SourceChannel.choices)
    context = {
        "fit": fit,
        # A running or failed fit newer than the shown one is announced above the results.
        "latest": latest if latest is not None and latest != fit else None,
        "fit_form": fit_form,
        "spend_form": spend_form,
        "can_fit": membership.role in FIT_ROLES,
        "can_enter_spend": membership.role in SPEND_ROLES,
        "spends": [
            (labels.get(s.channel, s.channel), s)
            for s in commerce_queries.channel_spend_list(workspace=ws)[:120]
        ],
    }
    if fit is not None:
        distribution = queries.score_distribution(workspace=ws)
        context.update(
            {
                "parameters": display.fit_parameters(fit),
                "holdout_figure": display.holdout_figure(fit.calibration)
                if fit.calibration.get("buckets")
                else None,
                "distribution": distribution,
                "clv_figure": display.clv_histogram_figure(distribution)
                if distribution["total"]
                else None,
                "channels": [
                    {
                        **row,
                        "label": labels.get(row["channel"], row["channel"]),
                        "why": RATIO_REASONS.get(row["reason"], ""),
                    }
                    for row in queries.clv_by_channel(workspace=ws)
                ],
                "at_risk": queries.at_risk_valuable(workspace=ws, membership=membership),
            }
        )
    return context


@console_view()
@deferred_in_browser("insights/home.html")
def insights_home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "insights/home.html",
        _page(request, fit_form=FitForm(), spend_form=SpendForm()),
    )


@require_POST
@console_view(roles=FIT_ROLES)
def fit_start(request: HttpRequest) -> HttpResponse:
    form = FitForm(request.POST)
    if not form.is_valid():
        page = _page(request, fit_form=form, spend_form=SpendForm())
        return render(request, "insights/home.html", page, status=400)
    tasks.model_fit_enqueue(workspace=request.workspace, kind=form.cleaned_data["kind"])
    return redirect("console:insights:home")


@console_view()
def fit_status(request: HttpRequest, fit_id: int) -> HttpResponse:
    """The progress fragment the page polls while a fit runs; once the fit has finished, an htmx
    poll reloads the page so the new results replace the old."""
    fit = queries.fit_get(workspace=request.workspace, fit_id=fit_id)
    if fit is None:
        raise Http404
    if request.htmx and fit.status != FitStatus.RUNNING:
        return HttpResponseClientRefresh()
    return render(request, "insights/_fit_status.html", {"latest": fit})


@require_POST
@console_view(roles=SPEND_ROLES)
def spend_save(request: HttpRequest) -> HttpResponse:
    form = SpendForm(request.POST)
    if not form.is_valid():
        page = _page(request, fit_form=FitForm(), spend_form=form)
        return render(request, "insights/home.html", page, status=400)
    commerce_services.channel_spend_set(workspace=request.workspace, **form.cleaned_data)
    return redirect(reverse("console:insights:home") + "#spend")
