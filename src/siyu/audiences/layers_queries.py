"""Reads for layers: the configuration, the RFM matrix, the month-over-month stage flow and one
contact's layers. A staff member's view passes ``store_id`` and sees only that store's contacts.
(Kept apart from ``queries.py`` so tags and segments, edited by others, stay small.)"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import QuerySet
from ibis.expr.types import Table

from siyu.analytics.tables import fetch, table
from siyu.audiences.layers import RFM_CLASSES
from siyu.audiences.models import (
    ContactLayer,
    IntentLayer,
    LayerConfig,
    LayerSnapshot,
    LifecycleStage,
)
from siyu.contacts.models import Contact
from siyu.tenancy.models import Workspace

CENT = Decimal("0.01")


def layer_config_get(*, workspace: Workspace) -> LayerConfig:
    """The saved configuration, or an unsaved one holding the defaults."""
    return LayerConfig.objects.filter(workspace=workspace).first() or LayerConfig(
        workspace=workspace
    )


def _scoped(t: Table, workspace: Workspace, store_id: int | None) -> Table:
    t = t.filter(t.workspace_id == workspace.id)
    if store_id is None:
        return t
    c = table(Contact)
    return t.filter(
        t.contact_id.isin(c.filter(c.workspace_id == workspace.id, c.store_id == store_id).id)
    )


@dataclass(frozen=True)
class RFMCell:
    rfm_class: str
    label: str
    r_high: bool
    f_high: bool
    m_high: bool
    contacts: int
    revenue: Decimal
    revenue_share: Decimal
    average_order_value: Decimal | None


def _groups(workspace: Workspace, store_id: int | None) -> list[tuple]:
    """Contacts, net revenue in the RFM window and orders in it per (RFM class, stage, intent
    layer), as of the last refresh: one scan of the layers serves the matrix and both counts
    (at most 9 x 6 x 4 rows)."""
    layer = _scoped(table(ContactLayer), workspace, store_id)
    return fetch(
        layer.group_by("rfm_class", "lifecycle_stage", "intent_layer").aggregate(
            contacts=layer.count(), revenue=layer.monetary.sum(), orders=layer.frequency.sum()
        )
    )


def _rfm_cells(groups: list[tuple]) -> list[RFMCell]:
    found: dict[str, tuple[int, Decimal, int]] = {}
    for code, _, _, n, revenue, orders in groups:
        if code:
            was_n, was_revenue, was_orders = found.get(code, (0, Decimal(0), 0))
            found[code] = (was_n + n, was_revenue + Decimal(str(revenue)), was_orders + orders)
    total = sum((revenue for _, revenue, _ in found.values()), Decimal(0))
    cells = []
    for (r, f, m), code in RFM_CLASSES.items():
        n, revenue, orders = found.get(code.value, (0, Decimal(0), 0))
        cells.append(
            RFMCell(
                rfm_class=code.value,
                label=str(code.label),
                r_high=r,
                f_high=f,
                m_high=m,
                contacts=n,
                revenue=revenue.quantize(CENT),
                revenue_share=(revenue / total).quantize(Decimal("0.0001"))
                if total
                else Decimal(0),
                average_order_value=(revenue / orders).quantize(CENT) if orders else None,
            )
        )
    return cells


def _counts(groups: list[tuple], column: int, codes: list[str]) -> dict[str, int]:
    """Contacts per code of one layer, every code present (zero when empty)."""
    counts = dict.fromkeys(codes, 0)
    for row in groups:
        counts[row[column]] = counts.get(row[column], 0) + row[3]
    return counts


def rfm_matrix(*, workspace: Workspace, store_id: int | None = None) -> list[RFMCell]:
    """The eight classes in the classic order with their contacts, net revenue in the RFM window,
    share of that revenue (0-1, of the classified contacts' total) and average order value (none
    without orders), as of the last refresh."""
    return _rfm_cells(_groups(workspace, store_id))


@dataclass(frozen=True)
class LayersOverview:
    rfm: list[RFMCell]
    stages: dict[str, int]
    intents: dict[str, int]


def layers_overview(*, workspace: Workspace, store_id: int | None = None) -> LayersOverview:
    """The RFM matrix and the contacts per lifecycle stage and per intent layer, from one scan."""
    groups = _groups(workspace, store_id)
    return LayersOverview(
        rfm=_rfm_cells(groups),
        stages=_counts(groups, 1, LifecycleStage.values),
        intents=_counts(groups, 2, IntentLayer.values),
    )


@dataclass(frozen=True)
class StageFlow:
    from_stage: str | None
    to_stage: str
    contacts: int


def stage_flow(
    *, workspace: Workspace, month: date, store_id: int | None = None
) -> list[StageFlow]:
    """How many contacts went from each stage at the end of the previous month to each stage at
    the end of ``month`` (as of each month's last refresh); ``from_stage`` is None for contacts
    without a stage then (new to the pool). Empty for a month in which no refresh ran.
    Ordered by the lifecycle order of (from, to).

    A contact's stage at a month's end is its latest snapshot row up to that month. Both ends
    come from one pass over the rows up to ``month``: each row keyed "YYYY-MM-DD<stage>", the
    latest row is the greatest key (the date's text sorts as the date does), the latest before
    ``month`` the greatest among the earlier rows; no join back to the rows is needed."""
    month = month.replace(day=1)
    if month not in snapshot_months(workspace=workspace):
        return []
    snap = _scoped(table(LayerSnapshot), workspace, store_id)
    snap = snap.filter(snap.month <= month)
    # Formatted explicitly: a cast to text follows the server's DateStyle on PostgreSQL.
    keyed = snap.month.strftime("%Y-%m-%d").concat(snap.lifecycle_stage)
    ends = snap.group_by("contact_id").aggregate(
        before=keyed.max(where=snap.month < month), after=keyed.max()
    )
    ends = ends.select(from_stage=ends.before.substr(10), to_stage=ends.after.substr(10))
    rows = fetch(ends.group_by("from_stage", "to_stage").aggregate(n=ends.count()))
    order = {stage: i for i, stage in enumerate(LifecycleStage.values)}
    flows = [StageFlow(from_stage=f, to_stage=t, contacts=n) for f, t, n in rows]
    return sorted(flows, key=lambda s: (order.get(s.from_stage, -1), order[s.to_stage]))


def contact_layer(*, workspace: Workspace, contact_id: int) -> ContactLayer | None:
    """The contact's layers as of the last refresh; None before the first refresh."""
    return ContactLayer.objects.filter(workspace=workspace, contact_id=contact_id).first()


def stage_counts(*, workspace: Workspace, store_id: int | None = None) -> dict[str, int]:
    """Contacts per lifecycle stage now, every stage present (zero when empty)."""
    return _counts(_groups(workspace, store_id), 1, LifecycleStage.values)


def snapshot_months(*, workspace: Workspace) -> list[date]:
    """The months with a stage snapshot (a refresh ran in them), newest first."""
    listed = (
        LayerConfig.objects.filter(workspace=workspace)
        .values_list("snapshot_months", flat=True)
        .first()
    )
    return sorted((date.fromisoformat(m) for m in listed or []), reverse=True)


def layers_computed_at(*, workspace: Workspace) -> datetime | None:
    """When the last refresh ran (every contact's layers are as of then); None before the
    first."""
    return (
        LayerConfig.objects.filter(workspace=workspace)
        .values_list("refreshed_at", flat=True)
        .first()
    )


def with_recency(*, workspace: Workspace, rows: Iterable[ContactLayer]) -> None:
    """Sets ``recency_days`` on each row (a page of a list): days from its last order to the
    last refresh, as ``ContactLayer.recency_days_as_of`` derives it."""
    refreshed_at = layers_computed_at(workspace=workspace)
    for row in rows:
        row.recency_days = row.recency_days_as_of(refreshed_at)


#: The layer columns a contacts list can be filtered on.
LAYER_FIELDS = ("rfm_class", "lifecycle_stage", "intent_layer")


def layer_contacts(
    *, workspace: Workspace, field: str, value: str, store_id: int | None = None
) -> QuerySet[ContactLayer]:
    """The contacts in one RFM class, lifecycle stage or intent layer as of the last refresh,
    with their contact and store, biggest spenders in the RFM window first."""
    if field not in LAYER_FIELDS:
        raise ValueError(f"not a layer column: {field}")
    qs = ContactLayer.objects.filter(workspace=workspace, **{field: value})
    if store_id is not None:
        qs = qs.filter(contact__store_id=store_id)
    return qs.select_related("contact", "contact__store").order_by("-monetary", "contact_id")
