"""Leaderboards and the three event formulas on the hand-made brand (handmade.py), extended here
with owners, content views, shares and consents. Local days 03-01..03-02; all worked by hand:

    contact  store  owner  new  events in the period                          orders  revenue
    c1       A      s1     yes  page×2, content_view 120 s, invite            o1, o3  100 + 60
    c2       A      s2     yes  page, product_view, content_view 60 s, share  o4      40
    c3       B      s3     no   product_view, message_read                    o2      50

Reachable for free: c1 (WeCom granted), c2 (Official Account granted); c3 is not (SMS only).
Orders ever by the end: c1 2, c2 1, c3 2 (o0 in February). c2 was referred by c1.
"""

import csv
import io
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from ninja.testing import TestClient

from siyu.analytics import leaderboards, metrics
from siyu.analytics.leaderboards_api import router
from siyu.analytics.metrics import Figure
from siyu.commerce.models import Staff
from siyu.contacts.models import Consent, Contact
from siyu.errors import ValidationFailed
from siyu.events.models import Event
from tests import factories
from tests.analytics import handmade
from tests.analytics.handmade import local

START, END = date(2026, 3, 1), date(2026, 3, 2)
URL = "/analytics/metrics/leaderboards/?start=2026-03-01&end=2026-03-02"


@pytest.fixture
def brand(ws):
    b = handmade.build(ws)
    b.s1 = factories.staff(ws, b.a, code="S1", name="小一")
    b.s2 = factories.staff(ws, b.a, code="S2", name="小二")
    b.s3 = factories.staff(ws, b.b, code="S3", name="小三")
    for c, s in ((b.c1, b.s1), (b.c2, b.s2), (b.c3, b.s3)):
        Contact.objects.filter(pk=c.pk).update(owner_staff=s)
    ev = factories.event
    ev(ws, b.c1, type="content_view", occurred_at=local(3, 1, 13), duration_seconds=120)
    ev(ws, b.c1, type="invite", occurred_at=local(3, 1, 14))
    ev(ws, b.c2, type="product_view", occurred_at=local(3, 2, 9, 30))
    ev(ws, b.c2, type="content_view", occurred_at=local(3, 2, 11), duration_seconds=60)
    ev(ws, b.c2, type="share", occurred_at=local(3, 2, 12))
    ev(ws, b.c3, type="message_read", occurred_at=local(3, 1, 18))
    Consent.objects.create(
        workspace=ws,
        contact=b.c2,
        channel="official_account",
        status="granted",
        updated_at=local(3, 2, 1),
    )
    return b


def fig(board_entry, code):
    return board_entry.figure(code)


def test_store_board_ranks_by_revenue_and_summarises_the_rest(brand):
    board = leaderboards.leaderboard(workspace=brand.ws, kind="store", start=START, end=END, top=1)
    assert board.by == "revenue" and board.entities == 2
    [a] = board.top
    assert (a.rank, a.key, a.label) == (1, brand.a.id, brand.a.name)
    # A: c1 + c2 — both new, active and buying; c1 repeats (2 orders ever); both reachable,
    # both reached and bought → 私域价值 2 × 100% × 100% = 2.
    assert a.counts == {
        "pool": 2,
        "new_contacts": 2,
        "active": 2,
        "purchasers": 2,
        "repeaters": 1,
        "orders": 3,
        "revenue": a.counts["revenue"],
        "reachable": 2,
        "reached": 2,
        "reached_buyers": 2,
    }
    assert str(a.counts["revenue"]) == "200.00"  # 100 + (80 − 20) + 40
    assert (fig(a, "conversion"), fig(a, "repurchase")) == (Figure(1.0), Figure(0.5))
    assert fig(a, "private_value") == Figure(2)
    # The rest is store B (c3): revenue 50, repurchase 1/1, nobody reachable for free.
    rest = board.rest
    assert rest.label == "其余 1 个"
    assert (str(rest.counts["revenue"]), rest.counts["repeaters"]) == ("50.00", 1)
    assert fig(rest, "repurchase") == Figure(1.0)
    assert fig(rest, "private_value") == Figure(None, "no_reachable")
    # Total ratios come from the summed counts: 3 purchasers ÷ 3 active; 2 repeaters ÷ 3.
    assert str(board.total.counts["revenue"]) == "250.00"
    assert fig(board.total, "repurchase") == Figure(2 / 3)


