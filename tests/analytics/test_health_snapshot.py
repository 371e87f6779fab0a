"""Health snapshots: the 15-minute rollups job stores the health counts and the all-time repeat
purchasers, and the metrics page, the health API and the home dashboard read them instead of
counting over the raw tables; a period without a usable snapshot is still counted on the spot.

The hand-made brand (handmade.py) with "now" at 2026-03-02 12:00 Shanghai: the 7-day period ends
today (02-24..03-02), the one before it is 02-17..02-23."""

from datetime import date, timedelta

import pytest

from siyu.analytics import health, queries, services, tasks
from siyu.analytics.models import HealthSnapshot
from siyu.commerce.models import Staff
from tests import factories
from tests.analytics import handmade

pytestmark = pytest.mark.django_db

NOW = handmade.local(3, 2, 12)
TODAY = date(2026, 3, 2)
WEEK = (TODAY - timedelta(days=6), TODAY)


@pytest.fixture
def brand(ws):
    return handmade.build(ws)


def week_health(ws, now=NOW, store_id=None):
    return health.workspace_health(
        workspace=ws, start=WEEK[0], end=WEEK[1], now=now, store_id=store_id
    )


def scores(h):
    return (h.score, h.previous_score, [(s.raw, s.score, s.previous_score) for s in h.subscores])


def test_the_job_snapshots_each_preset_and_the_period_before_it(brand):
    written = services.health_snapshot_refresh(workspace=brand.ws, now=NOW)
    assert sorted((s.days, s.day) for s in written) == sorted(
        (days, end)
        for days in health.SNAPSHOT_PERIODS
        for end in (TODAY, TODAY - timedelta(days=days))
    )
    week = HealthSnapshot.objects.get(workspace=brand.ws, day=TODAY, days=7)
    assert week.counts == health.raw_counts(workspace=brand.ws, start=WEEK[0], end=WEEK[1])
    # c1 and c3 have two orders each, c2 one — all of them in the week (o0 is on 02-25).
    assert (week.pool_size, week.purchasers_ever, week.repeaters_ever) == (3, 3, 2)
    assert (week.period_purchasers, week.period_repeaters) == (3, 2)
    # A second run keeps the final snapshot of the period before and refreshes today's only.
    again = services.health_snapshot_refresh(workspace=brand.ws, now=NOW + timedelta(minutes=15))
    assert {(s.days, s.day) for s in again} == {(d, TODAY) for d in health.SNAPSHOT_PERIODS}


def test_the_page_figures_come_from_the_snapshot_with_the_same_scores_and_trend(brand):
    live = week_health(brand.ws)
    assert live.as_of is None
    services.health_snapshot_refresh(workspace=brand.ws, now=NOW)
    read = week_health(brand.ws, now=NOW + timedelta(minutes=10))
    assert read.as_of == NOW
    assert scores(read) == scores(live)
    assert read.trend == live.trend


def test_new_activity_shows_after_the_next_run_and_a_stale_snapshot_is_not_used(brand):
    services.health_snapshot_refresh(workspace=brand.ws, now=NOW)
    before = week_health(brand.ws, now=NOW + timedelta(minutes=5))
    handmade.contact(brand.ws, "c4", brand.a, "wecom", handmade.local(3, 2, 11, 30))
    # Within the snapshot's 15-minute cycle the page shows the snapshot, as of its time.
    assert scores(week_health(brand.ws, now=NOW + timedelta(minutes=5))) == scores(before)
    # The next run sees the new contact (pool growth goes up).
    services.health_snapshot_refresh(workspace=brand.ws, now=NOW + timedelta(minutes=15))
    after = week_health(brand.ws, now=NOW + timedelta(minutes=20))
    assert after.subscores[0].raw > before.subscores[0].raw
    # A snapshot older than 30 minutes of a period still running is ignored: counted live.
    late = week_health(brand.ws, now=NOW + timedelta(hours=2))
    assert late.as_of is None
    assert scores(late) == scores(after)


