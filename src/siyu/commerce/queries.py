"""Reads for stores, staff, products and orders."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from django.db.models import QuerySet

from siyu.commerce.models import ChannelSpend, Order, Product, Staff, Store
from siyu.tenancy.models import Workspace


def _ids_by(model, field: str, *, workspace: Workspace, values: Iterable[str]) -> dict[str, int]:
    values = list(set(values))
    out: dict[str, int] = {}
    for start in range(0, len(values), 1000):
        out.update(
            model.objects.filter(workspace=workspace, **{f"{field}__in": values[start : start + 1000]}).values_list(field, "id")
        )
    return out


def store_ids_by_code(*, workspace: Workspace, codes: Iterable[str]) -> dict[str, int]:
    return _ids_by(Store, "code", workspace=workspace, values=codes)


def staff_ids_by_code(*, workspace: Workspace, codes: Iterable[str]) -> dict[str, int]:
    return _ids_by(Staff, "code", workspace=workspace, values=codes)


def product_ids_by_sku(*, workspace: Workspace, skus: Iterable[str]) -> dict[str, int]:
    return _ids_by(Product, "sku", workspace=workspace, values=skus)


def store_id_for_user(*, workspace: Workspace, user: Any) -> int | None:
    return Staff.objects.filter(workspace=workspace, user=user).values_list("store_id", flat=True).first()


def stores_list(*, workspace: Workspace) -> QuerySet[Store]:
    return Store.objects.filter(workspace=workspace).order_by("code")


def staff_list(*, workspace: Workspace) -> QuerySet[Staff]:
    return Staff.objects.filter(workspace=workspace).select_related("store").order_by("code")


def products_list(*, workspace: Workspace) -> QuerySet[Product]:
    return Product.objects.filter(workspace=workspace).order_by("sku")


def orders_for_contact(*, workspace: Workspace, contact_id: int) -> QuerySet[Order]:
    return (
        Order.objects.filter(workspace=workspace, contact_id=contact_id)
        .select_related("store", "staff")
        .prefetch_related("items", "refunds")
        .order_by("-paid_at")
    )


def order_get(*, workspace: Workspace, order_no: str) -> Order | None:
    return (
        Order.objects.filter(workspace=workspace, order_no=order_no)
        .select_related("store", "staff")
        .prefetch_related("items", "refunds")
        .first()
    )


def channel_spend_list(
    *,
    workspace: Workspace,
    channel: str | None = None,
    month_from: date | None = None,
    month_to: date | None = None,
) -> QuerySet[ChannelSpend]:
    """Acquisition spend entries, newest month first, optionally narrowed to a channel and months."""
    qs = ChannelSpend.objects.filter(workspace=workspace)
    if channel:
        qs = qs.filter(channel=channel)
    if month_from:
        qs = qs.filter(month__gte=month_from.replace(day=1))
    if month_to:
        qs = qs.filter(month__lte=month_to.replace(day=1))
    return qs.order_by("-month", "channel", "campaign", "id")
