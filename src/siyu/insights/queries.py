"""Reads for the customer-value models: the purchase log they are fitted on and their results."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from django.db import connection
from django.db.models import Avg, Count, QuerySet, Sum

from siyu.commerce.models import ChannelSpend, Order
from siyu.contacts.models import Contact
from siyu.insights.models import ContactScore, FitStatus, ModelFit
from siyu.tenancy.models import Workspace


def purchase_log(*, workspace: Workspace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(contact id, paid-at as Unix seconds, net amount) of every order not fully refunded,
    fetched as columns so a 10M-order workspace never becomes 10M Python objects."""
    epoch = (
        "EXTRACT(EPOCH FROM paid_at)::float8"
        if connection.vendor == "postgresql"
        else "CAST(strftime('%%s', paid_at) AS REAL)"
    )
    sql = (
        f"SELECT contact_id, {epoch}, CAST(amount - refunded_amount AS REAL) FROM {Order._meta.db_table} "  # noqa: S608
        "WHERE workspace_id = %s AND amount > refunded_amount"
    )
    if connection.vendor == "postgresql":
        sql = sql.replace("AS REAL", "AS float8")
    ids, stamps, amounts = [], [], []
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace.id])
        while chunk := cursor.fetchmany(200_000):
            arr = np.array(chunk, dtype=float)
            ids.append(arr[:, 0].astype(np.int64))
            stamps.append(arr[:, 1])
            amounts.append(arr[:, 2])
    if not ids:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    return np.concatenate(ids), np.concatenate(stamps), np.concatenate(amounts)


def latest_fit(*, workspace: Workspace, done_only: bool = True) -> ModelFit | None:
    qs = ModelFit.objects.filter(workspace=workspace)
    if done_only:
        qs = qs.filter(status=FitStatus.DONE)
    return qs.order_by("-started_at", "-id").first()


def fit_get(*, workspace: Workspace, fit_id: int) -> ModelFit | None:
    return ModelFit.objects.filter(workspace=workspace, id=fit_id).first()


def score_distribution(*, workspace: Workspace, bins: int = 20) -> dict:
    """CLV histogram on a log-ish scale plus the churn-band counts, computed in numpy over one column."""
    clv = np.array(
        ContactScore.objects.filter(workspace=workspace).values_list("clv", flat=True), dtype=float
    )
    bands = dict(
        ContactScore.objects.filter(workspace=workspace)
        .values("churn_band")
        .annotate(n=Count("id"))
        .values_list("churn_band", "n")
    )
    if clv.size == 0:
        return {"edges": [], "counts": [], "bands": bands, "total": 0, "mean": None}
    top = float(np.quantile(clv, 0.99)) or 1.0
    counts, edges = np.histogram(np.clip(clv, 0, top), bins=bins, range=(0, top))
    return {
        "edges": edges.round(2).tolist(),
        "counts": counts.tolist(),
        "bands": bands,
        "total": int(clv.size),
        "mean": round(float(clv.mean()), 2),
    }


def clv_by_channel(*, workspace: Workspace) -> list[dict]:
    """Per acquisition channel: contacts, average predicted CLV, acquisition spend, new contacts
    in the months with spend, CAC and the CLV:CAC ratio the seeds argue from."""
    clv = {
        row["contact__source_channel"]: row
        for row in ContactScore.objects.filter(workspace=workspace)
        .values("contact__source_channel")
        .annotate(buyers=Count("id"), avg_clv=Avg("clv"), total_clv=Sum("clv"))
    }
    contacts = dict(
        Contact.objects.filter(workspace=workspace)
        .values("source_channel")
        .annotate(n=Count("id"))
        .values_list("source_channel", "n")
    )
    spend = dict(
        ChannelSpend.objects.filter(workspace=workspace)
        .values("channel")
        .annotate(t=Sum("amount"))
        .values_list("channel", "t")
    )
    rows = []
    for channel in sorted(set(contacts) | set(spend)):
        n = contacts.get(channel, 0)
        total_spend = spend.get(channel)
        per_contact_clv = (clv[channel]["total_clv"] / n) if channel in clv and n else None
        cac = (total_spend / n) if total_spend is not None and n else None
        ratio = (per_contact_clv / cac) if per_contact_clv is not None and cac else None
        rows.append(
            {
                "channel": channel,
                "contacts": n,
                "buyers": clv.get(channel, {}).get("buyers", 0),
                "clv_per_contact": _money(per_contact_clv),
                "avg_clv_per_buyer": _money(clv.get(channel, {}).get("avg_clv")),
                "spend": _money(total_spend),
                "cac": _money(cac),
                "clv_cac_ratio": round(float(ratio), 2) if ratio is not None else None,
            }
        )
    return rows


def _money(value) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(Decimal("0.01"))


def at_risk_valuable(*, workspace: Workspace, limit: int = 50) -> QuerySet[ContactScore]:
    """The valuable contacts most likely slipping away: medium or high churn risk, those who
    have spent the most so far first (their future value is what P(alive) is discounting)."""
    return (
        ContactScore.objects.filter(workspace=workspace, churn_band__in=["high", "medium"])
        .select_related("contact")
        .order_by("-historical_value", "p_alive")[:limit]
    )