def test_a_custom_period_or_a_store_view_is_counted_live(brand):
    services.health_snapshot_refresh(workspace=brand.ws, now=NOW)
    custom = health.workspace_health(workspace=brand.ws, start=date(2026, 3, 1), end=TODAY, now=NOW)
    assert custom.as_of is None and custom.score == 78.0  # test_health.py's worked example
    assert week_health(brand.ws, store_id=brand.a.id).as_of is None


def test_another_workspace_never_reads_these_snapshots(brand, other_ws):
    services.health_snapshot_refresh(workspace=brand.ws, now=NOW)
    assert week_health(other_ws).as_of is None
    assert week_health(other_ws).score is None  # an empty workspace: nothing to score
    board = queries.home_dashboard(workspace=other_ws, today=TODAY, now=NOW)
    assert (board.snapshot_at, board.pool_size, board.purchasers) == (None, 0, 0)


def test_home_dashboard_distinct_counts_read_the_snapshot(brand):
    live = queries.home_dashboard(workspace=brand.ws, today=TODAY, now=NOW)
    services.health_snapshot_refresh(workspace=brand.ws, now=NOW)
    board = queries.home_dashboard(workspace=brand.ws, today=TODAY, now=NOW)
    assert board.snapshot_at == NOW and live.snapshot_at is None
    assert (board.pool_size, board.purchasers, board.repeaters) == (3, 3, 2)
    assert (board.current, board.previous) == (live.current, live.previous)
    # 02-01..03-02: c3 (o0, o2), c1 (o1, o3), c2 (o4) bought; c1 and c3 twice.
    assert (board.current.purchasers, board.current.repeat_purchasers) == (3, 2)
    factories.order(brand.ws, brand.c2, "10.00", handmade.local(3, 2, 11, 50))
    # Fresh snapshot: c2's second order is not in the distinct counts yet (orders are live).
    board = queries.home_dashboard(workspace=brand.ws, today=TODAY, now=NOW)
    assert (board.repeaters, board.current.repeat_purchasers, board.current.orders) == (2, 2, 6)
    # Stale (or missing): counted over the orders.
    later = queries.home_dashboard(workspace=brand.ws, today=TODAY, now=NOW + timedelta(hours=1))
    assert later.snapshot_at is None
    assert (later.repeaters, later.current.repeat_purchasers) == (3, 3)


def test_staff_home_dashboard_is_their_store_counted_live(brand):
    services.health_snapshot_refresh(workspace=brand.ws, now=NOW)
    user = factories.member(brand.ws, "staff")
    Staff.objects.create(workspace=brand.ws, code="E1", name="导购", store=brand.b, user=user)
    membership = user.memberships.get(workspace=brand.ws)
    board = queries.home_dashboard(workspace=brand.ws, membership=membership, today=TODAY, now=NOW)
    assert board.snapshot_at is None
    assert (board.pool_size, board.purchasers, board.repeaters) == (1, 1, 1)  # c3 only


def test_the_rollups_task_writes_the_snapshots(brand, other_ws):
    tasks.rollups_update_recent.call()
    assert HealthSnapshot.objects.filter(workspace=brand.ws).count() == 2 * len(
        health.SNAPSHOT_PERIODS
    )
    assert HealthSnapshot.objects.filter(workspace=other_ws).exists()


def test_the_metrics_page_says_when_the_snapshot_was_computed(client, brand):
    client.force_login(factories.member(brand.ws, "owner"))
    services.health_snapshot_refresh(workspace=brand.ws)
    html = client.get("/analytics/metrics/?days=30").content.decode()
    assert 'data-testid="health-as-of"' in html
    html = client.get("/analytics/metrics/?start=2026-03-01&end=2026-03-02").content.decode()
    assert 'data-testid="health-as-of"' not in html


def test_health_api_says_when_the_snapshot_was_computed(api, brand):
    today = queries.workspace_today(brand.ws)
    start = today - timedelta(days=6)
    url = f"/api/v1/health?start={start}&end={today}"
    live = api.get(url).json()
    assert live["as_of"] is None
    services.health_snapshot_refresh(workspace=brand.ws)
    body = api.get(url).json()
    assert body["as_of"] is not None
    assert (body["score"], body["subscores"]) == (live["score"], live["subscores"])
