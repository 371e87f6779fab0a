"""Writes for stores, staff, products, orders and refunds. Batches are idempotent by the
caller's ids (code, sku, order_no, refund_no)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from siyu import bulk
from siyu.commerce import queries
from siyu.commerce.models import (
    ZERO,
    ChannelSpend,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    Refund,
    Staff,
    Store,
)
from siyu.commerce.schemas import OrderIn, ProductIn, RefundIn, StaffIn, StoreIn
from siyu.contacts import queries as contact_queries
from siyu.contacts.models import SourceChannel
from siyu.errors import NotFound, ValidationFailed
from siyu.ingest import BatchResult, RowError, duplicate_ids
from siyu.tenancy.models import Workspace


def _upsert(model, key: str, *, workspace: Workspace, rows: list[dict | None]) -> BatchResult:
    """``rows`` keeps the caller's positions (None for rows already refused) so that errors
    name the right item."""
    result = BatchResult()
    dupes = duplicate_ids([r[key] if r is not None else f"\0{i}" for i, r in enumerate(rows)])
    result.errors = [RowError(i, key, msg) for i, msg in dupes.items()]
    rows = [r for i, r in enumerate(rows) if i not in dupes and r is not None]
    existing = {
        getattr(o, key): o
        for o in model.objects.filter(workspace=workspace, **{f"{key}__in": [r[key] for r in rows]})
    }
    new, changed, fields = [], [], set()
    for row in rows:
        obj = existing.get(row[key])
        if obj is None:
            new.append(model(workspace=workspace, **row))
            continue
        diff = {k: v for k, v in row.items() if getattr(obj, k) != v}
        if diff:
            for k, v in diff.items():
                setattr(obj, k, v)
            fields.update(diff)
            changed.append(obj)
        else:
            result.unchanged += 1
    model.objects.bulk_create(new, batch_size=1000)
    if changed:
        model.objects.bulk_update(changed, sorted(fields), batch_size=1000)
    result.created, result.updated = len(new), len(changed)
    return result


@transaction.atomic
def stores_upsert(*, workspace: Workspace, items: list[StoreIn]) -> BatchResult:
    return _upsert(Store, "code", workspace=workspace, rows=[i.model_dump() for i in items])


@transaction.atomic
def products_upsert(*, workspace: Workspace, items: list[ProductIn]) -> BatchResult:
    return _upsert(Product, "sku", workspace=workspace, rows=[i.model_dump() for i in items])


@transaction.atomic
def staff_upsert(*, workspace: Workspace, items: list[StaffIn]) -> BatchResult:
    stores = queries.store_ids_by_code(
        workspace=workspace, codes=[i.store_code for i in items if i.store_code]
    )
    rows, errors = [], []
    for idx, item in enumerate(items):
        row = item.model_dump(exclude={"store_code"})
        if item.store_code and item.store_code not in stores:
            errors.append(RowError(idx, "store_code", f"unknown store code {item.store_code!r}"))
            row = None
        elif item.store_code:
            row["store_id"] = stores[item.store_code]
        else:
            row["store_id"] = None
        rows.append(row)
    result = _upsert(Staff, "code", workspace=workspace, rows=rows)
    result.errors = sorted(errors + result.errors, key=lambda e: e.index)
    return result


#: Columns of the rows ``prepare_orders`` builds and ``write_orders`` inserts. A prepared order
#: lacks the leading id, a prepared item or new order's refund the leading workspace and order ids.
ORDER_COLUMNS = (
    "id",
    "workspace_id",
    "order_no",
    "contact_id",
    "channel",
    "platform",
    "store_id",
    "staff_id",
    "paid_at",
    "gross_amount",
    "discount_amount",
    "amount",
    "refunded_amount",
    "status",
    "created_at",
)
ITEM_COLUMNS = (
    "workspace_id",
    "order_id",
    "product_id",
    "sku",
    "name",
    "quantity",
    "unit_price",
    "amount",
)
REFUND_COLUMNS = (
    "workspace_id",
    "order_id",
    "refund_no",
    "amount",
    "refunded_at",
    "reason",
    "created_at",
)


@dataclass
class PreparedOrders:
    """Database-ready rows (see the column tuples above) for new orders, their items and refunds,
    and refunds for orders already stored (complete ``REFUND_COLUMNS`` rows)."""

    orders: list[tuple[Any, ...]]
    items: list[list[tuple[Any, ...]]]
    refunds: list[list[tuple[Any, ...]]]
    existing_refunds: list[tuple[Any, ...]]
    unchanged: int


def prepare_orders(
    *, workspace: Workspace, items: list[OrderIn]
) -> tuple[PreparedOrders, list[RowError]]:
    """Resolves contacts, stores, staff and products for a batch in a few queries and says, per
    item, what is wrong. Orders already stored are skipped (only refunds they did not have are
    added), which makes re-sending a batch a no-op."""
    errors: dict[int, RowError] = {
        i: RowError(i, "order_no", msg)
        for i, msg in duplicate_ids([o.order_no for o in items]).items()
    }
    contact_ids, unresolved = contact_queries.resolve_identity_refs(
        workspace=workspace,
        refs=[o.contact for o in items],
        contact_ids=[o.contact_id for o in items],
    )
    for i, msg in unresolved.items():
        errors.setdefault(i, RowError(i, "contact_id" if items[i].contact_id else "contact", msg))
    stores = queries.store_ids_by_code(
        workspace=workspace, codes=[o.store_code for o in items if o.store_code]
    )
    staff = queries.staff_ids_by_code(
        workspace=workspace, codes=[o.staff_code for o in items if o.staff_code]
    )
    products = queries.product_ids_by_sku(
        workspace=workspace, skus=[it.sku for o in items for it in o.items]
    )
    for i, o in enumerate(items):
        if i in errors:
            continue
        if o.store_code and o.store_code not in stores:
            errors[i] = RowError(i, "store_code", f"unknown store code {o.store_code!r}")
        elif o.staff_code and o.staff_code not in staff:
            errors[i] = RowError(i, "staff_code", f"unknown staff code {o.staff_code!r}")
    existing = queries.order_ids_by_no(workspace=workspace, numbers=[o.order_no for o in items])
    known_refunds = queries.refund_numbers_stored(
        workspace=workspace, numbers=[r.refund_no for o in items for r in o.refunds]
    )
    prepared = PreparedOrders([], [], [], [], 0)
    ws, now = workspace.id, timezone.now()
    for i, o in enumerate(items):
        if i in errors:
            continue
        if o.order_no in existing:
            new_refunds = [r for r in o.refunds if r.refund_no not in known_refunds]
            prepared.existing_refunds += [
                (ws, existing[o.order_no], r.refund_no, r.amount, r.refunded_at, r.reason, now)
                for r in new_refunds
            ]
            prepared.unchanged += 0 if new_refunds else 1
            continue
        clash = next((r.refund_no for r in o.refunds if r.refund_no in known_refunds), None)
        if clash:
            errors[i] = RowError(
                i, "refunds", f"refund_no {clash!r} already belongs to another order"
            )
            continue
        refunded = sum((r.amount for r in o.refunds), ZERO) if o.refunds else ZERO
        prepared.orders.append(
            (
                ws,
                o.order_no,
                contact_ids[i],
                o.channel.value,
                o.platform,
                stores[o.store_code] if o.store_code else None,
                staff[o.staff_code] if o.staff_code else None,
                o.paid_at,
                o.gross_amount,
                o.discount_amount,
                o.amount,
                refunded,
                _status(o.amount, refunded).value,
                now,
            )
        )
        prepared.items.append(
            [
                (products.get(it.sku), it.sku, it.name, it.quantity, it.unit_price, it.amount)
                for it in o.items
            ]
        )
        prepared.refunds.append(
            [(r.refund_no, r.amount, r.refunded_at, r.reason, now) for r in o.refunds]
        )
    return prepared, sorted(errors.values(), key=lambda e: e.index)


def _status(amount: Decimal, refunded: Decimal) -> OrderStatus:
    if refunded <= 0:
        return OrderStatus.PAID
    return OrderStatus.REFUNDED if refunded >= amount else OrderStatus.PARTIALLY_REFUNDED


@transaction.atomic
def write_orders(*, workspace: Workspace, prepared: PreparedOrders) -> BatchResult:
    """Inserts in a few set-at-a-time statements. Order ids are reserved first so items and
    refunds can name their order; an order another writer stored meanwhile is skipped with its
    items and refunds and counted as unchanged."""
    touched = {r[1] for r in prepared.existing_refunds}
    if prepared.existing_refunds:
        bulk.insert(Refund, REFUND_COLUMNS, prepared.existing_refunds)
        _apply_refunds(workspace, touched)
    ids = bulk.reserve_ids(Order, len(prepared.orders))
    written = bulk.insert(
        Order,
        ORDER_COLUMNS,
        [(oid, *row) for oid, row in zip(ids, prepared.orders, strict=True)],
        unique=("workspace_id", "order_no"),
        key="id",
    )
    ws = workspace.id
    bulk.insert(
        OrderItem,
        ITEM_COLUMNS,
        [
            (ws, oid, *it)
            for oid, its in zip(ids, prepared.items, strict=True)
            if oid in written
            for it in its
        ],
    )
    bulk.insert(
        Refund,
        REFUND_COLUMNS,
        [
            (ws, oid, *rf)
            for oid, rfs in zip(ids, prepared.refunds, strict=True)
            if oid in written
            for rf in rfs
        ],
    )
    return BatchResult(
        created=len(written),
        updated=len(touched),
        unchanged=prepared.unchanged + len(prepared.orders) - len(written),
    )


def _apply_refunds(workspace: Workspace, order_ids: set[int]) -> None:
    """Re-totals refunds per order; the database constraint refuses refunds above the amount paid."""
    totals = dict(
        Refund.objects.filter(workspace=workspace, order_id__in=order_ids)
        .values("order_id")
        .annotate(t=Sum("amount"))
        .values_list("order_id", "t")
    )
    orders = list(
        Order.objects.select_for_update()
        .filter(workspace=workspace, id__in=order_ids)
        .order_by("id")
    )
    for order in orders:
        # SQLite sums decimals without their scale; money is always shown to the fen.
        order.refunded_amount = Decimal(totals.get(order.id) or 0).quantize(Decimal("0.01"))
        if order.refunded_amount > order.amount:
            raise ValidationFailed(
                "refund_exceeds_amount",
                f"refunds of order {order.order_no} would total {order.refunded_amount}, more than the {order.amount} paid",
                path="refunds",
            )
        order.status = _status(order.amount, order.refunded_amount)
    Order.objects.bulk_update(orders, ["refunded_amount", "status"])


@transaction.atomic
def orders_ingest(
    *, workspace: Workspace, items: list[OrderIn], partial: bool = False
) -> BatchResult:
    """``partial=False`` (the API) refuses the whole batch if any item is bad; ``partial=True``
    (imports) keeps the good ones and returns the errors."""
    prepared, errors = prepare_orders(workspace=workspace, items=items)
    if errors and not partial:
        BatchResult(errors=errors).raise_if_errors()
    result = write_orders(workspace=workspace, prepared=prepared)
    result.errors = errors
    return result


@transaction.atomic
def staff_link_user(*, workspace: Workspace, staff_code: str, user: object) -> Staff:
    """Binds a console login to a staff member, which limits that login to the staff's store."""
    staff = Staff.objects.select_for_update().filter(workspace=workspace, code=staff_code).first()
    if staff is None:
        raise ValidationFailed(
            "unknown_reference", f"unknown staff code {staff_code!r}", path="staff_code"
        )
    Staff.objects.filter(workspace=workspace, user=user).exclude(id=staff.id).update(user=None)
    staff.user = user
    staff.save(update_fields=["user"])
    return staff


