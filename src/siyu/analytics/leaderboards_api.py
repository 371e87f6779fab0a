"""Leaderboards over the API: ``GET /v1/leaderboards?kind=store|staff|koc&start=&end=`` with an
optional ``by`` (what to rank by) and ``top`` (N, default 20): the top N, the rest summarised,
and the total; a missing ratio carries its reason.

Register with ``api.add_router("/v1/", router, tags=["metrics"])``."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema

from siyu.analytics import leaderboards
from siyu.analytics.leaderboards import Entry
from siyu.errors import ValidationFailed

router = Router()


class BoardIn(Schema):
    kind: Literal["store", "staff", "koc"]
    start: date
    end: date
    by: str | None = None
    top: int = leaderboards.DEFAULT_TOP


class FigureOut(Schema):
    value: Any
    reason: str | None
    why: str


class EntryOut(Schema):
    rank: int | None
    key: int | None
    label: str
    figures: dict[str, FigureOut]


class BoardOut(Schema):
    kind: str
    by: str
    start: date
    end: date
    entities: int
    top: list[EntryOut]
    rest: EntryOut | None
    total: EntryOut


def _entry(e: Entry) -> dict[str, Any]:
    figures = {}
    for code, f in e.figures.items():
        value = f.value
        if value is not None and not isinstance(value, int | float):
            value = str(value)  # money as a decimal string
        figures[code] = {"value": value, "reason": f.reason, "why": leaderboards.why(f)}
    return {"rank": e.rank, "key": e.key, "label": e.label, "figures": figures}


@router.get("/leaderboards", response=BoardOut)
def leaderboards_get(request: HttpRequest, q: Query[BoardIn]) -> dict[str, Any]:
    """Stores or staff ranked by pool growth, conversion, repurchase, revenue or 私域价值; KOCs
    by referrals or the revenue of those they referred."""
    if q.end < q.start:
        raise ValidationFailed("invalid_period", "end is before start", path="end")
    if (q.end - q.start).days > 730:
        raise ValidationFailed("invalid_period", "at most 731 days", path="end")
    if q.by is not None and q.by not in leaderboards.RANK_BY[q.kind]:
        allowed = ", ".join(leaderboards.RANK_BY[q.kind])
        raise ValidationFailed("invalid_rank", f"rank {q.kind} by one of: {allowed}", path="by")
    if not 1 <= q.top <= leaderboards.MAX_TOP:
        raise ValidationFailed("invalid_top", f"top is 1..{leaderboards.MAX_TOP}", path="top")
    board = leaderboards.leaderboard(
        workspace=request.workspace, kind=q.kind, start=q.start, end=q.end, by=q.by, top=q.top
    )
    return {
        "kind": board.kind,
        "by": board.by,
        "start": board.start,
        "end": board.end,
        "entities": board.entities,
        "top": [_entry(e) for e in board.top],
        "rest": _entry(board.rest) if board.rest else None,
        "total": _entry(board.total),
    }
