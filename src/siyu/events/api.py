"""Event ingestion over the API: a batch is resolved to contacts and deduplicated by event_id,
so re-sending it stores nothing twice."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Body, Router, Schema

from siyu.api.common import ErrorOut, batch_of
from siyu.events import services
from siyu.events.schemas import EventIn

router = Router()

EventBatch = batch_of(EventIn)


class EventsOut(Schema):
    created: int
    duplicates: int


@router.post(
    "/events",
    response={200: EventsOut, 422: ErrorOut},
    summary="Record behavioural events",
    description="Events whose event_id is already stored count as duplicates and change nothing. "
    "At most 1000 items.",
)
def events_ingest(request: HttpRequest, payload: Body[EventBatch]) -> dict:
    result = services.events_ingest(workspace=request.workspace, items=payload)
    return {"created": result.created, "duplicates": result.unchanged}
