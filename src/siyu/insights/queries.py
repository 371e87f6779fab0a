"""Reads for the customer-value models: the purchase log they are fitted on and their results."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
from django.db import connection
from django.db.models import Avg, Count, DateField, FloatField, QuerySet, Sum
from django.db.models.functions import Cast, TruncMonth

from siyu.commerce.models import ChannelSpend, Order
from siyu.contacts import queries as contacts_queries
from siyu.contacts.models import Contact
from siyu.insights.models import ContactScore, FitStatus, ModelFit
from siyu.tenancy.models import Membership, Workspace


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
    # Floats straight from the driver: through the ORM a million scores took 1.5 s to read,
    # five times the query.
    values = (
        ContactScore.objects.filter(workspace=workspace)
        .annotate(value=Cast("clv", FloatField()))
        .values_list("value")
    )
    with connection.cursor() as cursor:
        cursor.execute(*values.query.sql_with_params())
        clv = np.fromiter((value for (value,) in cursor.fetchall()), dtype=float)
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
    """Per acquisition channel: contacts, buyers, predicted CLV per contact, acquisition spend,
    the contacts first seen in the months with spend, CAC (spend ÷ those contacts) and the CLV:CAC
    ratio the seeds argue from. Where a figure cannot be computed it is None and ``reason`` says
    why ("no_fit", "no_spend", "zero_spend", "no_new_contacts"), so nothing shows as NaN."""
    clv = {
        row["contact__source_channel"]: row
        for row in ContactScore.objects.filter(workspace=workspace)
        .values("contact__source_channel")
        .annotate(buyers=Count("id"), avg_clv=Avg("clv"), total_clv=Sum("clv"))
    }
    scored = ContactScore.objects.filter(workspace=workspace).exists()
    month = TruncMonth(
        "first_seen_at", output_field=DateField(), tzinfo=ZoneInfo(workspace.time_zone)
    )
    contacts_by_month: dict[str, dict[date, int]] = {}
    for channel, first_month, n in (
        Contact.objects.filter(workspace=workspace)
        .annotate(first_month=month)
        .values("source_channel", "first_month")
        .annotate(n=Count("id"))
        .values_list("source_channel", "first_month", "n")
    ):
        contacts_by_month.setdefault(channel, {})[first_month] = n
    spend: dict[str, dict[date, Decimal]] = {}
    for channel, spend_month, amount in (
        ChannelSpend.objects.filter(workspace=workspace)
        .values("channel", "month")
        .annotate(t=Sum("amount"))
        .values_list("channel", "month", "t")
    ):
        spend.setdefault(channel, {})[spend_month] = amount
    rows = []
    for channel in sorted(set(contacts_by_month) | set(spend)):
        months = contacts_by_month.get(channel, {})
        n = sum(months.values())
        total_spend = sum(spend[channel].values(), Decimal("0")) if channel in spend else None
        acquired = sum(months.get(m, 0) for m in spend.get(channel, {}))
        stats = clv.get(channel, {})
        per_contact_clv = (stats.get("total_clv") or Decimal("0")) / n if scored and n else None
        cac = total_spend / acquired if total_spend and acquired else None
        ratio = per_contact_clv / cac if per_contact_clv is not None and cac else None
        if not scored:
            reason = "no_fit"
        elif total_spend is None:
            reason = "no_spend"
        elif not total_spend:
            reason = "zero_spend"
        elif not acquired:
            reason = "no_new_contacts"
        else:
            reason = ""
        rows.append(
            {
                "channel": channel,
                "contacts": n,
                "buyers": stats.get("buyers", 0),
                "clv_per_contact": _money(per_contact_clv),
                "avg_clv_per_buyer": _money(stats.get("avg_clv")),
                "spend": _money(total_spend),
                "acquired": acquired,
                "cac": _money(cac),
                "clv_cac_ratio": round(float(ratio), 2) if ratio is not None else None,
                "reason": reason,
            }
        )
    return rows


def _money(value) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(Decimal("0.01"))


def at_risk_valuable(
    *, workspace: Workspace, membership: Membership | None = None, limit: int = 50
) -> QuerySet[ContactScore]:
    """The valuable contacts most likely slipping away: medium or high churn risk, those who
    have spent the most so far first (their future value is what P(alive) is discounting).
    A staff member sees only the contacts of their own store."""
    visible = contacts_queries.contacts_visible(workspace=workspace, membership=membership)
    return (
        ContactScore.objects.filter(
            workspace=workspace, churn_band__in=["high", "medium"], contact__in=visible
        )
        .select_related("contact")
        .order_by("-historical_value", "p_alive")[:limit]
    )


def contact_score(
    *, workspace: Workspace, contact_id: int, membership: Membership | None = None
) -> ContactScore | None:
    """One contact's latest scores; None when the contact never bought, no fit has run, or the
    contact is outside what the viewer may see."""
    visible = contacts_queries.contacts_visible(workspace=workspace, membership=membership)
    return (
        ContactScore.objects.filter(workspace=workspace, contact_id=contact_id, contact__in=visible)
        .select_related("fit")
        .first()
    )
