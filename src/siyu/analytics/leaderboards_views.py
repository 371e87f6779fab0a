"""The 排行榜 console page (/analytics/metrics/leaderboards/): stores, staff and KOCs ranked for a
period, top N and the rest summarised, and the same board as CSV. A staff login sees its own
store only."""

from __future__ import annotations

import csv
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from siyu.analytics import leaderboards
from siyu.analytics.leaderboards import Board, Entry
from siyu.analytics.metrics_views import parse, show
from siyu.commerce import queries as commerce_queries
from siyu.console.access import console_view, deferred_in_browser
from siyu.console.charts import chart_layout
from siyu.tenancy.models import Role

KIND_NAMES = {"store": gettext_lazy("门店"), "staff": gettext_lazy("导购"), "koc": "KOC"}


def _build(request: HttpRequest) -> tuple[Any, Board]:
    ws, membership = request.workspace, request.membership
    req = parse(request.GET, timezone.localdate())
    kind = request.GET.get("kind")
    kind = kind if kind in leaderboards.KINDS else "store"
    by = request.GET.get("by")
    by = by if by in leaderboards.RANK_BY[kind] else None
    top = request.GET.get("top", "")
    top_n = int(top) if top.isdigit() else leaderboards.DEFAULT_TOP
    store_id = None
    if membership.role == Role.STAFF:
        store_id = commerce_queries.store_id_for_user(workspace=ws, user=membership.user) or -1
    board = leaderboards.leaderboard(
        workspace=ws, kind=kind, start=req.start, end=req.end, by=by, top=top_n, store_id=store_id
    )
    return req, board


def _row(entry: Entry, columns: tuple) -> dict[str, Any]:
    figures = {code: entry.figure(code) for code, _n, _u in columns}
    return {
        "rank": entry.rank,
        "label": entry.label,
        "cells": [
            {"text": show(f, unit), "why": leaderboards.why(f)}
            for (code, _n, unit), f in zip(columns, figures.values(), strict=True)
        ],
    }


def _figure(board: Board, columns: tuple) -> dict[str, Any] | None:
    """The top N as horizontal bars of the ranking metric, best at the top; None when no
    entry has a value to draw."""
    name, unit = next((n, u) for c, n, u in columns if c == board.by)
    bars = [(e.label, e.figure(board.by).value) for e in board.top]
    bars = [(label, float(v)) for label, v in bars if v is not None]
    if not bars:
        return None
    scale = 100 if unit == "ratio" else 1
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": [label for label, _v in bars],
                "x": [v * scale for _label, v in bars],
                "name": str(name),
                "marker": {"color": "#2f6fed"},
                "hovertemplate": "%{y}: %{x:,.2f}"
                + ("%" if unit == "ratio" else "")
                + "<extra></extra>",
            }
        ],
        "layout": chart_layout(
            height=max(200, 28 * len(bars) + 60),
            margin={"l": 140, "r": 24, "t": 8, "b": 32},
            yaxis={"autorange": "reversed", "type": "category"},
            xaxis={"title": {"text": str(name) + (" (%)" if unit == "ratio" else "")}},
            showlegend=False,
        ),
    }


@console_view()
@deferred_in_browser("analytics/leaderboards.html")
def leaderboards_page(request: HttpRequest) -> HttpResponse:
    req, board = _build(request)
    columns = leaderboards.columns_for(board.kind)
    context = {
        "req": req,
        "board": board,
        "kinds": list(KIND_NAMES.items()),
        "rank_by": [(c, n) for c, n, _u in columns if c in leaderboards.RANK_BY[board.kind]],
        "columns": columns,
        "rows": [_row(e, columns) for e in board.top],
        "figure": _figure(board, columns),
        "rest": _row(board.rest, columns) if board.rest else None,
        "total": _row(board.total, columns),
        "is_staff": request.membership.role == Role.STAFF,
        "query": request.GET.urlencode(),
    }
    return render(request, "analytics/leaderboards.html", context)


@console_view()
def leaderboards_csv(request: HttpRequest) -> HttpResponse:
    """The board as shown (top N, the rest, the total), UTF-8 with BOM for Excel; a missing
    ratio is an empty cell."""
    req, board = _build(request)
    columns = leaderboards.columns_for(board.kind)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="leaderboard-{board.kind}-{req.start}-{req.end}.csv"'
    )
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow([_("名次"), _("名称"), *[str(n) for _c, n, _u in columns]])
    entries = [*board.top, *([board.rest] if board.rest else []), board.total]
    for e in entries:
        values = [e.figure(code).value for code, _n, _u in columns]
        writer.writerow(
            [
                "" if e.rank is None else e.rank,
                e.label,
                *[
                    "" if v is None else (round(v, 4) if isinstance(v, float) else v)
                    for v in values
                ],
            ]
        )
    return response
