"""The experiments console: the list, the create form, and one experiment's results with its
conversion chart, verdicts and CSV export. Reads go through ``queries``, writes through
``services``."""

from __future__ import annotations

import csv

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from siyu.audiences import queries as audiences_queries
from siyu.console.access import console_view
from siyu.console.charts import chart_layout
from siyu.errors import ValidationFailed
from siyu.experiments import queries, services
from siyu.experiments.queries import ExperimentResults
from siyu.tenancy.models import Role

#: Starting an experiment decides who gets which treatment: those who run campaigns.
WRITE_ROLES = (Role.OWNER, Role.OPERATOR)
VARIANT_ROWS = 5
CONTROL_COLOUR = "#9ca3af"
VARIANT_COLOUR = "#2f6fed"


class ExperimentForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("名称"), max_length=100)
    segment = forms.TypedChoiceField(label=gettext_lazy("人群"), coerce=int)
    window_days = forms.IntegerField(
        label=gettext_lazy("转化窗口 (天)"), min_value=1, max_value=365, initial=14
    )

    def __init__(self, *args: object, workspace: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["segment"].choices = [
            (s.id, s.name) for s in audiences_queries.segments_list(workspace=workspace)
        ]
        defaults = [("A", 50), ("B", 50)]
        for i in range(VARIANT_ROWS):
            key, weight = defaults[i] if i < len(defaults) else ("", None)
            self.fields[f"key_{i}"] = forms.CharField(required=False, max_length=32, initial=key)
            self.fields[f"weight_{i}"] = forms.IntegerField(required=False, initial=weight)

    def variant_rows(self) -> list[tuple[forms.BoundField, forms.BoundField]]:
        return [(self[f"key_{i}"], self[f"weight_{i}"]) for i in range(VARIANT_ROWS)]

    def variants(self) -> list[dict]:
        """The filled rows; the service judges them (count, keys, sum of weights)."""
        data = self.cleaned_data
        return [
            {"key": data[f"key_{i}"].strip(), "weight": data[f"weight_{i}"]}
            for i in range(VARIANT_ROWS)
            if data.get(f"key_{i}", "").strip() or data.get(f"weight_{i}") is not None
        ]


@console_view()
def experiments_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "experiments/list.html",
        {
            "experiments": queries.experiments_list(workspace=request.workspace),
            "can_write": request.membership.role in WRITE_ROLES,
        },
    )


@console_view(roles=WRITE_ROLES)
def experiment_new(request: HttpRequest) -> HttpResponse:
    ws = request.workspace
    form = ExperimentForm(request.POST or None, workspace=ws)
    if request.method == "POST" and form.is_valid():
        try:
            experiment = services.experiment_create(
                workspace=ws,
                name=form.cleaned_data["name"],
                segment_id=form.cleaned_data["segment"],
                variants=form.variants(),
                window_days=form.cleaned_data["window_days"],
            )
        except ValidationFailed as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("console:experiments:detail", experiment_id=experiment.id)
    status = 400 if request.method == "POST" else 200
    return render(request, "experiments/new.html", {"form": form}, status=status)


def conversion_figure(results: ExperimentResults) -> dict:
    """Bars of conversion per variant (in %) with their Wilson intervals as error bars."""
    rows = results.variants
    return {
        "data": [
            {
                "type": "bar",
                "x": [r.key for r in rows],
                "y": [round(r.conversion_rate * 100, 2) for r in rows],
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        round((r.conversion_interval.high - r.conversion_rate) * 100, 2)
                        for r in rows
                    ],
                    "arrayminus": [
                        round((r.conversion_rate - r.conversion_interval.low) * 100, 2)
                        for r in rows
                    ],
                },
                "marker": {
                    "color": [CONTROL_COLOUR if r.is_control else VARIANT_COLOUR for r in rows]
                },
                "hovertemplate": "%{x}: %{y:.2f}%<extra></extra>",
            }
        ],
        "layout": chart_layout(
            margin={"l": 56, "r": 24, "t": 8, "b": 40},
            height=300,
            yaxis={"title": {"text": _("转化率 (%)")}, "rangemode": "tozero"},
            showlegend=False,
        ),
    }


@console_view()
def experiment_detail(request: HttpRequest, experiment_id: int) -> HttpResponse:
    ws = request.workspace
    experiment = queries.experiment_get(workspace=ws, experiment_id=experiment_id)
    results = queries.experiment_results(workspace=ws, experiment=experiment)
    return render(
        request,
        "experiments/detail.html",
        {
            "experiment": experiment,
            "results": results,
            "figure": conversion_figure(results) if results.contacts else None,
            "rows": [
                {
                    "result": r,
                    "rate": r.conversion_rate * 100,
                    "low": r.conversion_interval.low * 100,
                    "high": r.conversion_interval.high * 100,
                    "diff": r.conversion_diff.difference * 100 if r.conversion_diff else None,
                }
                for r in results.variants
            ],
            "can_write": request.membership.role in WRITE_ROLES,
        },
    )


@require_POST
@console_view(roles=WRITE_ROLES)
def experiment_start(request: HttpRequest, experiment_id: int) -> HttpResponse:
    ws = request.workspace
    experiment = queries.experiment_get(workspace=ws, experiment_id=experiment_id)
    services.experiment_start(workspace=ws, experiment=experiment)
    return redirect("console:experiments:detail", experiment_id=experiment.id)


@console_view()
def experiment_csv(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """The results table, one row per variant, differences against the control."""
    ws = request.workspace
    experiment = queries.experiment_get(workspace=ws, experiment_id=experiment_id)
    results = queries.experiment_results(workspace=ws, experiment=experiment)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="experiment-{experiment.id}.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "variant", "control", "contacts", "converters", "conversion_rate",
            "conversion_ci_low", "conversion_ci_high", "revenue", "revenue_per_contact",
            "revenue_ci_low", "revenue_ci_high", "conversion_diff", "conversion_diff_ci_low",
            "conversion_diff_ci_high", "conversion_p_value", "revenue_diff", "revenue_diff_ci_low",
            "revenue_diff_ci_high", "revenue_p_value",
        ]
    )  # fmt: skip
    for r in results.variants:
        diffs = []
        for c in (r.conversion_diff, r.revenue_diff):
            diffs += (
                ["", "", "", ""]
                if c is None
                else [
                    f"{c.difference:.6f}",
                    f"{c.interval.low:.6f}",
                    f"{c.interval.high:.6f}",
                    f"{c.p_value:.6g}",
                ]
            )
        writer.writerow(
            [
                r.key, "yes" if r.is_control else "", r.contacts, r.converters,
                f"{r.conversion_rate:.6f}", f"{r.conversion_interval.low:.6f}",
                f"{r.conversion_interval.high:.6f}", f"{r.revenue:.2f}",
                f"{r.revenue_per_contact:.4f}", f"{r.revenue_interval.low:.4f}",
                f"{r.revenue_interval.high:.4f}", *diffs,
            ]
        )  # fmt: skip
    return response
