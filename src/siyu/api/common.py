"""Pieces every router shares: the batch body type with its size limit, the batch answer, and
times shown in the workspace's zone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from django.conf import settings
from ninja import Schema
from pydantic import BeforeValidator, Field

from siyu.ingest import BatchResult
from siyu.tenancy.models import Workspace


def api_actor(request: Any) -> Any:
    """The API key a request came with, as the ``actor`` of the services it calls (so the audit
    log says which key made a change); None where no key authenticated it (tests' clients)."""
    return getattr(request, "api_key", None)


def _within_batch_limit(value: Any) -> Any:
    # Checked before the items are validated, so an oversized batch costs no per-item work.
    limit = settings.SIYU_API_MAX_BATCH
    if isinstance(value, list) and len(value) > limit:
        raise ValueError(f"a batch carries at most {limit} items; this one has {len(value)}")
    return value


def batch_of(item: type) -> Any:
    """A JSON array body of ``item``, at most SIYU_API_MAX_BATCH long."""
    return Annotated[
        list[item],  # type: ignore[valid-type]
        BeforeValidator(_within_batch_limit),
        Field(json_schema_extra={"maxItems": settings.SIYU_API_MAX_BATCH}),
    ]


class BatchOut(Schema):
    """Counts for a batch write; re-sending a batch answers with everything unchanged."""

    created: int
    updated: int
    unchanged: int

    @staticmethod
    def of(result: BatchResult) -> dict[str, int]:
        return {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}


class ErrorItem(Schema):
    path: str
    message: str


class ErrorOut(Schema):
    code: str
    detail: str
    path: str | None = None
    errors: list[ErrorItem] | None = None


def local_time(value: datetime | None, workspace: Workspace) -> datetime | None:
    """Times are stored in UTC and given back in the workspace's zone, with the offset."""
    return value.astimezone(ZoneInfo(workspace.time_zone)) if value is not None else None
