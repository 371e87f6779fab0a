from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from siyu.errors import ValidationFailed
from siyu.journeys import cron

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def test_every_day_at_eight_is_eight_on_the_wall_clock_in_shanghai():
    at = cron.parse("0 8 * * *").next_after(datetime(2026, 3, 2, 1, 0, tzinfo=UTC), SHANGHAI)
    assert at == datetime(2026, 3, 3, 8, 0, tzinfo=SHANGHAI)  # 09:00 local has passed today's 08:00


def test_every_tuesday_at_ten():
    monday_noon = datetime(2026, 3, 2, 12, 0, tzinfo=SHANGHAI)
    assert cron.parse("0 10 * * 2").next_after(monday_noon, SHANGHAI) == datetime(
        2026, 3, 3, 10, 0, tzinfo=SHANGHAI
    )


def test_eight_oclock_stays_eight_oclock_across_a_dst_change_in_new_york():
    schedule = cron.parse("0 8 * * *")
    before = schedule.next_after(datetime(2026, 3, 7, 0, 0, tzinfo=NEW_YORK), NEW_YORK)
    after = schedule.next_after(datetime(2026, 3, 8, 9, 0, tzinfo=NEW_YORK), NEW_YORK)
    assert before.astimezone(UTC) == datetime(2026, 3, 7, 13, 0, tzinfo=UTC)  # EST, UTC-5
    assert after.astimezone(UTC) == datetime(2026, 3, 9, 12, 0, tzinfo=UTC)  # EDT, UTC-4


def test_a_time_skipped_by_spring_forward_fires_an_hour_later_not_never():
    at = cron.parse("30 2 * * *").next_after(datetime(2026, 3, 8, 0, 0, tzinfo=NEW_YORK), NEW_YORK)
    assert at.astimezone(UTC) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # = 03:30 EDT
    assert at.astimezone(NEW_YORK).hour == 3


def test_a_time_repeated_by_fall_back_fires_once():
    schedule = cron.parse("30 1 * * *")
    first = schedule.next_after(datetime(2026, 11, 1, 0, 0, tzinfo=NEW_YORK), NEW_YORK)
    assert first.astimezone(UTC) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert schedule.next_after(first, NEW_YORK).astimezone(UTC) == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


def test_lists_ranges_and_steps():
    schedule = cron.parse("*/15 9-10 * * 1-5")
    at = schedule.next_after(datetime(2026, 3, 6, 10, 50, tzinfo=SHANGHAI), SHANGHAI)  # a Friday
    assert at == datetime(2026, 3, 9, 9, 0, tzinfo=SHANGHAI)  # Monday


def test_the_latest_slot_in_a_gap():
    schedule = cron.parse("0 8 * * *")
    latest = schedule.fires_between(
        datetime(2026, 3, 1, 9, 0, tzinfo=SHANGHAI), datetime(2026, 3, 4, 9, 0, tzinfo=SHANGHAI), SHANGHAI
    )
    assert latest == datetime(2026, 3, 4, 8, 0, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 0 30 2 *", "it never fires"),
        ("61 * * * *", "the minute '61' is outside 0–59"),
        ("0 8 * *", "expected 5 fields"),
        ("0 8 * * mon", "the day of week field 'mon' is not a number"),
        ("*/0 * * * *", "step '0' is not a whole number"),
    ],
)
def test_bad_expressions_are_refused_with_a_reason(expression, message):
    with pytest.raises(ValidationFailed) as caught:
        cron.parse(expression)
    assert message in caught.value.message