def test_staff_board_by_private_value_ties_by_id_missing_last(brand):
    board = leaderboards.leaderboard(workspace=brand.ws, kind="staff", start=START, end=END)
    assert board.by == "private_value" and board.rest is None
    assert [(e.rank, e.label) for e in board.top] == [(1, "小一"), (2, "小二"), (3, "小三")]
    one, two, three = board.top
    assert [fig(e, "private_value") for e in board.top] == [
        Figure(1),
        Figure(1),
        Figure(None, "no_reachable"),
    ]
    assert (str(one.counts["revenue"]), str(two.counts["revenue"])) == ("160.00", "40.00")
    assert fig(two, "repurchase") == Figure(0.0)  # c2's o4 is its only order
    assert (fig(one, "reach_rate"), fig(one, "buy_rate")) == (Figure(1.0), Figure(1.0))
    by_revenue = leaderboards.leaderboard(
        workspace=brand.ws, kind="staff", start=START, end=END, by="revenue"
    )
    assert [e.label for e in by_revenue.top] == ["小一", "小三", "小二"]  # 160, 50, 40


def test_koc_board(brand):
    board = leaderboards.leaderboard(workspace=brand.ws, kind="koc", start=START, end=END)
    [koc] = board.top
    assert (koc.key, koc.label) == (brand.c1.id, "c1")
    assert {k: str(v) for k, v in koc.counts.items()} == {
        "referrals": "1",
        "referrals_total": "1",
        "referred_buyers": "1",
        "referred_orders": "1",
        "revenue": "40.00",
    }


def test_staff_login_sees_only_its_store(brand):
    b_only = leaderboards.leaderboard(
        workspace=brand.ws, kind="staff", start=START, end=END, store_id=brand.b.id
    )
    assert [e.label for e in b_only.top] == ["小三"]
    assert str(b_only.total.counts["revenue"]) == "50.00"
    # c1, the only KOC, belongs to store A.
    koc = leaderboards.leaderboard(
        workspace=brand.ws, kind="koc", start=START, end=END, store_id=brand.b.id
    )
    assert (koc.top, koc.rest, koc.entities) == ([], None, 0)


def test_empty_period_gives_reasons_not_errors(brand):
    # 02-27..02-28: only c3 is in the pool; no events, no orders.
    board = leaderboards.leaderboard(
        workspace=brand.ws, kind="store", start=date(2026, 2, 27), end=date(2026, 2, 28)
    )
    [b] = board.top
    assert fig(b, "conversion") == Figure(None, "no_active")
    assert fig(b, "repurchase") == Figure(None, "no_purchasers")
    assert fig(b, "private_value") == Figure(None, "no_reachable")
    assert leaderboards.why(fig(b, "conversion")).startswith("期内没有活跃客户")


def test_other_workspace_not_counted(brand, other_ws):
    handmade.build(other_ws)
    board = leaderboards.leaderboard(workspace=brand.ws, kind="store", start=START, end=END)
    assert str(board.total.counts["revenue"]) == "250.00"


def test_event_formulas_worked_by_hand(brand):
    gmv, value, social = metrics.event_formulas(workspace=brand.ws, start=START, end=END)
    # 私域 GMV: UV 2 content viewers (c1, c2) × 1.5 min each (180 s ÷ 60 ÷ 2)
    # × 2 buyers ÷ 3 minutes × order price 220 ÷ 3 × frequency 3 orders ÷ 2 buyers = 220.
    f = {x.code: x.figure.value for x in gmv.factors}
    assert f["uv"] == 2 and f["content_minutes"] == 1.5
    assert f["order_per_minute"] == pytest.approx(2 / 3)
    assert f["order_price"] == Decimal("220.00") / 3
    assert f["repeat_frequency"] == 1.5
    assert str(gmv.result.value) == "220.00" and gmv.holds is True
    # 私域价值: pool 2 (c1, c2) × reach 2/2 × seeded 1/2 (c2 viewed a product) × bought 1/1 = 1.
    v = {x.code: x.figure.value for x in value.factors}
    assert v == {
        "pool": 2,
        "fan_power": 0.5,
        "reach_rate": 1.0,
        "seed_rate": 0.5,
        "fan_conversion": 1.0,
    }
    assert value.result == Figure(1) and value.holds is True
    # 社交红利: info 3 reads ÷ 3 active × links 1 referred ÷ 3 pool × 2 shares/invites ÷ 3 active.
    s = {x.code: x.figure.value for x in social.factors}
    assert s == {"information": 1.0, "relationship": 1 / 3, "interaction": 2 / 3}
    assert social.is_index and social.result.value == pytest.approx(float(Fraction(2, 9)))


