"""What the explore analyses (funnels, retention, distribution, attribution) share: who may be
seen, which period is asked for, and the names shown for the values of a breakdown.

A staff member sees only the contacts of their store, exactly as the contact list does; the
scope is applied to the contacts table, and every analysis starts from it (or joins it), so an
order or event of a contact outside the store never counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.utils.translation import gettext as _
from ibis.expr.types import Column, NumericValue, Table

from siyu.analytics.queries import Window, days_window
from siyu.analytics.tables import table
from siyu.commerce import queries as commerce_queries
from siyu.commerce.models import Order, OrderChannel, OrderStatus
from siyu.contacts.models import Contact, SourceChannel
from siyu.errors import ValidationFailed
from siyu.tenancy.models import Membership, Role, Workspace

#: A breakdown keeps its largest values and folds the rest into one bucket with this key.
OTHER = "__other__"
DEFAULT_TOP = 10
MAX_TOP = 50
MAX_PERIOD_DAYS = 3 * 366
#: A staff member without a store sees nobody: no contact has id 0.
_NOBODY = 0


@dataclass(frozen=True)
class Scope:
    """One workspace, narrowed to one store's contacts for a staff member."""

    workspace: Workspace
    store_id: int | None = None

    @classmethod
    def of(cls, workspace: Workspace, membership: Membership | None = None) -> Scope:
        if membership is None or membership.role != Role.STAFF:
            return cls(workspace)
        store_id = commerce_queries.store_id_for_user(workspace=workspace, user=membership.user)
        return cls(workspace, store_id or _NOBODY)

    def contacts(self) -> Table:
        c = table(Contact)
        preds = [c.workspace_id == self.workspace.id]
        if self.store_id is not None:
            preds.append(c.store_id == self.store_id)
        return c.filter(*preds)

    def orders(self) -> Table:
        """Orders that count (not fully refunded), of the workspace; scope them by joining
        ``contacts``."""
        o = table(Order)
        return o.filter(o.workspace_id == self.workspace.id, o.status != OrderStatus.REFUNDED)


def epoch(col: Column) -> NumericValue:
    """Seconds since 1970 as a float: the one portable way to subtract two timestamps (SQLite
    has no interval arithmetic), as in ``audiences.layers``."""
    return col.epoch_seconds().cast("float64")


def period(workspace: Workspace, start: date | None, end: date | None) -> Window:
    """The local days ``start``..``end`` (both included) as a half-open UTC-comparable window."""
    if start is None or end is None:
        raise ValidationFailed("invalid", _("请选择开始和结束日期。"), path="start")
    if start > end:
        raise ValidationFailed("invalid", _("开始日期不能晚于结束日期。"), path="start")
    if (end - start).days >= MAX_PERIOD_DAYS:
        raise ValidationFailed(
            "invalid", _("时间范围最多 %(days)s 天。") % {"days": MAX_PERIOD_DAYS}, path="end"
        )
    return days_window(workspace, start, end)


def top_n(value: int | None) -> int:
    if value is None:
        return DEFAULT_TOP
    if not 1 <= value <= MAX_TOP:
        raise ValidationFailed(
            "invalid", _("Top N 须在 1 到 %(max)s 之间。") % {"max": MAX_TOP}, path="top"
        )
    return value


def labels(workspace: Workspace, dimension: str, values: Iterable[str]) -> dict[str, str]:
    """Display names for the raw values of a dimension: channel names, store and staff names
    for their ids, the text itself otherwise; empty means unknown."""
    values = list(values)
    names: dict[str, str] = {OTHER: _("其他"), "": _("（未知）")}
    if dimension in {"source_channel", "channel"}:
        names.update({str(k): str(v) for k, v in SourceChannel.choices})
        if dimension == "channel":
            names.update({f"order:{k}": _("订单渠道：%s") % v for k, v in OrderChannel.choices})
    ids = [int(v) for v in values if v.isdigit()]
    if dimension in {"store", "first_touch_store"} and ids:
        names.update(
            {
                str(s.id): s.name
                for s in commerce_queries.stores_list(workspace=workspace).filter(id__in=ids)
            }
        )
    if dimension in {"staff", "owner_staff", "first_touch_staff"} and ids:
        names.update(
            {
                str(s.id): s.name
                for s in commerce_queries.staff_list(workspace=workspace).filter(id__in=ids)
            }
        )
    return {v: names.get(v, v) for v in values}
