"""Customer-value models and acquisition spend over the API: start a fit and follow it, read the
latest fit and one contact's scores, and record spend per channel and month (the CAC input).

Register with ``api.add_router("/v1/", router, tags=["insights"])``."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.http import HttpRequest
from ninja import Body, Query, Router, Schema, Status

from siyu.api.common import BatchOut, ErrorOut, batch_of, local_time
from siyu.commerce import queries as commerce_queries
from siyu.commerce import services as commerce_services
from siyu.errors import NotFound
from siyu.insights import queries, tasks
from siyu.insights.models import ContactScore, ModelFit, ModelKind
from siyu.tenancy.models import Workspace

router = Router()


class SpendIn(Schema):
    channel: str
    month: date
    amount: Decimal
    campaign: str = ""
    note: str = ""


SpendBatch = batch_of(SpendIn)


class SpendOut(Schema):
    channel: str
    campaign: str
    month: date
    amount: Decimal
    note: str


class SpendFilter(Schema):
    channel: str | None = None
    month_from: date | None = None
    month_to: date | None = None


class FitIn(Schema):
    kind: ModelKind = ModelKind.BG_NBD


class FitOut(Schema):
    id: int
    kind: str
    status: str
    message: str
    progress: int
    started_at: datetime
    finished_at: datetime | None
    observation_end: date | None
    customers: int
    repeat_buyers: int
    transaction_params: dict[str, float]
    transaction_log_likelihood: float | None
    spend_params: dict[str, float]
    calibration: dict
    horizon_months: int
    monthly_discount_rate: float


class ScoreOut(Schema):
    contact_id: int
    fit_id: int
    frequency: int
    recency_weeks: float
    age_weeks: float
    p_alive: float
    expected_purchases_30d: float
    expected_purchases_90d: float
    expected_purchases_365d: float
    expected_order_value: Decimal
    clv: Decimal
    historical_value: Decimal
    churn_band: str
    scored_at: datetime


def _fit_out(fit: ModelFit, workspace: Workspace) -> dict:
    return {
        **{name: getattr(fit, name) for name in FitOut.model_fields},
        "started_at": local_time(fit.started_at, workspace),
        "finished_at": local_time(fit.finished_at, workspace),
    }


def _score_out(score: ContactScore, workspace: Workspace) -> dict:
    return {
        **{name: getattr(score, name) for name in ScoreOut.model_fields},
        "scored_at": local_time(score.scored_at, workspace),
    }


@router.get(
    "/spend",
    response=list[SpendOut],
    summary="List acquisition spend",
    description="Newest month first; narrow with channel, month_from and month_to (any day of a month "
    "stands for that month).",
)
def spend_list(request: HttpRequest, filters: Query[SpendFilter]) -> list:
    return list(
        commerce_queries.channel_spend_list(
            workspace=request.workspace,
            channel=filters.channel,
            month_from=filters.month_from,
            month_to=filters.month_to,
        )
    )


@router.put(
    "/spend",
    response={200: BatchOut, 422: ErrorOut},
    summary="Record acquisition spend per channel and month",
    description="channel is a contact source channel; month may be any day of the month; amount is "
    "exact to the fen and not negative. Sending the same channel, campaign and month again replaces "
    "the amount. At most 1000 items; a batch with any bad item is refused whole.",
)
def spend_put(request: HttpRequest, payload: Body[SpendBatch]) -> dict:
    result = commerce_services.channel_spends_set(
        workspace=request.workspace, entries=[item.model_dump() for item in payload]
    )
    return BatchOut.of(result)


@router.get(
    "/insights/fit",
    response={200: FitOut, 404: ErrorOut},
    summary="The latest completed fit",
    description="Its parameters, holdout check and how many buyers it scored; the scores in use "
    "come from this fit.",
)
def fit_latest(request: HttpRequest) -> dict:
    fit = queries.latest_fit(workspace=request.workspace)
    if fit is None:
        raise NotFound("not_found", "No model has been fitted in this workspace yet.")
    return _fit_out(fit, request.workspace)


@router.post(
    "/insights/fit",
    response={202: FitOut, 422: ErrorOut},
    summary="Start a fit",
    description='Send `{}` for BG/NBD or `{"kind": "pareto_nbd"}`. The fit runs in the background '
    "(`siyu worker`); follow it at GET /v1/insights/fit/{id} until status is done or failed.",
)
def fit_start(request: HttpRequest, payload: Body[FitIn]) -> Status:
    fit = tasks.model_fit_enqueue(workspace=request.workspace, kind=payload.kind)
    return Status(202, _fit_out(fit, request.workspace))


@router.get(
    "/insights/fit/{fit_id}",
    response={200: FitOut, 404: ErrorOut},
    summary="One fit, running or finished",
)
def fit_get(request: HttpRequest, fit_id: int) -> dict:
    fit = queries.fit_get(workspace=request.workspace, fit_id=fit_id)
    if fit is None:
        raise NotFound("not_found", f"Fit {fit_id} not found.")
    return _fit_out(fit, request.workspace)


@router.get(
    "/contacts/{contact_id}/score",
    response={200: ScoreOut, 404: ErrorOut},
    summary="A contact's CLV and churn scores",
    description="404 when the contact is unknown or has no score (never bought, or no fit yet).",
)
def contact_score(request: HttpRequest, contact_id: int) -> dict:
    score = queries.contact_score(workspace=request.workspace, contact_id=contact_id)
    if score is None:
        raise NotFound("not_found", f"Contact {contact_id} has no score.")
    return _score_out(score, request.workspace)
