"""Fitting the customer-value models for a workspace and storing every contact's scores."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

from siyu import bulk
from siyu.errors import ValidationFailed
from siyu.insights import queries
from siyu.insights.clv import (
    BetaGeo,
    GammaGamma,
    ModelFitError,
    ParetoNBD,
    score_customers,
    summary_from_transactions,
)
from siyu.insights.models import ContactScore, FitStatus, ModelFit, ModelKind
from siyu.progress import NoProgress, Progress
from siyu.tenancy.models import Workspace

#: Fewest repeat buyers before siyu will fit: below this the estimates are noise, and
#: operators are better served by a clear message than by confident-looking numbers.
MIN_REPEAT_BUYERS = 30
#: Frequency buckets of the holdout check ("7+" collects the heavy buyers).
CALIBRATION_BUCKETS = 8
_HORIZONS_DAYS = (30, 90, 365)


def _model(kind: str):
    return ParetoNBD() if kind == ModelKind.PARETO_NBD else BetaGeo()


def _summary(ids, stamps, amounts, tz: ZoneInfo, end: date, calibration_end: date | None = None):
    when = pd.to_datetime(stamps, unit="s", utc=True).tz_convert(tz)
    return summary_from_transactions(
        ids,
        when,
        amounts,
        observation_end=pd.Timestamp(end, tz=tz),
        freq="W",
        calibration_end=pd.Timestamp(calibration_end, tz=tz) if calibration_end else None,
    )


def _calibration(kind: str, ids, stamps, amounts, tz, end: date, holdout_weeks: int) -> dict:
    """Fit on all but the last ``holdout_weeks`` and compare predicted with actual repeat purchases
    in the holdout, per calibration frequency — the check Fader, Hardie & Lee plot."""
    cal_end = end - timedelta(weeks=holdout_weeks)
    s = _summary(ids, stamps, amounts, tz, end, cal_end)
    if s.frequency.size == 0 or int((s.frequency > 0).sum()) < MIN_REPEAT_BUYERS:
        return {"skipped": "not enough history before the holdout period"}
    try:
        model = _model(kind).fit(s.frequency, s.recency, s.T)
    except ModelFitError as exc:
        return {"skipped": str(exc)}
    predicted = model.conditional_expected_number_of_purchases_up_to_time(
        holdout_weeks, s.frequency, s.recency, s.T
    )
    bucket = np.minimum(s.frequency, CALIBRATION_BUCKETS - 1)
    rows = []
    for b in range(CALIBRATION_BUCKETS):
        mask = bucket == b
        if mask.any():
            rows.append(
                {
                    "frequency": f"{b}+" if b == CALIBRATION_BUCKETS - 1 else str(b),
                    "customers": int(mask.sum()),
                    "predicted": round(float(predicted[mask].mean()), 4),
                    "actual": round(float(s.frequency_holdout[mask].mean()), 4),
                }
            )
    total_pred, total_act = float(predicted.sum()), float(s.frequency_holdout.sum())
    return {
        "calibration_end": cal_end.isoformat(),
        "holdout_weeks": holdout_weeks,
        "buckets": rows,
        "total_predicted": round(total_pred, 1),
        "total_actual": int(total_act),
        "error_pct": round(100 * (total_pred - total_act) / total_act, 2) if total_act else None,
    }


@transaction.atomic
def model_fit_start(
    *,
    workspace: Workspace,
    kind: str = ModelKind.BG_NBD,
    horizon_months: int = 12,
    monthly_discount_rate: float = 0.01,
) -> ModelFit:
    if kind not in ModelKind.values:
        raise ValidationFailed(
            "invalid_model", f"Model must be one of {', '.join(ModelKind.values)}."
        )
    return ModelFit.objects.create(
        workspace=workspace,
        kind=kind,
        horizon_months=horizon_months,
        monthly_discount_rate=monthly_discount_rate,
    )


def model_fit_run(
    *,
    workspace: Workspace,
    fit: ModelFit,
    today: date | None = None,
    holdout_weeks: int = 26,
    progress: Progress | None = None,
) -> ModelFit:
    """Runs a started fit to the end. Failures are stored on the fit with a readable message and
    leave the previous scores in place; success replaces every contact's scores at once."""
    progress = progress or NoProgress()
    tz = ZoneInfo(workspace.time_zone)
    end = today or timezone.now().astimezone(tz).date()
    try:
        progress.start("Reading orders", 5)
        ids, stamps, amounts = queries.purchase_log(workspace=workspace)
        _update(fit, progress=10)
        progress.advance()
        if ids.size == 0:
            raise ModelFitError("This workspace has no paid orders yet; there is nothing to fit.")
        s = _summary(ids, stamps, amounts, tz, end)
        repeat = int((s.frequency > 0).sum())
        if repeat < MIN_REPEAT_BUYERS:
            raise ModelFitError(
                f"Only {repeat} of {s.frequency.size} buyers made a repeat purchase; at least "
                f"{MIN_REPEAT_BUYERS} are needed for a meaningful fit."
            )
        progress.advance()
        calibration = _calibration(fit.kind, ids, stamps, amounts, tz, end, holdout_weeks)
        _update(fit, progress=40)
        progress.advance()
        model = _model(fit.kind).fit(s.frequency, s.recency, s.T)
        spend = GammaGamma().fit(s.frequency, s.monetary_value)
        _update(fit, progress=60)
        progress.advance()
        _write_scores(workspace, fit, model, spend, s, ids, amounts)
        progress.advance()
    except ModelFitError as exc:
        ModelFit.objects.filter(id=fit.id).update(
            status=FitStatus.FAILED, message=str(exc), finished_at=timezone.now()
        )
        fit.refresh_from_db()
        return fit
    ModelFit.objects.filter(id=fit.id).update(
        status=FitStatus.DONE,
        observation_end=end,
        progress=100,
        finished_at=timezone.now(),
        transaction_params=model.params_,
        transaction_log_likelihood=float(model.log_likelihood_),
        spend_params=spend.params_,
        customers=int(s.frequency.size),
        repeat_buyers=repeat,
        calibration=calibration,
        message="",
    )
    fit.refresh_from_db()
    return fit


