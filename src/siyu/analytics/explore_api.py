"""REST endpoints of the explore analyses: the same questions as the console pages, answered as
JSON. An API key sees its whole workspace; bad input is a 422 naming the field."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Router, Schema

from siyu.analytics import attribution, distribution, funnels, retention
from siyu.analytics.explore import Scope, period, top_n

router = Router()


class FunnelIn(Schema):
    steps: list[Any] = Field(
        description='2–8 steps, each {"event": type, "properties"?: {...}} or {"order": {"channel"?: ...}}'
    )
    window_days: int = Field(7, description="each step counts within this many days of step 1")
    start: date
    end: date = Field(description="last local day of the period, included")
    breakdown: str | None = Field(None, description=", ".join(funnels.BREAKDOWNS))
    top: int = 10


@router.post("/analytics/funnel")
def funnel(request: HttpRequest, payload: FunnelIn) -> dict:
    spec = funnels.funnel_spec(scope=Scope(request.workspace), **payload.dict())
    return asdict(funnels.funnel(spec))


@router.get("/analytics/retention")
def retention_matrix(
    request: HttpRequest,
    start: date,
    end: date,
    cohort: str = "first_order",
    unit: str = "week",
    metric: str = "repurchase",
    channel: str | None = None,
) -> dict:
    spec = retention.retention_spec(
        scope=Scope(request.workspace),
        start=start,
        end=end,
        cohort=cohort,
        unit=unit,
        metric=metric,
        channel=channel,
        now=timezone.now(),
    )
    return asdict(retention.retention(spec))


@router.get("/analytics/attribution")
def attribution_table(
    request: HttpRequest, start: date, end: date, dimension: str = "channel", top: int = 10
) -> dict:
    scope, window = Scope(request.workspace), period(request.workspace, start, end)
    result = attribution.attribution(scope, window, dimension, top_n(top))
    paths = attribution.first_order_paths(scope, window, top_n(top))
    return {**asdict(result), "paths": asdict(paths)}


@router.get("/analytics/distribution")
def distribution_histograms(request: HttpRequest, start: date, end: date) -> dict:
    window = period(request.workspace, start, end)
    return asdict(distribution.distribution(Scope(request.workspace), window))
