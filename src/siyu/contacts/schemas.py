"""Input shapes for contacts and the identity references other apps use to point at a contact."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import Field, field_validator

from siyu.contacts.models import ConsentChannel, ConsentStatus, IdentityKind, SourceChannel
from siyu.schemas import AwareDatetime, Code, StrictModel


class IdentityIn(StrictModel):
    kind: IdentityKind
    value: str = Field(min_length=1, max_length=200)
    app_id: str = Field(default="", max_length=64)


class FirstTouchIn(StrictModel):
    campaign: str = Field(default="", max_length=100)
    state: str = Field(default="", max_length=100, description="channel QR code state")
    store_code: Code | None = None
    staff_code: Code | None = None


class ContactIn(StrictModel):
    identities: list[IdentityIn] = Field(min_length=1, max_length=50)
    name: str = Field(default="", max_length=100)
    nickname: str = Field(default="", max_length=100)
    gender: str = Field(default="", pattern="^(m|f|)$")
    birthday: date | None = None
    city: str = Field(default="", max_length=64)
    source_channel: SourceChannel | None = None
    first_touch: FirstTouchIn | None = None
    store_code: Code | None = None
    owner_staff_code: Code | None = None
    referred_by: IdentityIn | None = None
    first_seen_at: AwareDatetime | None = None
    consent: dict[ConsentChannel, ConsentStatus] = Field(default_factory=dict)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("birthday")
    @classmethod
    def _birthday_in_past(cls, value: date | None) -> date | None:
        if value is not None and (value.year < 1900 or value > date.today()):  # noqa: DTZ011
            raise ValueError("birthday must be between 1900 and today")
        return value