@transaction.atomic
def refunds_add(*, workspace: Workspace, order_no: str, items: list[RefundIn]) -> BatchResult:
    """Adds refunds to a stored order, all or none. A refund_no the order already has is left as
    it is, so a retried call changes nothing; the order's status follows the new total."""
    order = Order.objects.select_for_update().filter(workspace=workspace, order_no=order_no).first()
    if order is None:
        raise NotFound("not_found", f"Order {order_no} not found.")
    result = BatchResult()
    errors = {
        i: RowError(i, "refund_no", m)
        for i, m in duplicate_ids([r.refund_no for r in items]).items()
    }
    known = dict(
        Refund.objects.filter(
            workspace=workspace, refund_no__in=[r.refund_no for r in items]
        ).values_list("refund_no", "order_id")
    )
    new = []
    for i, r in enumerate(items):
        owner = known.get(r.refund_no)
        if i in errors:
            continue
        if owner is None:
            new.append(
                Refund(
                    workspace=workspace,
                    order=order,
                    refund_no=r.refund_no,
                    amount=r.amount,
                    refunded_at=r.refunded_at,
                    reason=r.reason,
                )
            )
        elif owner == order.id:
            result.unchanged += 1
        else:
            errors[i] = RowError(
                i, "refund_no", f"refund_no {r.refund_no!r} already belongs to another order"
            )
    BatchResult(errors=sorted(errors.values(), key=lambda e: e.index)).raise_if_errors()
    total = order.refunded_amount + sum((r.amount for r in new), Decimal("0.00"))
    if total > order.amount:
        raise ValidationFailed(
            "refund_exceeds_amount",
            f"refunds of order {order_no} would total {total}, more than the {order.amount} paid",
        )
    Refund.objects.bulk_create(new)
    if new:
        _apply_refunds(workspace, {order.id})
    result.created = len(new)
    return result


