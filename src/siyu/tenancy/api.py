"""Who am I: the workspace an API key belongs to, so an integration can check its setup."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

router = Router()


class WorkspaceOut(Schema):
    slug: str
    name: str
    time_zone: str
    currency: str


@router.get("/workspace", response=WorkspaceOut, summary="The API key's workspace")
def workspace_get(request: HttpRequest) -> dict:
    ws = request.workspace
    return {"slug": ws.slug, "name": ws.name, "time_zone": ws.time_zone, "currency": ws.currency}
