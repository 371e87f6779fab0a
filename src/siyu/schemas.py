"""Validation shared by the API and the importers, so a row is judged the same way wherever it
comes from. Unknown fields are errors, not silently dropped."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Code = Annotated[str, Field(min_length=1, max_length=64)]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp needs a time zone offset, e.g. 2026-05-01T10:00:00+08:00")
    if value.year < 2000:
        raise ValueError("timestamp is before the year 2000")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
