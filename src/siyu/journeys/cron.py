"""Five-field cron expressions ("minute hour day-of-month month day-of-week") read in the
workspace's time zone, so "0 8 * * *" means 08:00 on the wall clock all year round.

Daylight saving, the documented policy:
- a wall-clock time skipped when clocks go forward (02:30 on a spring-forward night) fires at
  the same instant the skipped time would have been under the old offset — one hour later on the
  wall clock (03:30); it is never dropped;
- a wall-clock time that happens twice when clocks go back (01:30 on a fall-back night) fires
  once, at its first occurrence.

An expression that never fires (30 February) is refused when it is read, with a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from siyu.errors import ValidationFailed

_FIELDS = (
    # name, low, high
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),  # 0 and 7 are Sunday
)
_ALIASES = {
    "@daily": "0 0 * * *",
    "@hourly": "0 * * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
}
#: How far ahead a next firing is searched for: eight years covers every 29 February.
_HORIZON_DAYS = 366 * 8


def _fail(expression: str, why: str, path: str) -> ValidationFailed:
    return ValidationFailed("bad_cron", f"Cron {expression!r}: {why}.", path=path)


def _field(text: str, name: str, low: int, high: int, expression: str, path: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise _fail(
                    expression, f"the {name} step {step_text!r} is not a whole number ≥ 1", path
                )
            step = int(step_text)
        if body == "*":
            start, end = low, high
        else:
            first, dash, last = body.partition("-")
            if not first.isdigit() or (dash and not last.isdigit()):
                raise _fail(
                    expression, f"the {name} field {part!r} is not a number, range or *", path
                )
            start = int(first)
            end = int(last) if dash else (high if step_text else start)
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise _fail(expression, f"the {name} {part!r} is outside {low}–{high}", path)
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Monday … 6 = Sunday (Python's numbering)
    any_day: bool
    any_weekday: bool

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_day = day.day in self.days
        by_weekday = day.weekday() in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return by_weekday
        if self.any_weekday:
            return by_day
        return by_day or by_weekday  # classic cron: either restricted field matches

    def next_after(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """The first firing strictly after ``moment``, as an aware datetime in ``zone``."""
        local = moment.astimezone(zone)
        times = sorted(time(h, m) for h in self.hours for m in self.minutes)
        day = local.date()
        for _ in range(_HORIZON_DAYS):
            if self._day_matches(day):
                for wall in times:
                    # a skipped wall time keeps its instant under the old offset; the round
                    # trip through UTC shows it as the wall time it really is (03:30, not 02:30)
                    candidate = (
                        datetime.combine(day, wall, tzinfo=zone).astimezone(UTC).astimezone(zone)
                    )
                    if candidate > moment:
                        return candidate
            day += timedelta(days=1)
        raise _fail(self.expression, "it never fires", "cron")

    def fires_between(self, start: datetime, end: datetime, zone: ZoneInfo) -> datetime | None:
        """The latest firing in (start, end], or None."""
        latest = None
        at = self.next_after(start, zone)
        while at <= end:
            latest = at
            at = self.next_after(at, zone)
        return latest


def parse(expression: str, *, path: str = "cron") -> Cron:
    """Reads ``expression`` or raises ValidationFailed naming the field that is wrong; an
    expression that can never fire (30 February) is refused too."""
    text = _ALIASES.get(expression.strip(), expression.strip())
    parts = text.split()
    if len(parts) != len(_FIELDS):
        raise _fail(
            expression, "expected 5 fields: minute hour day-of-month month day-of-week", path
        )
    sets = [
        _field(part, name, low, high, expression, path)
        for part, (name, low, high) in zip(parts, _FIELDS, strict=True)
    ]
    weekdays = frozenset((d - 1) % 7 for d in sets[4])  # cron 0/7 = Sunday → Python 6
    cron = Cron(
        expression=text,
        minutes=sets[0],
        hours=sets[1],
        days=sets[2],
        months=sets[3],
        weekdays=weekdays,
        any_day=parts[2] == "*",
        any_weekday=parts[4] == "*",
    )
    if not any(
        cron._day_matches(date(2024, 1, 1) + timedelta(days=n)) for n in range(_HORIZON_DAYS)
    ):
        raise _fail(expression, "it never fires (no day matches)", path)
    return cron
