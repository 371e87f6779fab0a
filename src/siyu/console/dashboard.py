"""Turns the analytics numbers into what the home page shows: KPI cards with their change
against the previous period, and Plotly figure specs the browser renders."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from siyu.analytics.queries import DailySeries, PeriodKpis
from siyu.contacts.models import SourceChannel

#: A fixed palette so a channel keeps its colour from day to day.
PALETTE = [
    "#2f6fed",
    "#17a589",
    "#f39c12",
    "#8e44ad",
    "#e74c3c",
    "#16a2b8",
    "#7f8c8d",
    "#d35400",
    "#27ae60",
    "#c0392b",
    "#2c3e50",
    "#f1c40f",
    "#9b59b6",
    "#95a5a6",
]


@dataclass(frozen=True)
class KpiCard:
    label: str
    value: int | Decimal | float | None
    previous: int | Decimal | float | None
    kind: str  # "count", "money" or "percent": how the template formats it

    @property
    def change(self) -> float | None:
        """Relative change against the previous period; None when there is nothing to compare."""
        if self.value is None or not self.previous:
            return None
        return (float(self.value) - float(self.previous)) / float(self.previous)


def kpi_cards(current: PeriodKpis, previous: PeriodKpis) -> list[KpiCard]:
    return [
        KpiCard(_("新增客户"), current.new_contacts, previous.new_contacts, "count"),
        KpiCard(_("购买客户"), current.purchasers, previous.purchasers, "count"),
        KpiCard(_("订单数"), current.orders, previous.orders, "count"),
        KpiCard(_("收入"), current.revenue, previous.revenue, "money"),
        KpiCard(_("客单价"), current.aov, previous.aov, "money"),
        KpiCard(_("复购率"), current.repeat_rate, previous.repeat_rate, "percent"),
    ]


def _count_axis(title: str, counts: list[int], **extra: Any) -> dict[str, Any]:
    """A y axis for whole numbers: with small counts Plotly would otherwise tick at 0.5."""
    axis = {
        "title": {"text": title},
        "gridcolor": "#eef0f4",
        "rangemode": "tozero",
        "tickformat": ",d",
        **extra,
    }
    if max(counts, default=0) <= 5:
        axis["dtick"] = 1
    return axis


def _layout(**extra: Any) -> dict[str, Any]:
    return {
        "margin": {"l": 56, "r": 64, "t": 8, "b": 40},
        "height": 320,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {
            "family": "system-ui, -apple-system, 'PingFang SC', 'Microsoft YaHei', sans-serif",
            "size": 12,
        },
        "legend": {"orientation": "h", "y": -0.18},
        "xaxis": {"type": "date", "gridcolor": "#eef0f4"},
        "hovermode": "x unified",
        **extra,
    }


def new_contacts_figure(series: DailySeries) -> dict[str, Any]:
    days = [d.isoformat() for d in series.days]
    labels = dict(SourceChannel.choices)
    data = [
        {
            "type": "bar",
            "name": str(labels.get(channel, channel)),
            "x": days,
            "y": counts,
            "marker": {"color": PALETTE[i % len(PALETTE)]},
        }
        for i, (channel, counts) in enumerate(sorted(series.new_contacts_by_channel.items()))
    ]
    per_day = [sum(day) for day in zip(*series.new_contacts_by_channel.values(), strict=True)]
    return {
        "data": data,
        "layout": _layout(barmode="stack", bargap=0.15, yaxis=_count_axis(_("新增客户"), per_day)),
    }


def orders_figure(series: DailySeries) -> dict[str, Any]:
    days = [d.isoformat() for d in series.days]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": _("订单数"),
                "x": days,
                "y": series.orders,
                "line": {"color": "#2f6fed", "width": 2},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": _("收入"),
                "x": days,
                "y": [float(v) for v in series.revenue],
                "yaxis": "y2",
                "line": {"color": "#17a589", "width": 2},
            },
        ],
        "layout": _layout(
            yaxis=_count_axis(_("订单数"), series.orders),
            yaxis2={
                "title": {"text": _("收入")},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
                "showgrid": False,
                "tickprefix": "¥",
                "tickformat": ",.0f",
            },
        ),
    }
