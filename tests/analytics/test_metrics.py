"""The metrics tree and its decomposition on the hand-made brand (tests/analytics/handmade.py).

Period 03-01..03-02, totals worked by hand from the table in handmade.py:
new 2 (1 referred), UV 1+1+1 = 3, orders 4, first orders 2 (c1's o1, c2's o4), GMV 100+50+80+40
= 270, refunds 20 → revenue 250, cost 2 × 30 = 60, discount 10, opt-outs 1.
Spend: WeCom 310 for March → 2/31 of it = 20.00 in the period; Douyin 280 for February → 2/28 of
it = 20.00 in the previous period (02-27..02-28) and nothing in this one.
"""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from siyu.analytics import metrics, services
from siyu.analytics.metrics import Figure, Scope, Totals
from siyu.audiences.rules import compile_rule
from siyu.commerce.services import channel_spend_set
from tests.analytics import handmade

START, END = date(2026, 3, 1), date(2026, 3, 2)


@pytest.fixture
def brand(ws):
    b = handmade.build(ws)
    channel_spend_set(workspace=ws, channel="wecom", month=date(2026, 3, 1), amount="310.00")
    channel_spend_set(workspace=ws, channel="douyin", month=date(2026, 2, 1), amount="280.00")
    services.rollups_rebuild(workspace=ws, start=date(2026, 2, 20), end=END)
    return b


def values(figures: dict[str, Figure]) -> dict:
    return {k: f.value for k, f in figures.items()}


def test_every_formula_on_the_whole_workspace(brand):
    totals = metrics.period_totals(workspace=brand.ws, start=START, end=END, scope=Scope())
    got = values(metrics.evaluate(totals["all"]))
    assert got == {
        "profit": Decimal("170.00"),  # 250 − 60 − 20
        "revenue": Decimal("250.00"),
        "orders": 4,
        "uv": 3,
        "conversion": 4 / 3,
        "aov": Decimal("62.50"),  # 250 / 4
        "cost": Decimal("60.00"),
        "spend": Decimal("20.00"),
        "gmv": Decimal("270.00"),
        "aov_gmv": Decimal("67.50"),  # 270 / 4
        "user_value": Decimal("250.00"),  # 62.50 × (4 / 2) × (1 + 1 / (2 − 1))
        "frequency": 2.0,
        "referral_coef": 1.0,
        "repurchase": 0.5,  # (4 − 2) / 4
        "roi_seed": 13.5,  # (20 + 250) / 20, shown as 1350%
        "roi": 12.5,  # 250 / 20
        "cac": Decimal("10.00"),  # 20 / 2
        "new_contacts": 2,
        "referral_new_contacts": 1,
        "discount": Decimal("10.00"),
        "opt_outs": 1,
    }
    # The tree's identities hold exactly.
    assert got["uv"] * got["conversion"] == pytest.approx(got["orders"])
    assert got["orders"] * got["aov"] == got["revenue"]
    assert got["orders"] * got["aov_gmv"] == got["gmv"]


def test_cut_by_channel_spend_and_reasons(brand):
    by = metrics.period_totals(workspace=brand.ws, start=START, end=END, scope=Scope(cut="channel"))
    assert set(by) == {"wecom", "douyin"}
    wecom, douyin = metrics.evaluate(by["wecom"]), metrics.evaluate(by["douyin"])
    assert (wecom["revenue"].value, wecom["profit"].value, wecom["cac"].value) == (
        Decimal("200.00"),
        Decimal("120.00"),
        Decimal("10.00"),
    )  # 220 − 20; 200 − 60 − 20
    assert wecom["roi"].value == 10.0
    assert douyin["revenue"].value == Decimal("50.00")
    assert douyin["spend"] == Figure(None, "no_spend")
    assert douyin["profit"] == Figure(None, "no_spend")
    assert douyin["frequency"] == Figure(None, "no_first_orders")  # c3 bought first in February
    assert douyin["referral_coef"] == Figure(None, "no_organic_new")


def test_cut_by_store_has_no_spend(brand):
    by = metrics.period_totals(workspace=brand.ws, start=START, end=END, scope=Scope(cut="store"))
    assert {k: v.orders for k, v in by.items()} == {brand.a.id: 3, brand.b.id: 1}
    assert metrics.evaluate(by[brand.a.id])["profit"] == Figure(None, "spend_not_by_cut")


