"""Orders, refunds and the catalogue (products, stores, staff) over the API. Every write is
idempotent by the caller's ids: order_no, refund_no, sku, code."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.http import HttpRequest
from ninja import Body, Router, Schema

from siyu.api.common import BatchOut, ErrorOut, batch_of, local_time
from siyu.commerce import queries, services
from siyu.commerce.models import Order
from siyu.commerce.schemas import OrderIn, ProductIn, RefundIn, StaffIn, StoreIn
from siyu.errors import NotFound
from siyu.tenancy.models import Workspace

router = Router()

OrderBatch = batch_of(OrderIn)
RefundBatch = batch_of(RefundIn)
ProductBatch = batch_of(ProductIn)
StoreBatch = batch_of(StoreIn)
StaffBatch = batch_of(StaffIn)


class OrderItemOut(Schema):
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    amount: Decimal


class RefundOut(Schema):
    refund_no: str
    amount: Decimal
    refunded_at: datetime
    reason: str


class OrderOut(Schema):
    order_no: str
    contact_id: int
    channel: str
    platform: str
    store_code: str | None
    staff_code: str | None
    paid_at: datetime
    gross_amount: Decimal
    discount_amount: Decimal
    amount: Decimal
    refunded_amount: Decimal
    status: str
    items: list[OrderItemOut]
    refunds: list[RefundOut]


class RefundsOut(Schema):
    created: int
    unchanged: int
    order: OrderOut


def _order_out(order: Order, workspace: Workspace) -> dict:
    return {
        "order_no": order.order_no,
        "contact_id": order.contact_id,
        "channel": order.channel,
        "platform": order.platform,
        "store_code": order.store.code if order.store else None,
        "staff_code": order.staff.code if order.staff else None,
        "paid_at": local_time(order.paid_at, workspace),
        "gross_amount": order.gross_amount,
        "discount_amount": order.discount_amount,
        "amount": order.amount,
        "refunded_amount": order.refunded_amount,
        "status": order.status,
        "items": [
            {
                "sku": i.sku,
                "name": i.name,
                "quantity": i.quantity,
                "unit_price": i.unit_price,
                "amount": i.amount,
            }
            for i in sorted(order.items.all(), key=lambda i: i.id)
        ],
        "refunds": [
            {
                "refund_no": r.refund_no,
                "amount": r.amount,
                "refunded_at": local_time(r.refunded_at, workspace),
                "reason": r.reason,
            }
            for r in sorted(order.refunds.all(), key=lambda r: (r.refunded_at, r.id))
        ],
    }


def _order_get(workspace: Workspace, order_no: str) -> Order:
    order = queries.order_get(workspace=workspace, order_no=order_no)
    if order is None:
        raise NotFound("not_found", f"Order {order_no} not found.")
    return order


@router.post(
    "/orders",
    response={200: BatchOut, 422: ErrorOut},
    summary="Record orders with their items and refunds",
    description="Orders already stored are unchanged, except for refunds they did not have yet. "
    "At most 1000 items.",
)
def orders_ingest(request: HttpRequest, payload: Body[OrderBatch]) -> dict:
    return BatchOut.of(services.orders_ingest(workspace=request.workspace, items=payload))


@router.get("/orders/{order_no}", response={200: OrderOut, 404: ErrorOut}, summary="One order")
def order_get(request: HttpRequest, order_no: str) -> dict:
    return _order_out(_order_get(request.workspace, order_no), request.workspace)


@router.post(
    "/orders/{order_no}/refunds",
    response={200: RefundsOut, 404: ErrorOut, 422: ErrorOut},
    summary="Refund an order, in part or in full",
    description="Idempotent by refund_no; refunds totalling more than the amount paid are refused.",
)
def refunds_add(request: HttpRequest, order_no: str, payload: Body[RefundBatch]) -> dict:
    workspace = request.workspace
    result = services.refunds_add(workspace=workspace, order_no=order_no, items=payload)
    order = _order_out(_order_get(workspace, order_no), workspace)
    return {"created": result.created, "unchanged": result.unchanged, "order": order}


def _upsert_all_or_nothing(upsert, request: HttpRequest, items: list) -> dict:
    # The catalogue upserts keep good rows for imports; the API refuses the whole batch instead.
    with transaction.atomic():
        result = upsert(workspace=request.workspace, items=items)
        result.raise_if_errors()
    return BatchOut.of(result)


@router.put("/products", response={200: BatchOut, 422: ErrorOut}, summary="Upsert products by sku")
def products_upsert(request: HttpRequest, payload: Body[ProductBatch]) -> dict:
    return _upsert_all_or_nothing(services.products_upsert, request, payload)


@router.put("/stores", response={200: BatchOut, 422: ErrorOut}, summary="Upsert stores by code")
def stores_upsert(request: HttpRequest, payload: Body[StoreBatch]) -> dict:
    return _upsert_all_or_nothing(services.stores_upsert, request, payload)


@router.put("/staff", response={200: BatchOut, 422: ErrorOut}, summary="Upsert staff by code")
def staff_upsert(request: HttpRequest, payload: Body[StaffBatch]) -> dict:
    return _upsert_all_or_nothing(services.staff_upsert, request, payload)
