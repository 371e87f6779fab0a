"""Scheduled refreshes: the worker's ``segments_refresh_due`` refreshes exactly the dynamic
segments whose time has passed, in every workspace, and sets their next time."""

from datetime import timedelta

import pytest

from siyu.audiences import services
from siyu.audiences.models import Segment, SegmentRefresh
from tests.audiences.conftest import NOW

pytestmark = pytest.mark.django_db

CITY_SH = {"field": "contact.city", "op": "eq", "value": "上海"}


def _segment(ws, name, *, refresh_every, due_at, kind="dynamic"):
    segment = services.segment_save(
        workspace=ws,
        name=name,
        rule=CITY_SH,
        kind=kind,
        refresh_every=refresh_every,
        now=NOW - timedelta(days=3),
    )
    Segment.objects.filter(id=segment.id).update(next_refresh_at=due_at)
    return segment


def test_only_due_dynamic_segments_are_refreshed_and_rescheduled(pool, other_ws):
    daily = _segment(pool.ws, "每天", refresh_every="daily", due_at=NOW - timedelta(minutes=1))
    hourly = _segment(pool.ws, "每小时", refresh_every="hourly", due_at=NOW)
    later = _segment(pool.ws, "稍后", refresh_every="hourly", due_at=NOW + timedelta(minutes=1))
    manual = _segment(pool.ws, "手动", refresh_every="manual", due_at=None)
    static = _segment(pool.ws, "静态", refresh_every="manual", due_at=None, kind="static")
    theirs = _segment(other_ws, "别家", refresh_every="daily", due_at=NOW - timedelta(hours=5))

    refreshed = services.segments_refresh_due(now=NOW)

    assert refreshed == 3
    for segment in (daily, hourly, later, manual, static, theirs):
        segment.refresh_from_db()
    assert (daily.refreshed_at, daily.next_refresh_at) == (NOW, NOW + timedelta(days=1))
    assert (hourly.refreshed_at, hourly.next_refresh_at) == (NOW, NOW + timedelta(hours=1))
    assert (theirs.refreshed_at, theirs.next_refresh_at) == (NOW, NOW + timedelta(days=1))
    assert (theirs.size, daily.size) == (1, 2)  # their own Shanghai contact
    assert later.refreshed_at == NOW - timedelta(days=3)
    assert later.next_refresh_at == NOW + timedelta(minutes=1)
    assert manual.refreshed_at == NOW - timedelta(days=3)
    assert manual.next_refresh_at is None
    assert static.next_refresh_at is None
    assert SegmentRefresh.objects.filter(started_at=NOW).count() == 3
    assert services.segments_refresh_due(now=NOW) == 0


def test_a_failing_segment_is_rescheduled_too(pool):
    segment = services.segment_save(
        workspace=pool.ws,
        name="VIP",
        rule={"tag": pool.vip.id},
        refresh_every="hourly",
        now=NOW - timedelta(hours=2),
    )
    tag_id = pool.vip.id
    services.tag_delete(workspace=pool.ws, tag=pool.vip)

    assert services.segments_refresh_due(now=NOW) == 1

    segment.refresh_from_db()
    assert segment.status == "failed"
    assert segment.last_error == f"rule.tag: tag {tag_id} does not exist in this workspace"
    assert segment.next_refresh_at == NOW + timedelta(hours=1)
    assert segment.size == 1