#: A money column holds 14 digits with 2 after the point.
_MAX_SPEND = Decimal("999999999999.99")


def _spend_clean(
    *, channel: str, month: date, amount: Decimal | int | str, campaign: str, note: str
) -> dict[str, Any]:
    """One spend entry checked and normalised, or a ValidationFailed naming the field: spend is
    the denominator of CAC, so a wrong channel or a rounded amount would skew every ratio."""
    if channel not in SourceChannel.values:
        raise ValidationFailed(
            "invalid_channel",
            f"unknown channel {channel!r}; use one of {', '.join(SourceChannel.values)}",
            path="channel",
        )
    if isinstance(amount, (float, bool)):
        raise ValidationFailed(
            "invalid_amount", 'amount must be a decimal (a string such as "1200.50")', path="amount"
        )
    try:
        value = Decimal(str(amount).strip()) if not isinstance(amount, Decimal) else amount
    except InvalidOperation:
        raise ValidationFailed(
            "invalid_amount", f"amount {amount!r} is not a number", path="amount"
        ) from None
    if not value.is_finite():
        raise ValidationFailed(
            "invalid_amount", f"amount {amount!r} is not a number", path="amount"
        )
    if value < 0:
        raise ValidationFailed("invalid_amount", "amount must not be negative", path="amount")
    if value != value.quantize(Decimal("0.01")):
        raise ValidationFailed(
            "invalid_amount", "amount has more than 2 decimal places (fen)", path="amount"
        )
    if value > _MAX_SPEND:
        raise ValidationFailed(
            "invalid_amount", f"amount must be at most {_MAX_SPEND}", path="amount"
        )
    if len(campaign) > 100:
        raise ValidationFailed(
            "invalid_campaign", "campaign is longer than 100 characters", path="campaign"
        )
    if len(note) > 200:
        raise ValidationFailed("invalid_note", "note is longer than 200 characters", path="note")
    return {
        "channel": channel,
        "month": date(month.year, month.month, 1),
        "amount": value.quantize(Decimal("0.01")),
        "campaign": campaign.strip(),
        "note": note.strip(),
    }


