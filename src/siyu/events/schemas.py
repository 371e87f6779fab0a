from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from siyu.contacts.schemas import IdentityIn
from siyu.events.models import EventType
from siyu.schemas import AwareDatetime, StrictModel


class EventIn(StrictModel):
    event_id: str = Field(min_length=1, max_length=64)
    type: EventType
    name: str = Field(default="", max_length=64)
    contact: IdentityIn | None = None
    contact_id: int | None = None
    channel: str = Field(default="", max_length=32)
    occurred_at: AwareDatetime
    duration_seconds: int | None = Field(default=None, ge=0, le=86400)
    properties: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> EventIn:
        if self.contact is None and self.contact_id is None:
            raise ValueError("an event needs a contact (identity) or contact_id")
        if self.type == EventType.CUSTOM and not self.name:
            raise ValueError("custom events need a name")
        return self