def test_event_formulas_with_viewing_time_in_odd_seconds(brand):
    # 120 s + 70 s: 19/6 minutes, which is no whole number of anything.
    Event.objects.filter(workspace=brand.ws, contact=brand.c2, type="content_view").update(
        duration_seconds=70
    )
    gmv = metrics.event_formulas(workspace=brand.ws, start=START, end=END)[0]
    f = {x.code: x.figure.value for x in gmv.factors}
    assert f["content_minutes"] == pytest.approx(19 / 12)
    assert f["order_per_minute"] == pytest.approx(12 / 19)
    assert str(gmv.result.value) == "220.00" and gmv.holds is True


def test_event_formulas_reasons_on_zero_denominators(brand):
    gmv, value, social = metrics.event_formulas(
        workspace=brand.ws, start=date(2026, 1, 1), end=date(2026, 1, 2)
    )
    assert (gmv.result, gmv.holds) == (Figure(None, "no_content_viewers"), None)
    assert value.result == Figure(None, "no_reachable")
    assert social.result == Figure(None, "no_active")
    assert "content_view" in gmv.result.why
    # Content viewed but never timed: the per-minute rate has no denominator.
    Event.objects.filter(workspace=brand.ws, type="content_view").update(duration_seconds=None)
    gmv = metrics.event_formulas(workspace=brand.ws, start=START, end=END)[0]
    assert gmv.result == Figure(None, "no_content_time")


def test_event_formulas_for_a_staff_store(brand):
    gmv, value, social = metrics.event_formulas(
        workspace=brand.ws, start=START, end=END, store_id=brand.b.id
    )
    assert gmv.result == Figure(None, "no_content_viewers")  # c3 viewed no content
    assert value.result == Figure(None, "no_reachable")
    # c3: 1 read ÷ 1 active × 0 referred ÷ 1 × 0 shares → 0.
    assert social.result == Figure(0.0)


def login(client, ws, role="owner"):
    user = factories.member(ws, role)
    client.force_login(user)
    return user


def test_page_csv_and_staff_scope(client, brand):
    user = login(client, brand.ws)
    response = client.get(URL + "&kind=staff&top=2")
    assert response.status_code == 200
    html = response.content.decode()
    assert "小一" in html and "其余 1 个" in html and "私域价值" in html
    csv_response = client.get(
        "/analytics/metrics/leaderboards/export.csv?start=2026-03-01&end=2026-03-02&kind=store"
    )
    table = list(csv.reader(io.StringIO(csv_response.content.decode("utf-8-sig"))))
    assert table[0][:4] == ["名次", "名称", "新增客户（池增长）", "转化率"]
    assert table[1][:2] == ["1", brand.a.name] and table[1][5] == "200.00"
    assert table[2][0] == "2" and table[2][5] == "50.00" and table[2][6] == ""  # no_reachable
    assert table[3][1] == "合计" and table[3][5] == "250.00" and table[3][3] == "1.0"
    # A staff login is pinned to its store.
    client.logout()
    staff_user = login(client, brand.ws, "staff")
    Staff.objects.filter(pk=brand.s3.pk).update(user=staff_user)
    board = client.get(URL + "&kind=staff").context["board"]
    assert [e.label for e in board.top] == ["小三"]
    assert user != staff_user


def test_metrics_page_shows_the_event_formulas(client, brand):
    login(client, brand.ws)
    response = client.get("/analytics/metrics/?start=2026-03-01&end=2026-03-02")
    formulas = {f["code"]: f for f in response.context["formulas"]}
    assert formulas["short_video_gmv"]["value"] == "¥220.00"
    assert formulas["short_video_gmv"]["holds"] is True
    assert formulas["social_dividend"]["value"] == "0.2222"
    assert 'data-formula="private_value"' in response.content.decode()


def test_api(brand):
    client = TestClient(router)
    body = client.get(
        "/leaderboards?kind=koc&start=2026-03-01&end=2026-03-02", workspace=brand.ws
    ).json()
    assert body["top"][0]["figures"]["revenue"] == {"value": "40.00", "reason": None, "why": ""}
    store = client.get(
        "/leaderboards?kind=store&start=2026-03-01&end=2026-03-02&top=1", workspace=brand.ws
    ).json()
    assert store["rest"]["figures"]["private_value"]["reason"] == "no_reachable"
    assert store["total"]["figures"]["revenue"]["value"] == "250.00"
    with pytest.raises(ValidationFailed):
        client.get(
            "/leaderboards?kind=koc&start=2026-03-01&end=2026-03-02&by=conversion",
            workspace=brand.ws,
        )