@transaction.atomic
def channel_spend_set(
    *,
    workspace: Workspace,
    channel: str,
    month: date,
    amount: Decimal | int | str,
    campaign: str = "",
    note: str = "",
) -> ChannelSpend:
    """Records what a channel (optionally one campaign) cost in a month; entering the same channel,
    campaign and month again replaces the amount, so corrections never double-count."""
    row = _spend_clean(channel=channel, month=month, amount=amount, campaign=campaign, note=note)
    spend, _created = ChannelSpend.objects.update_or_create(
        workspace=workspace,
        channel=row["channel"],
        campaign=row["campaign"],
        month=row["month"],
        defaults={"amount": row["amount"], "note": row["note"]},
    )
    return spend


@transaction.atomic
def channel_spends_set(*, workspace: Workspace, entries: list[dict[str, Any]]) -> BatchResult:
    """A batch of spend entries (keys as for ``channel_spend_set``), refused whole if any is bad."""
    result = BatchResult()
    rows: dict[int, dict[str, Any]] = {}
    for i, entry in enumerate(entries):
        try:
            rows[i] = _spend_clean(
                channel=entry["channel"],
                month=entry["month"],
                amount=entry["amount"],
                campaign=entry.get("campaign", ""),
                note=entry.get("note", ""),
            )
        except ValidationFailed as exc:
            result.errors.append(RowError(i, exc.path or "", exc.message))
    keys = {i: f"{r['channel']}/{r['campaign']}/{r['month']:%Y-%m}" for i, r in rows.items()}
    for i, message in duplicate_ids(list(keys.values())).items():
        index = list(keys)[i]
        result.errors.append(RowError(index, "", message))
    result.errors.sort(key=lambda e: e.index)
    result.raise_if_errors()
    existing = {
        (s.channel, s.campaign, s.month): s
        for s in ChannelSpend.objects.filter(
            workspace=workspace, month__in={r["month"] for r in rows.values()}
        )
    }
    for row in rows.values():
        found = existing.get((row["channel"], row["campaign"], row["month"]))
        if found is None:
            ChannelSpend.objects.create(workspace=workspace, **row)
            result.created += 1
        elif (found.amount, found.note) != (row["amount"], row["note"]):
            found.amount, found.note = row["amount"], row["note"]
            found.save(update_fields=["amount", "note"])
            result.updated += 1
        else:
            result.unchanged += 1
    return result