def test_segment_cut_is_computed_on_the_fly_and_matches_the_rollups(brand):
    rule = {"field": "contact.source_channel", "op": "eq", "value": "douyin"}
    ids = compile_rule(workspace=brand.ws, rule=rule, now=datetime(2026, 3, 3, tzinfo=UTC))
    seg = metrics.period_totals(
        workspace=brand.ws, start=START, end=END, scope=Scope(cut="segment", contact_ids=ids)
    )["all"]
    by_channel = metrics.period_totals(
        workspace=brand.ws, start=START, end=END, scope=Scope(cut="channel")
    )["douyin"]
    assert seg == Totals(**{**by_channel.__dict__, "spend": Figure(None, "spend_not_by_cut")})
    assert (seg.orders, seg.gmv, seg.uncosted_items) == (1, Decimal("50.00"), 1)


def test_empty_period_shows_reasons_not_errors(brand):
    report = metrics.metrics_report(
        workspace=brand.ws, start=date(2026, 2, 27), end=date(2026, 2, 28), scope=Scope()
    )
    rows = {r.metric.code: r for r in report.sections["all"]}
    assert rows["conversion"].now == Figure(None, "no_visitors")
    assert rows["aov"].now == Figure(None, "no_orders")
    assert rows["spend"].now == Figure(Decimal("20.00"))  # 2/28 of February's Douyin 280
    assert rows["cac"].now == Figure(None, "no_new_contacts")
    assert rows["roi"].now == Figure(0.0)
    assert rows["profit"].now == Figure(Decimal("-20.00"))
    # The period before (02-25..02-26) had c3's order o0: 1 → 0 orders is −100%.
    assert rows["orders"].delta == Figure(-1.0)
    assert rows["new_contacts"].delta == Figure(None, "no_previous")  # 0 → 0


def test_report_compares_with_the_previous_period(brand):
    report = metrics.metrics_report(workspace=brand.ws, start=START, end=END, scope=Scope())
    assert report.previous == (date(2026, 2, 27), date(2026, 2, 28))
    rows = {r.metric.code: r for r in report.sections["all"]}
    assert rows["spend"].before == Figure(Decimal("20.00"))
    assert rows["spend"].delta == Figure(0.0)
    assert rows["revenue"].before == Figure(Decimal("0.00"))
    assert rows["revenue"].delta == Figure(None, "no_previous")


def test_lmdi_parts_add_up_to_the_change():
    # GMV 1000 = 100 UV × 10% × 100  →  990 = 120 UV × 7.5% × 110.
    before = Totals(uv=100, orders=10, gmv=Decimal("1000.00"))
    after = Totals(uv=120, orders=9, gmv=Decimal("990.00"))
    d = metrics.decompose_gmv(before, after)
    # L = −10 / ln(0.99) = 994.9916; parts L·ln 1.2 = 181.41, L·ln 0.75 = −286.25,
    # L·ln 1.1 = 94.83; they sum to −10.01, so the −0.01 remainder's opposite goes to the
    # largest part (conversion): −286.24.
    assert d.total == Decimal("-10.00")
    assert d.parts == [
        ("uv", Decimal("181.41")),
        ("conversion", Decimal("-286.24")),
        ("aov_gmv", Decimal("94.83")),
    ]
    assert sum(p for _, p in d.parts) == d.total
    o = metrics.decompose_orders(before, after)
    # orders 10 → 9: L = −1 / ln 0.9 = 9.4912; uv 9.4912·ln 1.2 = 1.73, conversion −2.73.
    assert o.parts == [("uv", Decimal("1.73")), ("conversion", Decimal("-2.73"))]
    assert sum(p for _, p in o.parts) == Decimal("-1")


def test_decomposition_with_a_zero_factor_has_a_reason():
    d = metrics.decompose_gmv(Totals(uv=0), Totals(uv=5, orders=1, gmv=Decimal("9.00")))
    assert (d.parts, d.reason, d.total) == ([], "zero_factor", Decimal("9.00"))


def test_other_workspace_is_not_counted(brand, other_ws):
    handmade.build(other_ws)
    services.rollups_rebuild(workspace=other_ws, start=START, end=END)
    totals = metrics.period_totals(workspace=brand.ws, start=START, end=END, scope=Scope())
    assert (totals["all"].orders, totals["all"].gmv) == (4, Decimal("270.00"))
