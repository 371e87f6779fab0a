"""The clock side of the guardrails: quiet hours and the cap windows, in the workspace's zone.

Local times are built with ``zoneinfo`` from a local date and wall-clock time, so 08:00 stays
08:00 on the day a DST change moves the UTC offset."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEK_DAYS = 7


def _at(day, wall: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, wall, tzinfo=zone)


def quiet_until(now: datetime, *, start: time, end: time, zone: ZoneInfo) -> datetime | None:
    """When the quiet hours around ``now`` end, or None when ``now`` is outside them. A window
    may cross midnight (21:00–08:00) or not (12:00–14:00); start == end means no quiet hours."""
    if start == end:
        return None
    local = now.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= wall < end
        end_day = local.date()
    else:
        inside = wall >= start or wall < end
        end_day = local.date() + timedelta(days=1) if wall >= start else local.date()
    return _at(end_day, end, zone) if inside else None


def day_window(at: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The local calendar day holding ``at``: [midnight, next midnight)."""
    day = at.astimezone(zone).date()
    return _at(day, time(0), zone), _at(day + timedelta(days=1), time(0), zone)


def week_window(at: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The last seven local days ending with the day holding ``at``: a rolling week, so a cap
    never resets all at once on a Monday."""
    day = at.astimezone(zone).date()
    return _at(day - timedelta(days=WEEK_DAYS - 1), time(0), zone), _at(
        day + timedelta(days=1), time(0), zone
    )
