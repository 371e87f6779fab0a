"""Journeys over the API: create and edit (JSON in, the same definition the console builds),
publish / pause / stop, launch a manual journey, dry-run, and read the measurement.

Register with ``api.add_router("/v1/", router, tags=["journeys"])``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status

from siyu.api.common import ErrorOut, api_actor
from siyu.audiences import queries as audiences_queries
from siyu.journeys import queries, services
from siyu.journeys.models import Journey

router = Router()


class JourneyIn(Schema):
    name: str
    description: str = ""
    definition: dict[str, Any]


class JourneyUpdateIn(Schema):
    name: str | None = None
    description: str | None = None
    definition: dict[str, Any]


class JourneyOut(Schema):
    id: int
    name: str
    description: str
    status: str
    version: int
    definition: dict[str, Any]
    next_fire_at: datetime | None
    last_error: str


class LaunchIn(Schema):
    segment_id: int | None = None


class LaunchOut(Schema):
    run_id: int
    enrolled: int


class DryRunIn(Schema):
    definition: dict[str, Any]


def _out(journey: Journey) -> dict:
    return {
        "id": journey.id,
        "name": journey.name,
        "description": journey.description,
        "status": journey.status,
        "version": journey.current_version.number,
        "definition": journey.current_version.definition,
        "next_fire_at": journey.next_fire_at,
        "last_error": journey.last_error,
    }


def _dry(result: queries.DryRun) -> dict:
    return {
        "audience": result.audience,
        "audience_note": result.audience_note,
        "holdout": result.holdout,
        "steps": [vars(s) for s in result.steps],
        "sample": [vars(c) for c in result.sample],
    }


@router.get("/journeys", response=list[JourneyOut])
def journeys_list(request: HttpRequest):
    return [_out(j) for j in queries.journeys_list(workspace=request.workspace)]


@router.post("/journeys", response={201: JourneyOut, 422: ErrorOut})
def journey_create(request: HttpRequest, payload: JourneyIn):
    """A draft: nothing runs until it is published. The definition is checked whole; a
    mistake is a 422 whose ``path`` names its place (``definition.steps.2.rule.all.0``)."""
    journey = services.journey_create(
        workspace=request.workspace,
        name=payload.name,
        description=payload.description,
        definition=payload.definition,
        actor=api_actor(request),
    )
    return Status(201, _out(journey))


@router.post("/journeys/dry-run", response={200: dict, 422: ErrorOut})
def journey_dry_run(request: HttpRequest, payload: DryRunIn):
    """Who would enter now and what each would receive; nothing is written or sent."""
    return _dry(queries.journey_dry_run(workspace=request.workspace, definition=payload.definition))


@router.get("/journeys/{journey_id}", response={200: JourneyOut, 404: ErrorOut})
def journey_get(request: HttpRequest, journey_id: int):
    return _out(queries.journey_get(workspace=request.workspace, journey_id=journey_id))


@router.put("/journeys/{journey_id}", response={200: JourneyOut, 404: ErrorOut, 422: ErrorOut})
def journey_update(request: HttpRequest, journey_id: int, payload: JourneyUpdateIn):
    """Editing a published journey makes a new version; running enrollments keep theirs."""
    ws = request.workspace
    journey = services.journey_update(
        workspace=ws,
        journey=queries.journey_get(workspace=ws, journey_id=journey_id),
        definition=payload.definition,
        name=payload.name,
        description=payload.description,
        actor=api_actor(request),
    )
    return _out(journey)


def _action(request: HttpRequest, journey_id: int, action) -> dict:
    ws = request.workspace
    return _out(
        action(
            workspace=ws,
            journey=queries.journey_get(workspace=ws, journey_id=journey_id),
            actor=api_actor(request),
        )
    )


@router.post(
    "/journeys/{journey_id}/publish",
    response={200: JourneyOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
)
def journey_publish(request: HttpRequest, journey_id: int):
    return _action(request, journey_id, services.journey_publish)


@router.post(
    "/journeys/{journey_id}/pause", response={200: JourneyOut, 404: ErrorOut, 409: ErrorOut}
)
def journey_pause(request: HttpRequest, journey_id: int):
    return _action(request, journey_id, services.journey_pause)


@router.post("/journeys/{journey_id}/stop", response={200: JourneyOut, 404: ErrorOut})
def journey_stop(request: HttpRequest, journey_id: int):
    return _action(request, journey_id, services.journey_stop)


@router.post(
    "/journeys/{journey_id}/launch",
    response={200: LaunchOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
)
def journey_launch(request: HttpRequest, journey_id: int, payload: LaunchIn):
    """Enrolls the segment's members into a live manual journey (idempotent per the journey's
    re-entry rule: launching a "once" journey again enrolls only newcomers)."""
    ws = request.workspace
    segment = (
        audiences_queries.segment_get(workspace=ws, segment_id=payload.segment_id)
        if payload.segment_id is not None
        else None
    )
    run = services.journey_launch(
        workspace=ws,
        journey=queries.journey_get(workspace=ws, journey_id=journey_id),
        segment=segment,
        actor=api_actor(request),
    )
    return {"run_id": run.id, "enrolled": run.enrolled}


@router.get("/journeys/{journey_id}/stats", response={200: dict, 404: ErrorOut})
def journey_stats(request: HttpRequest, journey_id: int):
    """Entered, per step reached / sent / suppressed by reason / read / clicked, and conversion
    and revenue within the goal window against the holdout."""
    ws = request.workspace
    result = queries.journey_stats(
        workspace=ws, journey=queries.journey_get(workspace=ws, journey_id=journey_id)
    )

    def arm(a: queries.Arm | None) -> dict | None:
        if a is None:
            return None
        return {
            "name": a.name,
            "contacts": a.n,
            "converted": a.converted,
            "conversion": a.conversion,
            "revenue": str(a.revenue),
            "revenue_per_contact": str(a.revenue_per_contact)
            if a.revenue_per_contact is not None
            else None,
        }

    return {
        "window_days": result.window_days,
        "entered": result.entered,
        "statuses": result.statuses,
        "steps": [
            {
                "key": s.key,
                "type": s.type,
                "reached": s.reached,
                "sent": s.sent,
                "read": s.read,
                "clicked": s.clicked,
                "messages": s.messages,
                "suppressed": s.suppressed,
            }
            for s in result.steps
        ],
        "treated": arm(result.treated),
        "holdout": arm(result.holdout),
        "arms": [arm(a) for a in result.arms],
        "messages_sent": result.messages_sent,
        "cost": str(result.cost),
        "conversion_lift": (
            {
                "difference": result.lift.difference,
                "low": result.lift.interval.low,
                "high": result.lift.interval.high,
                "p_value": result.lift.p_value,
            }
            if result.lift
            else None
        ),
        "incremental_revenue": str(result.incremental_revenue)
        if result.incremental_revenue is not None
        else None,
        "roi": str(result.roi) if result.roi is not None else None,
        "roi_reason": result.roi_reason,
    }
