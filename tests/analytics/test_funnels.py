"""Ordered funnels on hand-made events and orders, with the counts worked out by hand: out-of-order
steps, the window boundary, breakdown top N + other, drop-offs saved as a segment, validation,
staff scoping and DuckDB parity."""

from datetime import UTC, date, datetime

import pytest

from siyu.analytics import funnels
from siyu.analytics.explore import OTHER, Scope
from siyu.analytics.tables import duckdb_fetch, fetch, parquet_export
from siyu.audiences.models import SegmentKind, SegmentMember
from siyu.audiences.services import segment_create_from_expression
from siyu.commerce.models import Order
from siyu.contacts.models import Contact
from siyu.errors import ValidationFailed
from siyu.events.models import Event
from tests import factories

pytestmark = pytest.mark.django_db

STEPS = ["page_view", "add_to_cart", "order"]


def at(day: int, hour: int = 10, minute: int = 0, second: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def people(ws, other_ws) -> dict[str, Contact]:
    """A: pv → cart → order (1 day each). B: pv → order, no cart. C: cart BEFORE pv (out of
    order). D: pv 3/10, cart 3/12, order 3/17 10:00:01 — one second past the 7-day window.
    E: pv 3/10, cart 3/11, order 3/17 10:00:00 — exactly on the boundary. F: pv before the
    period only. Another workspace's contact does the whole funnel."""
    store = factories.store(ws)
    c = {
        "A": factories.plain_contact(ws, name="A", source_channel="douyin", store=store),
        "B": factories.plain_contact(ws, name="B", source_channel="douyin"),
        "C": factories.plain_contact(ws, name="C", source_channel="wecom", store=store),
        "D": factories.plain_contact(ws, name="D", source_channel="wecom"),
        "E": factories.plain_contact(ws, name="E", source_channel="ads"),
        "F": factories.plain_contact(ws, name="F", source_channel="ads"),
    }
    ev, od = factories.event, factories.order
    ev(ws, c["A"], "page_view", at(5))
    ev(ws, c["A"], "add_to_cart", at(6))
    od(ws, c["A"], "100.00", at(7))
    ev(ws, c["B"], "page_view", at(5))
    od(ws, c["B"], "50.00", at(6))
    ev(ws, c["C"], "add_to_cart", at(4))
    ev(ws, c["C"], "page_view", at(5))
    ev(ws, c["D"], "page_view", at(10))
    ev(ws, c["D"], "add_to_cart", at(12))
    od(ws, c["D"], "30.00", at(17, second=1))
    ev(ws, c["E"], "page_view", at(10))
    ev(ws, c["E"], "add_to_cart", at(11))
    od(ws, c["E"], "20.00", at(17))
    ev(ws, c["F"], "page_view", at(20, month=2))
    x = factories.plain_contact(other_ws, name="X")
    ev(other_ws, x, "page_view", at(5))
    ev(other_ws, x, "add_to_cart", at(6))
    od(other_ws, x, "10.00", at(7))
    return c


def spec(ws, steps=STEPS, **kw) -> funnels.FunnelSpec:
    kw.setdefault("window_days", 7)
    kw.setdefault("start", date(2026, 3, 1))
    kw.setdefault("end", date(2026, 3, 31))
    return funnels.funnel_spec(scope=kw.pop("scope", Scope(ws)), steps=steps, **kw)


def test_counts_conversion_and_medians_follow_the_worked_example(ws, people):
    result = funnels.funnel(spec(ws))
    assert [s.reached for s in result.steps] == [5, 3, 2]  # ABCDE, ADE, AE
    assert [s.dropped for s in result.steps] == [0, 2, 1]
    assert result.steps[1].from_previous == pytest.approx(0.6)
    assert result.steps[2].from_previous == pytest.approx(2 / 3)
    assert result.steps[2].from_first == pytest.approx(0.4)
    # pv→cart: A 1d, D 2d, E 1d → 1 day; cart→order: A 1d, E 6d → (1+6)/2 days.
    assert result.steps[1].median_seconds == 86_400
    assert result.steps[2].median_seconds == 3.5 * 86_400
    assert result.message == ""


def test_a_step_repeated_needs_a_second_occurrence(ws, people):
    result = funnels.funnel(spec(ws, steps=["page_view", "page_view"]))
    assert [s.reached for s in result.steps] == [5, 0]


def test_a_wider_window_takes_in_the_late_order(ws, people):
    result = funnels.funnel(spec(ws, window_days=8))
    assert [s.reached for s in result.steps] == [5, 3, 3]


def test_the_longest_funnel_runs_as_one_flat_statement(ws, people):
    # 8 steps: each step's table is a CTE used by the next one and by the final pivot, so the
    # SQL does not nest deeper with every step (SQLite's parser has a depth limit).
    result = funnels.funnel(spec(ws, steps=STEPS + ["page_view"] * 5, breakdown="store"))
    assert [s.reached for s in result.steps] == [5, 3, 2, 0, 0, 0, 0, 0]
    assert sum(r.counts[0] for r in result.breakdown) == 5


def test_event_property_filters_narrow_a_step(ws, people):
    factories.event(ws, people["B"], "add_to_cart", at(5, 11), properties={"sku": "X1"})
    both = funnels.funnel(spec(ws, steps=["page_view", {"event": "add_to_cart"}]))
    only_x1 = funnels.funnel(
        spec(ws, steps=["page_view", {"event": "add_to_cart", "properties": {"sku": "X1"}}])
    )
    assert [s.reached for s in both.steps] == [5, 4]
    assert [s.reached for s in only_x1.steps] == [5, 1]


def test_breakdown_keeps_the_top_values_and_folds_the_rest_into_other(ws, people):
    result = funnels.funnel(spec(ws, breakdown="source_channel", top=1))
    rows = {(r.value, r.label): r.counts for r in result.breakdown}
    # douyin (A, B) and wecom (C, D) tie on 2 entrants; the tie goes to the smaller value.
    assert rows == {("douyin", "抖音"): [2, 1, 1], (OTHER, "其他"): [3, 2, 1]}
    assert sum(r.counts[0] for r in result.breakdown) == result.steps[0].reached


def test_dropoffs_are_saved_as_a_static_segment(ws, people):
    s = spec(ws)
    assert sorted(r[0] for r in fetch(funnels.dropoff_expression(s, 2))) == sorted(
        [people["B"].id, people["C"].id]
    )
    segment = segment_create_from_expression(
        workspace=ws,
        name="加购流失",
        contact_ids=funnels.dropoff_expression(s, 3),
        source={"analysis": "funnel", "step": 3},
    )
    assert segment.kind == SegmentKind.STATIC
    assert segment.size == 1
    assert list(
        SegmentMember.objects.filter(segment=segment).values_list("contact_id", flat=True)
    ) == [people["D"].id]


def test_staff_see_only_their_store(ws, people):
    store_id = people["A"].store_id
    result = funnels.funnel(spec(ws, scope=Scope(ws, store_id)))
    assert [s.reached for s in result.steps] == [2, 1, 1]  # A and C


def test_empty_period_gives_zeroes_and_a_message(ws, people):
    result = funnels.funnel(spec(ws, start=date(2025, 1, 1), end=date(2025, 1, 31)))
    assert [s.reached for s in result.steps] == [0, 0, 0]
    assert [s.from_previous for s in result.steps] == [None, None, None]
    assert result.message == "所选时间段内没有客户完成第一步。"


@pytest.mark.parametrize(
    ("kw", "path", "message"),
    [
        ({"steps": ["page_view"]}, "steps", "漏斗需要 2 到 8 个步骤。"),
        ({"steps": ["page_view"] * 9}, "steps", "漏斗需要 2 到 8 个步骤。"),
        ({"window_days": 0}, "window_days", "转化窗口须为 1 到 365 天。"),
        ({"start": date(2026, 4, 1)}, "start", "开始日期不能晚于结束日期。"),
        ({"steps": ["page_view", "teleport"]}, "steps.1.event", "未知的事件类型“teleport”"),
        ({"breakdown": "zodiac"}, "breakdown", "未知的拆分维度"),
        ({"top": 0}, "top", "Top N 须在 1 到 50 之间。"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(ws, kw, path, message):
    with pytest.raises(ValidationFailed) as exc:
        spec(ws, **kw)
    assert exc.value.path == path
    assert exc.value.message.startswith(message)


def test_the_same_expressions_run_on_duckdb(ws, people, tmp_path):
    parquet_export(models_=[Contact, Event, Order], directory=tmp_path, workspace_id=ws.id)
    s = spec(ws, breakdown="source_channel", top=2)
    for expr in (funnels.counts_expression(s), funnels.medians_expression(s)):
        assert sorted(duckdb_fetch(expr, tmp_path)) == sorted(
            tuple(float(v) if isinstance(v, float) else v for v in row) for row in fetch(expr)
        )
