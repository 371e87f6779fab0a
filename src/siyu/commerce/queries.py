"""Reads for stores, staff, products and orders."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, QuerySet, Sum

from siyu import bulk
from siyu.commerce.models import ChannelSpend, Order, Product, Refund, Staff, Store
from siyu.tenancy.models import Workspace


def _ids_by(model, field: str, *, workspace: Workspace, values: Iterable[str]) -> dict[str, int]:
    """{value: id} for those of ``values`` the workspace has, in one query."""
    values = list(set(values))
    if not values:
        return {}
    match, params = bulk.in_list(values)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {field}, id FROM {model._meta.db_table} WHERE workspace_id = %s AND {field} {match}",  # noqa: S608
            [workspace.id, *params],
        )
        return dict(cursor.fetchall())


def store_ids_by_code(*, workspace: Workspace, codes: Iterable[str]) -> dict[str, int]:
    return _ids_by(Store, "code", workspace=workspace, values=codes)


def staff_ids_by_code(*, workspace: Workspace, codes: Iterable[str]) -> dict[str, int]:
    return _ids_by(Staff, "code", workspace=workspace, values=codes)


def product_ids_by_sku(*, workspace: Workspace, skus: Iterable[str]) -> dict[str, int]:
    return _ids_by(Product, "sku", workspace=workspace, values=skus)


def order_ids_by_no(*, workspace: Workspace, numbers: Iterable[str]) -> dict[str, int]:
    return _ids_by(Order, "order_no", workspace=workspace, values=numbers)


def refund_numbers_stored(*, workspace: Workspace, numbers: Iterable[str]) -> set[str]:
    return set(_ids_by(Refund, "refund_no", workspace=workspace, values=numbers))


def store_id_for_user(*, workspace: Workspace, user: Any) -> int | None:
    return (
        Staff.objects.filter(workspace=workspace, user=user)
        .values_list("store_id", flat=True)
        .first()
    )


def stores_list(*, workspace: Workspace) -> QuerySet[Store]:
    return Store.objects.filter(workspace=workspace).order_by("code")


def staff_list(*, workspace: Workspace) -> QuerySet[Staff]:
    return Staff.objects.filter(workspace=workspace).select_related("store").order_by("code")


def products_list(*, workspace: Workspace) -> QuerySet[Product]:
    return Product.objects.filter(workspace=workspace).order_by("sku")


def order_totals_by_contact(
    *, workspace: Workspace, contact_ids: Iterable[int]
) -> dict[int, tuple[int, Decimal]]:
    """{contact id: (orders, their amounts summed)} for the given contacts (those without
    orders are absent), read through the index of each contact's orders."""
    rows = (
        Order.objects.filter(workspace=workspace, contact_id__in=list(contact_ids))
        .values("contact_id")
        .annotate(count=Count("id"), total=Sum("amount"))
        .values_list("contact_id", "count", "total")
    )
    return {contact_id: (count, total) for contact_id, count, total in rows}


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
