"""Experiments over the API: create one on a segment, start it, read its results, and ask which
variant a contact is in (what a journey branches on).

Register with ``api.add_router("/v1/", router, tags=["experiments"])``."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from siyu.api.common import ErrorOut, local_time
from siyu.errors import NotFound
from siyu.experiments import queries, services
from siyu.experiments.models import Experiment, ExperimentGoal
from siyu.experiments.stats import Comparison, Interval

router = Router()


class VariantIn(Schema):
    key: str
    weight: int


class ExperimentIn(Schema):
    name: str
    segment_id: int
    variants: list[VariantIn] = Field(min_length=2, max_length=5)
    window_days: int = 14
    goal: ExperimentGoal = ExperimentGoal.ORDER


class ExperimentOut(Schema):
    id: int
    name: str
    segment_id: int | None
    variants: list[VariantIn]
    window_days: int
    goal: str
    status: str
    start_at: datetime | None
    end_at: datetime | None


class StartOut(Schema):
    experiment: ExperimentOut
    assigned: int


class IntervalOut(Schema):
    low: float
    high: float


class ComparisonOut(Schema):
    difference: float
    interval: IntervalOut
    p_value: float
    significant: bool


class VariantResultOut(Schema):
    key: str
    weight: int
    is_control: bool
    contacts: int
    converters: int
    conversion_rate: float
    conversion_interval: IntervalOut
    revenue: float
    revenue_per_contact: float
    revenue_interval: IntervalOut
    conversion_diff: ComparisonOut | None
    revenue_diff: ComparisonOut | None
    minimum_detectable_effect: float | None


class ResultsOut(Schema):
    experiment_id: int
    control: str
    contacts: int
    variants: list[VariantResultOut]
    verdicts: list[str]


class VariantOut(Schema):
    experiment_id: int
    contact_id: int
    variant: str


def _out(experiment: Experiment) -> dict:
    ws = experiment.workspace
    return {
        "id": experiment.id,
        "name": experiment.name,
        "segment_id": experiment.segment_id,
        "variants": experiment.variants,
        "window_days": experiment.window_days,
        "goal": experiment.goal,
        "status": experiment.status,
        "start_at": local_time(experiment.start_at, ws),
        "end_at": local_time(experiment.end_at, ws),
    }


def _interval(i: Interval) -> dict:
    return {"low": i.low, "high": i.high}


def _comparison(c: Comparison | None) -> dict | None:
    if c is None:
        return None
    return {
        "difference": c.difference,
        "interval": _interval(c.interval),
        "p_value": c.p_value,
        "significant": c.significant,
    }


@router.post("/experiments", response={201: ExperimentOut, 404: ErrorOut, 422: ErrorOut})
def experiment_create(request: HttpRequest, payload: ExperimentIn):
    """A draft experiment; weights are whole percents summing to 100."""
    experiment = services.experiment_create(
        workspace=request.workspace,
        name=payload.name,
        segment_id=payload.segment_id,
        variants=[v.dict() for v in payload.variants],
        window_days=payload.window_days,
        goal=payload.goal,
    )
    return Status(201, _out(experiment))


@router.post(
    "/experiments/{experiment_id}/start", response={200: StartOut, 404: ErrorOut, 409: ErrorOut}
)
def experiment_start(request: HttpRequest, experiment_id: int):
    """Assigns every current member of the segment; calling it again assigns only newcomers."""
    ws = request.workspace
    experiment = queries.experiment_get(workspace=ws, experiment_id=experiment_id)
    assigned = services.experiment_start(workspace=ws, experiment=experiment)
    experiment = queries.experiment_get(workspace=ws, experiment_id=experiment_id)
    return {"experiment": _out(experiment), "assigned": assigned}


@router.get("/experiments/{experiment_id}/results", response={200: ResultsOut, 404: ErrorOut})
def experiment_results(request: HttpRequest, experiment_id: int):
    ws = request.workspace
    experiment = queries.experiment_get(workspace=ws, experiment_id=experiment_id)
    results = queries.experiment_results(workspace=ws, experiment=experiment)
    return {
        "experiment_id": experiment.id,
        "control": results.control,
        "contacts": results.contacts,
        "variants": [
            {
                **{
                    k: getattr(v, k)
                    for k in ("key", "weight", "is_control", "contacts", "converters")
                },
                "conversion_rate": v.conversion_rate,
                "conversion_interval": _interval(v.conversion_interval),
                "revenue": v.revenue,
                "revenue_per_contact": v.revenue_per_contact,
                "revenue_interval": _interval(v.revenue_interval),
                "conversion_diff": _comparison(v.conversion_diff),
                "revenue_diff": _comparison(v.revenue_diff),
                "minimum_detectable_effect": v.minimum_detectable_effect,
            }
            for v in results.variants
        ],
        "verdicts": results.verdicts,
    }


@router.get(
    "/experiments/{experiment_id}/variant/{contact_id}",
    response={200: VariantOut, 404: ErrorOut},
)
def experiment_variant(request: HttpRequest, experiment_id: int, contact_id: int):
    """404 ``not_assigned`` when the contact is not in the experiment."""
    experiment = queries.experiment_get(workspace=request.workspace, experiment_id=experiment_id)
    variant = queries.variant_for(experiment, contact_id)
    if variant is None:
        raise NotFound(
            "not_assigned", f"Contact {contact_id} is not in experiment {experiment_id}."
        )
    return {"experiment_id": experiment.id, "contact_id": contact_id, "variant": variant}
