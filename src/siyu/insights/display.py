"""Turns a fit into what the console shows: its parameters with a one-line meaning each, and the
Plotly figure specs (holdout check, CLV histogram) the browser renders from JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from siyu.console.charts import chart_layout
from siyu.insights.models import ModelFit, ModelKind

PREDICTED_COLOUR = "#2f6fed"
ACTUAL_COLOUR = "#17a589"


@dataclass(frozen=True)
class Parameter:
    symbol: str
    value: float
    meaning: str


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def fit_parameters(fit: ModelFit) -> list[Parameter]:
    """The transaction and spend parameters in the order the papers list them. Each meaning
    carries the derived figure an operator can read (a rate, a probability, an order value),
    because r=0.8, α=5 means nothing on its own."""
    t, m = fit.transaction_params, fit.spend_params
    rows: list[Parameter] = []
    if {"r", "alpha"} <= t.keys():
        rate = _fmt(t["r"] / t["alpha"])
        rows += [
            Parameter("r", t["r"], _("购买率差异的形状：越小，客户之间购买频率差别越大。")),
            Parameter(
                "α",
                t["alpha"],
                _("购买率的尺度：r/α = %(rate)s，即活跃客户平均每周购买 %(rate)s 次。")
                % {"rate": rate},
            ),
        ]
    if fit.kind == ModelKind.BG_NBD and {"a", "b"} <= t.keys():
        churn = _fmt(t["a"] / (t["a"] + t["b"]))
        rows += [
            Parameter("a", t["a"], _("每次复购后流失概率的 Beta 分布参数 a。")),
            Parameter(
                "b",
                t["b"],
                _("流失概率的 Beta 参数 b：a/(a+b) = %(p)s，即每次复购后平均有 %(p)s 的概率流失。")
                % {"p": churn},
            ),
        ]
    if fit.kind == ModelKind.PARETO_NBD and {"s", "beta"} <= t.keys():
        rows += [
            Parameter("s", t["s"], _("流失率差异的形状：越小，客户之间留存时间差别越大。")),
            Parameter(
                "β",
                t["beta"],
                _("流失率的尺度：s/β = %(rate)s，即平均每周流失率。")
                % {"rate": _fmt(t["s"] / t["beta"])},
            ),
        ]
    if {"p", "q", "gamma"} <= m.keys():
        aov = (
            _("总体平均客单价 p·γ/(q−1) = ¥%(aov)s。")
            % {"aov": f"{m['p'] * m['gamma'] / (m['q'] - 1):,.2f}"}
            if m["q"] > 1
            else _("q ≤ 1：总体平均客单价不存在，客单价预测不可靠。")
        )
        rows += [
            Parameter("p", m["p"], _("单笔订单金额围绕客户自身均值波动的形状。")),
            Parameter("q", m["q"], _("客户平均客单价差异的形状：越小，高客单客户越突出。")),
            Parameter("γ", m["gamma"], _("客户平均客单价的尺度。") + aov),
        ]
    return rows


def holdout_figure(calibration: dict) -> dict[str, Any]:
    """Grouped bars per calibration-period frequency: the repeat purchases the model predicted
    for the holdout weeks against those that happened — the check Fader, Hardie & Lee plot."""
    buckets = calibration.get("buckets", [])
    x = [b["frequency"] for b in buckets]
    customers = [b["customers"] for b in buckets]
    hover = "%{y:.2f} " + _("次") + " · %{customdata} " + _("位客户")
    return {
        "data": [
            {
                "type": "bar",
                "name": _("预测"),
                "x": x,
                "y": [b["predicted"] for b in buckets],
                "customdata": customers,
                "hovertemplate": hover,
                "marker": {"color": PREDICTED_COLOUR},
            },
            {
                "type": "bar",
                "name": _("实际"),
                "x": x,
                "y": [b["actual"] for b in buckets],
                "customdata": customers,
                "hovertemplate": hover,
                "marker": {"color": ACTUAL_COLOUR},
            },
        ],
        "layout": chart_layout(
            barmode="group",
            bargap=0.25,
            hovermode="x unified",
            xaxis={"type": "category", "title": {"text": _("校准期内的复购次数")}},
            yaxis={
                "title": {"text": _("留出期人均复购次数")},
                "gridcolor": "#eef0f4",
                "rangemode": "tozero",
            },
        ),
    }


def clv_histogram_figure(distribution: dict) -> dict[str, Any]:
    """Contacts per CLV band; the last band also holds the top 1%, so one whale cannot flatten
    the chart."""
    edges, counts = distribution["edges"], distribution["counts"]
    centres = [round((lo + hi) / 2, 2) for lo, hi in zip(edges, edges[1:], strict=False)]
    widths = [round(hi - lo, 2) for lo, hi in zip(edges, edges[1:], strict=False)]
    ranges = [f"¥{lo:,.0f}–¥{hi:,.0f}" for lo, hi in zip(edges, edges[1:], strict=False)]
    return {
        "data": [
            {
                "type": "bar",
                "name": _("客户数"),
                "x": centres,
                "y": counts,
                "width": widths,
                "customdata": ranges,
                "hovertemplate": "%{customdata}: %{y} " + _("位客户") + "<extra></extra>",
                "marker": {"color": PREDICTED_COLOUR, "line": {"color": "#fff", "width": 1}},
            }
        ],
        "layout": chart_layout(
            showlegend=False,
            xaxis={"title": {"text": _("预测 CLV")}, "tickprefix": "¥", "tickformat": ",.0f"},
            yaxis={
                "title": {"text": _("客户数")},
                "gridcolor": "#eef0f4",
                "rangemode": "tozero",
                "tickformat": ",d",
            },
        ),
    }