def _update(fit: ModelFit, **fields) -> None:
    ModelFit.objects.filter(id=fit.id).update(**fields)


@transaction.atomic
def _write_scores(workspace, fit, model, spend, s, ids, amounts) -> None:
    horizons = [d / 7.0 for d in _HORIZONS_DAYS]
    scores = score_customers(
        model,
        spend,
        s.frequency,
        s.recency,
        s.T,
        s.monetary_value,
        horizons=horizons,
        time_months=fit.horizon_months,
        discount_rate=fit.monthly_discount_rate,
        freq_unit_days=7.0,
    )
    x, t_x, big_t, p_alive, aov, clv, bands = (
        s.frequency,
        s.recency,
        s.T,
        scores.p_alive,
        scores.expected_order_value,
        scores.clv,
        scores.churn_risk,
    )
    expected = [scores.expected_purchases[float(h)] for h in horizons]
    order = np.argsort(ids, kind="stable")
    uniq, starts = np.unique(ids[order], return_index=True)
    spent = np.add.reduceat(amounts[order], starts) if uniq.size else np.zeros(0)
    spent_by_id = dict(zip(uniq.tolist(), spent.tolist(), strict=True))
    now = timezone.now()
    ContactScore.objects.filter(workspace=workspace).delete()
    cents = Decimal("0.01")
    rows = (
        (
            workspace.id,
            int(cid),
            fit.id,
            int(x[i]),
            float(t_x[i]),
            float(big_t[i]),
            float(p_alive[i]),
            float(expected[0][i]),
            float(expected[1][i]),
            float(expected[2][i]),
            Decimal(f"{aov[i]:.2f}").quantize(cents),
            Decimal(f"{clv[i]:.2f}").quantize(cents),
            Decimal(f"{spent_by_id.get(int(cid), 0.0):.2f}"),
            str(bands[i]),
            now,
        )
        for i, cid in enumerate(s.customer_id)
    )
    bulk.insert_rows(
        ContactScore._meta.db_table,
        [
            "workspace_id",
            "contact_id",
            "fit_id",
            "frequency",
            "recency_weeks",
            "age_weeks",
            "p_alive",
            "expected_purchases_30d",
            "expected_purchases_90d",
            "expected_purchases_365d",
            "expected_order_value",
            "clv",
            "historical_value",
            "churn_band",
            "scored_at",
        ],
        rows,
    )


def fit_workspace(
    *,
    workspace: Workspace,
    kind: str | None = None,
    today: date | None = None,
    progress: Progress | None = None,
) -> ModelFit:
    """Start and run a fit in one call (the CLI and the nightly task). Without ``kind`` the
    workspace keeps the model it last chose (BG/NBD until someone picks Pareto/NBD)."""
    if kind is None:
        last = queries.latest_fit(workspace=workspace, done_only=False)
        kind = last.kind if last is not None else ModelKind.BG_NBD
    fit = model_fit_start(workspace=workspace, kind=kind)
    return model_fit_run(workspace=workspace, fit=fit, today=today, progress=progress)
