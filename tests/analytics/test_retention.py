"""Retention cohorts by first order, in the workspace's local months, with the matrix worked out
by hand; DuckDB parity; validation."""

from datetime import UTC, date, datetime

import pytest

from siyu.analytics import retention
from siyu.analytics.explore import Scope
from siyu.analytics.tables import duckdb_fetch, fetch, parquet_export
from siyu.commerce.models import Order
from siyu.contacts.models import Contact
from siyu.errors import ValidationFailed
from siyu.events.models import Event
from tests import factories

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 4, 15, tzinfo=UTC)


@pytest.fixture
def buyers(ws) -> dict[str, Contact]:
    """P: Jan 10, Jan 20, Mar 5. Q: Jan 15, Feb 3. R: Feb 10. S: first order in Dec, then Jan.
    T: Jan 31 17:00 UTC — Feb 1 in Shanghai — then Mar 1. U: a refunded order in Jan, then Feb 20.
    So Jan = {P, Q}, Feb = {R, T, U}, Mar = {}."""
    c = {k: factories.plain_contact(ws, name=k, source_channel="wecom") for k in "PQRSTU"}
    c["U"].source_channel = "douyin"
    c["U"].save()
    o = factories.order
    for key, day in [
        ("P", datetime(2026, 1, 10, 4, tzinfo=UTC)),
        ("P", datetime(2026, 1, 20, 4, tzinfo=UTC)),
        ("P", datetime(2026, 3, 5, 4, tzinfo=UTC)),
        ("Q", datetime(2026, 1, 15, 4, tzinfo=UTC)),
        ("Q", datetime(2026, 2, 3, 4, tzinfo=UTC)),
        ("R", datetime(2026, 2, 10, 4, tzinfo=UTC)),
        ("S", datetime(2025, 12, 10, 4, tzinfo=UTC)),
        ("S", datetime(2026, 1, 12, 4, tzinfo=UTC)),
        ("T", datetime(2026, 1, 31, 17, tzinfo=UTC)),
        ("T", datetime(2026, 3, 1, 4, tzinfo=UTC)),
        ("U", datetime(2026, 2, 20, 4, tzinfo=UTC)),
    ]:
        o(ws, c[key], "10.00", day)
    o(
        ws,
        c["U"],
        "10.00",
        datetime(2026, 1, 5, 4, tzinfo=UTC),
        status="refunded",
        refunded_amount="10.00",
    )
    return c


def spec(ws, **kw) -> retention.RetentionSpec:
    kw.setdefault("start", date(2026, 1, 1))
    kw.setdefault("end", date(2026, 3, 31))
    kw.setdefault("unit", "month")
    return retention.retention_spec(scope=Scope(ws), now=NOW, **kw)


def test_repurchase_matrix_follows_the_worked_example(ws, buyers):
    result = retention.retention(spec(ws))
    assert [(r.start, r.size) for r in result.rows] == [
        (date(2026, 1, 1), 2),
        (date(2026, 2, 1), 3),
        (date(2026, 3, 1), 0),
    ]
    assert result.rows[0].retained[:5] == [1, 1, 1, 0, None]  # P twice in Jan, Q Feb, P Mar
    assert result.rows[0].shares[:4] == [0.5, 0.5, 0.5, 0.0]
    assert result.rows[1].retained[:4] == [0, 1, 0, None]  # T in March
    assert result.rows[2].retained[:3] == [0, 0, None]
    assert result.rows[2].shares[:2] == [None, None]  # an empty cohort has no share, not NaN
    assert result.message == ""


def test_any_activity_counts_events_and_the_first_order(ws, buyers):
    factories.event(ws, buyers["R"], "page_view", datetime(2026, 3, 3, 4, tzinfo=UTC))
    result = retention.retention(spec(ws, metric="activity"))
    assert result.rows[0].retained[:3] == [2, 1, 1]
    assert result.rows[1].retained[:2] == [3, 2]  # R's page view and T's order in March


def test_channel_filter_and_first_touch_cohorts(ws, buyers):
    douyin = retention.retention(spec(ws, channel="douyin"))
    assert [r.size for r in douyin.rows] == [0, 1, 0]
    by_first_seen = retention.retention(spec(ws, cohort="first_seen"))
    # Every contact was first seen on 2026-01-01 (UTC; 08:00 in Shanghai): one January cohort
    # of six; any order in a period counts.
    assert [r.size for r in by_first_seen.rows] == [6, 0, 0]
    assert by_first_seen.rows[0].retained[:3] == [3, 4, 2]  # PQS; QRTU; PT


def test_weekly_cohorts_and_empty_period_message(ws, buyers):
    result = retention.retention(
        spec(ws, unit="week", start=date(2025, 6, 2), end=date(2025, 6, 8))
    )
    assert len(result.rows) == 1 and result.rows[0].size == 0
    assert result.message == "所选时间段内没有新的同期群客户。"


@pytest.mark.parametrize(
    ("kw", "path"),
    [
        ({"unit": "day"}, "unit"),
        ({"metric": "love"}, "metric"),
        ({"start": date(2026, 4, 1)}, "start"),
        ({"start": date(2024, 1, 1)}, "end"),
        ({"channel": "carrier_pigeon"}, "channel"),
    ],
)
def test_bad_input_is_refused(ws, kw, path):
    with pytest.raises(ValidationFailed) as exc:
        spec(ws, **kw)
    assert exc.value.path == path


def test_the_same_expressions_run_on_duckdb(ws, buyers, tmp_path):
    factories.event(ws, buyers["R"], "page_view", datetime(2026, 3, 3, 4, tzinfo=UTC))
    parquet_export(models_=[Contact, Event, Order], directory=tmp_path, workspace_id=ws.id)
    for metric in ("repurchase", "activity"):
        s = spec(ws, metric=metric)
        for expr in (retention.matrix_expression(s), retention.sizes_expression(s)):
            assert sorted(duckdb_fetch(expr, tmp_path)) == sorted(fetch(expr))
