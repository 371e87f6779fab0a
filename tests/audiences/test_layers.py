"""RFM classes, lifecycle stages and intent layers on a hand-made pool whose every score, class,
stage and layer is worked out below, then the same expressions on DuckDB over Parquet, the
monthly stage flow, the rule conditions on layers, the configuration's refusals and the API.

The pool (days are before NOW; every order is 100% paid unless said otherwise):

    X   orders 100, 80, 60 days ago, 100.00 each      rhythm 20 d, 60 d since: > 2x -> dormant
    Y   orders 360, 210, 60 days ago, 200.00 each     rhythm 150 d, 60 d since -> repeat
    Z   7 orders 90, 85, ..., 60 days ago, 50.00 each rhythm 5 d, 60 d since: > 4x -> churned
    L   orders 40, 30, 20, 10 days ago, 300.00 each   rhythm 10 d, 4 orders in 365 d -> loyal
    N1  one order 5 days ago, 80.00                   median rhythm 20 d -> new
    N2  one order 100 days ago, 2000.00               100 > 4 x 20 -> churned
    N3  one order 50 days ago, 500.00, 100.00 refunded  50 > 2 x 20 -> dormant
    O   orders 700 and 400 days ago (outside the RFM window)  rhythm 300 d -> repeat, no class
    R   one fully refunded order 3 days ago          no order that counts -> prospect
    P, Q, Q2, S  never ordered -> prospect

The repeat buyers' mean intervals are 5 (Z), 10 (L), 20 (X), 150 (Y) and 300 (O) days: the
median, 20 days, is the rhythm of the one-order buyers N1, N2 and N3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from ninja.testing import TestClient

from siyu.analytics.tables import duckdb_fetch, fetch, parquet_export
from siyu.audiences.layers import layers_expression, median_interval_expression
from siyu.audiences.layers_api import router
from siyu.audiences.layers_queries import (
    RFMCell,
    StageFlow,
    layer_config_get,
    layers_overview,
    rfm_matrix,
    snapshot_months,
    stage_counts,
    stage_flow,
)
from siyu.audiences.layers_services import layer_config_update, layers_refresh
from siyu.audiences.models import ContactLayer, LayerConfig, LayerSnapshot
from siyu.audiences.rules import compile_rule
from siyu.commerce.models import Order, Store
from siyu.contacts.models import Contact
from siyu.errors import NotFound, ValidationFailed
from siyu.events.models import Event
from siyu.tenancy.models import Workspace
from tests import factories
from tests.audiences.conftest import events, order

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
client = TestClient(router)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@dataclass
class Layered:
    ws: Workspace
    s1: Store
    contacts: dict[str, Contact]

    def names(self, ids) -> set[str]:
        by_id = {c.id: name for name, c in self.contacts.items()}
        return {by_id.get(i, f"?{i}") for i in ids}


@pytest.fixture
def layered(ws, other_ws) -> Layered:
    s1 = factories.store(ws, code="S1")
    names = ["X", "Y", "Z", "L", "N1", "N2", "N3", "O", "R", "P", "Q", "Q2", "S"]
    c = {
        n: factories.contact(ws, name=n, store_code="S1" if n in ("L", "N1") else None)
        for n in names
    }
    for days in (100, 80, 60):
        order(ws, c["X"], "store", "100.00", ago(days))
    for days in (360, 210, 60):
        order(ws, c["Y"], "store", "200.00", ago(days))
    for days in (90, 85, 80, 75, 70, 65, 60):
        order(ws, c["Z"], "mini_program", "50.00", ago(days))
    for days in (40, 30, 20, 10):
        order(ws, c["L"], "store", "300.00", ago(days))
    order(ws, c["N1"], "store", "80.00", ago(5))
    order(ws, c["N2"], "store", "2000.00", ago(100))
    order(ws, c["N3"], "store", "500.00", ago(50), refunded="100.00", status="partially_refunded")
    order(ws, c["O"], "store", "90.00", ago(700))
    order(ws, c["O"], "store", "90.00", ago(400))
    order(ws, c["R"], "store", "999.00", ago(3), refunded="999.00", status="refunded")
    # Intent: P interacted 3 times in 90 days; Q was quoted (a custom event named quote); Q2 by a
    # custom event whose stage is quote; S only twice in the window (5 clicks 91 days ago and
    # page views do not count); R's quote is outside the window.
    events(ws, c["P"], "product_view", 2, ago(30))
    events(ws, c["P"], "add_to_cart", 1, ago(89))
    factories.event(ws, c["Q"], type="custom", name="quote", occurred_at=ago(10))
    events(ws, c["Q"], "product_view", 1, ago(10))
    factories.event(
        ws, c["Q2"], type="custom", name="visit", occurred_at=ago(5), properties={"stage": "quote"}
    )
    events(ws, c["S"], "product_view", 2, ago(1))
    events(ws, c["S"], "message_click", 5, ago(91))
    events(ws, c["S"], "page_view", 10, ago(1))
    factories.event(ws, c["R"], type="custom", name="quote", occurred_at=ago(100))
    # Another brand's big spender and quote never show up here.
    other = factories.contact(other_ws, name="other")
    order(other_ws, other, "store", "99999.00", ago(1))
    factories.event(other_ws, other, type="custom", name="quote", occurred_at=ago(1))
    return Layered(ws=ws, s1=s1, contacts=c)


#: name: (recency_days, frequency, monetary, R, F, M, class, stage, intent), worked out by hand.
#: R orders the 7 window buyers by recency descending (N2 100; X, Y, Z 60; N3 50; L 10; N1 5):
#: NTILE(5) gives 1,1,2,2,3,4,5 and the tie at 60 days takes its lowest tile, 1. F orders by
#: frequency (N1, N2, N3 at 1; X, Y at 3; L 4; Z 7): tiles 1,1,2,2,3,4,5, ties -> 1 and 2.
#: M (80, 300, 350, 400, 600, 1200, 2000 for N1, X, Z, N3, Y, L, N2) has no ties.
EXPECTED = {
    "X": (60, 3, "300.00", 1, 2, 1, "general_retain", "dormant", "closed"),
    "Y": (60, 3, "600.00", 1, 2, 3, "important_retain", "repeat", "closed"),
    "Z": (60, 7, "350.00", 1, 5, 2, "general_keep", "churned", "closed"),
    "L": (10, 4, "1200.00", 4, 4, 4, "important_value", "loyal", "closed"),
    "N1": (5, 1, "80.00", 5, 1, 1, "general_develop", "new", "closed"),
    "N2": (100, 1, "2000.00", 1, 1, 5, "important_retain", "churned", "closed"),
    "N3": (50, 1, "400.00", 3, 1, 2, "general_develop", "dormant", "closed"),
    "O": (None, 0, "0.00", None, None, None, "", "repeat", "closed"),
    "R": (None, 0, "0.00", None, None, None, "", "prospect", "silent"),
    "P": (None, 0, "0.00", None, None, None, "", "prospect", "interested"),
    "Q": (None, 0, "0.00", None, None, None, "", "prospect", "quoted"),
    "Q2": (None, 0, "0.00", None, None, None, "", "prospect", "quoted"),
    "S": (None, 0, "0.00", None, None, None, "", "prospect", "silent"),
}


def _stored(pool: Layered) -> dict[str, tuple]:
    """Each contact's stored layers, recency derived as of the last refresh."""
    refreshed_at = LayerConfig.objects.get(workspace=pool.ws).refreshed_at
    names = {c.id: n for n, c in pool.contacts.items()}
    return {
        names[row.contact_id]: (
            row.recency_days_as_of(refreshed_at),
            row.frequency,
            f"{row.monetary:.2f}",
            row.r_score,
            row.f_score,
            row.m_score,
            row.rfm_class,
            row.lifecycle_stage,
            row.intent_layer,
        )
        for row in ContactLayer.objects.filter(workspace=pool.ws)
    }


@pytest.mark.django_db
def test_refresh_writes_every_contacts_layers_as_worked_out_by_hand(layered):
    done = layers_refresh(workspace=layered.ws, now=NOW)

    assert done.contacts == 13
    assert done.month == date(2026, 3, 1)
    assert done.median_interval_days == 20.0
    assert _stored(layered) == EXPECTED
    x = ContactLayer.objects.get(contact=layered.contacts["X"])
    assert x.interval_days == 20.0 and x.last_order_at == ago(60) and x.changed_at == NOW
    assert LayerConfig.objects.get(workspace=layered.ws).refreshed_at == NOW
    assert ContactLayer.objects.get(contact=layered.contacts["N1"]).interval_days is None
    assert ContactLayer.objects.count() == 13  # the other workspace was not layered


@pytest.mark.django_db
def test_same_days_since_last_order_different_rhythm_different_stage(layered):
    """X, Y and Z all last bought 60 days ago; their own rhythms (20, 150, 5 days) differ."""
    layers_refresh(workspace=layered.ws, now=NOW)

    stages = dict(
        ContactLayer.objects.filter(
            contact__in=[layered.contacts[n] for n in ("X", "Y", "Z")]
        ).values_list("contact__name", "lifecycle_stage")
    )
    assert stages == {"X": "dormant", "Y": "repeat", "Z": "churned"}


@pytest.mark.django_db
def test_a_second_refresh_replaces_the_layers_and_the_months_snapshot(layered):
    layers_refresh(workspace=layered.ws, now=NOW - timedelta(hours=1))
    Order.objects.filter(contact=layered.contacts["P"]).delete()
    order(layered.ws, layered.contacts["P"], "store", "10.00", ago(0.5))

    layers_refresh(workspace=layered.ws, now=NOW)

    assert ContactLayer.objects.filter(workspace=layered.ws).count() == 13
    p = ContactLayer.objects.get(contact=layered.contacts["P"])
    assert (p.lifecycle_stage, p.intent_layer) == ("new", "closed")
    assert LayerSnapshot.objects.filter(workspace=layered.ws, month=date(2026, 3, 1)).count() == 13


@pytest.mark.django_db
def test_a_later_refresh_writes_only_the_contacts_whose_layers_changed(layered):
    """A day on, with one new order, the refresh writes the rows that differ and no others, and
    what it leaves stored equals a rewrite from scratch."""
    first = layers_refresh(workspace=layered.ws, now=NOW - timedelta(days=1))
    assert first.changed == 13
    before = _stored(layered)
    order(layered.ws, layered.contacts["S"], "store", "10.00", ago(0.5))

    done = layers_refresh(workspace=layered.ws, now=NOW)

    after = _stored(layered)
    written = set(
        ContactLayer.objects.filter(workspace=layered.ws, changed_at=NOW).values_list(
            "contact__name", flat=True
        )
    )
    # Recency is derived, so a day passing alone changes no row; S's order moves the quintiles.
    moved = {n for n in after if after[n][1:] != before[n][1:]}
    assert "S" in written and written == moved and done.changed == len(moved) < 13
    ContactLayer.objects.filter(workspace=layered.ws).delete()
    LayerConfig.objects.filter(workspace=layered.ws).update(refreshed_at=None)
    assert layers_refresh(workspace=layered.ws, now=NOW).changed == 13
    assert _stored(layered) == after
    # A refresh with nothing new writes nothing, and March's snapshot still has every contact:
    # February's stages, and a row of March's own only where the stage moved since (S).
    assert layers_refresh(workspace=layered.ws, now=NOW).changed == 0
    march = LayerSnapshot.objects.filter(workspace=layered.ws, month=date(2026, 3, 1))
    assert list(march.values_list("contact__name", flat=True)) == ["S"]
    flows = stage_flow(workspace=layered.ws, month=date(2026, 3, 1))
    assert sum(f.contacts for f in flows) == 13
    s_now = ContactLayer.objects.get(contact=layered.contacts["S"]).lifecycle_stage
    assert [(f.to_stage, f.contacts) for f in flows if f.from_stage != f.to_stage] == [(s_now, 1)]


@pytest.mark.django_db
def test_a_refresh_in_the_same_month_writes_only_moved_stages_to_the_snapshot(layered):
    layers_refresh(workspace=layered.ws, now=NOW + timedelta(days=1))
    march = LayerSnapshot.objects.filter(workspace=layered.ws, month=date(2026, 3, 1))
    before = dict(march.values_list("contact__name", "id"))
    order(layered.ws, layered.contacts["S"], "store", "10.00", ago(-1.5))

    layers_refresh(workspace=layered.ws, now=NOW + timedelta(days=2))

    after = dict(march.values_list("contact__name", "lifecycle_stage"))
    assert after["S"] == "new" and len(after) == 13
    # Only S's row was written again; the others were left alone.
    ids = dict(march.values_list("contact__name", "id"))
    assert {n for n in ids if ids[n] != before[n]} == {"S"}


@pytest.mark.django_db
def test_a_deleted_contact_leaves_the_layers_at_the_next_refresh(layered):
    layers_refresh(workspace=layered.ws, now=NOW - timedelta(hours=1))
    gone = layered.contacts["S"]
    ContactLayer.objects.filter(contact=gone).update(lifecycle_stage="loyal")  # stale on purpose
    Contact.objects.filter(id=gone.id).update(workspace=factories.workspace())

    done = layers_refresh(workspace=layered.ws, now=NOW)

    assert done.contacts == 12 and done.changed == 1
    assert not ContactLayer.objects.filter(contact_id=gone.id).exists()
    assert not LayerSnapshot.objects.filter(workspace=layered.ws, contact_id=gone.id).exists()


@pytest.mark.django_db
def test_refresh_is_a_few_set_statements(layered, django_assert_num_queries):
    layer_config_get(workspace=layered.ws)
    # savepoint, config (read, save, lock), buyers and intent into working tables (create +
    # analyze each), median, the buyers' scores into a working table (create + analyze),
    # layers into a working table (create + analyze), count, drop buyers, intent and scores,
    # look for stored layers or history (none: the first refresh writes
    # the new layers as they are), insert the snapshot rows and the layers, drop the layers
    # table, record the refresh, release; on PostgreSQL also read, raise and restore work_mem.
    extra = 3 if connection.vendor == "postgresql" else 0
    with django_assert_num_queries(23 + extra):
        layers_refresh(workspace=layered.ws, now=NOW)
    # A later refresh: config (read, lock) instead of (read, save, lock); after the look for
    # stored layers, the rows that differ into a working table, count stored and new contacts
    # (none gone: nothing to delete), delete the moved stages' snapshot rows, look for history
    # before this month (none: no stage to look up), insert the snapshot rows, update + insert
    # layers, drop the differing table.
    with django_assert_num_queries(29 + extra):
        layers_refresh(workspace=layered.ws, now=NOW + timedelta(days=1))
    # The working tables (UNLOGGED on PostgreSQL, so that parallel workers can read them) are
    # gone once the refresh is over.
    assert not [t for t in connection.introspection.table_names() if t.startswith("siyu_layer_")]


@pytest.mark.django_db
def test_rfm_matrix_counts_revenue_share_and_average_order_value(layered):
    layers_refresh(workspace=layered.ws, now=NOW)

    cells = {c.rfm_class: c for c in rfm_matrix(workspace=layered.ws)}

    # Revenue 1200 + (600 + 2000) + 300 + 350 + (80 + 400) = 4930 over 4 + 4 + 3 + 7 + 2 orders.
    assert list(cells) == [
        "important_value",
        "important_develop",
        "important_keep",
        "important_retain",
        "general_value",
        "general_develop",
        "general_keep",
        "general_retain",
    ]
    assert cells["important_value"] == RFMCell(
        "important_value",
        "重要价值",
        True,
        True,
        True,
        1,
        Decimal("1200.00"),
        Decimal("0.2434"),
        Decimal("300.00"),
    )
    summary = {
        k: (c.contacts, c.revenue, c.revenue_share, c.average_order_value) for k, c in cells.items()
    }
    assert summary == {
        "important_value": (1, Decimal("1200.00"), Decimal("0.2434"), Decimal("300.00")),
        "important_develop": (0, Decimal("0.00"), Decimal("0.0000"), None),
        "important_keep": (0, Decimal("0.00"), Decimal("0.0000"), None),
        "important_retain": (2, Decimal("2600.00"), Decimal("0.5274"), Decimal("650.00")),
        "general_value": (0, Decimal("0.00"), Decimal("0.0000"), None),
        "general_develop": (2, Decimal("480.00"), Decimal("0.0974"), Decimal("240.00")),
        "general_keep": (1, Decimal("350.00"), Decimal("0.0710"), Decimal("50.00")),
        "general_retain": (1, Decimal("300.00"), Decimal("0.0609"), Decimal("100.00")),
    }
    assert (cells["important_retain"].r_high, cells["important_retain"].m_high) == (False, True)


@pytest.mark.django_db
def test_rfm_matrix_for_one_store_sees_only_its_contacts(layered):
    layers_refresh(workspace=layered.ws, now=NOW)

    cells = rfm_matrix(workspace=layered.ws, store_id=layered.s1.id)

    # L (1200 over 4 orders) and N1 (80, one order) are the store's: 1280 in all.
    assert {c.rfm_class: (c.contacts, c.revenue_share) for c in cells if c.contacts} == {
        "important_value": (1, Decimal("0.9375")),
        "general_develop": (1, Decimal("0.0625")),
    }
    assert stage_counts(workspace=layered.ws, store_id=layered.s1.id) == {
        "prospect": 0,
        "new": 1,
        "repeat": 0,
        "loyal": 1,
        "dormant": 0,
        "churned": 0,
    }


@pytest.mark.django_db
def test_the_layers_overview_is_one_scan_that_agrees_with_each_view(
    layered, django_assert_num_queries
):
    layers_refresh(workspace=layered.ws, now=NOW)
    with django_assert_num_queries(1):
        overview = layers_overview(workspace=layered.ws, store_id=layered.s1.id)
    assert overview.rfm == rfm_matrix(workspace=layered.ws, store_id=layered.s1.id)
    assert overview.stages == stage_counts(workspace=layered.ws, store_id=layered.s1.id)
    assert sum(overview.intents.values()) == sum(overview.stages.values()) == 2


@pytest.mark.django_db
def test_threshold_method_classes(layered):
    layer_config_update(
        workspace=layered.ws,
        values={
            "rfm_method": "threshold",
            "rfm_recency_days": 30,
            "rfm_frequency": 3,
            "rfm_monetary": "500",
        },
    )

    layers_refresh(workspace=layered.ws, now=NOW)

    # R high: recency <= 30 (L 10, N1 5); F high: >= 3 (X, Y, Z, L); M high: >= 500 (Y, L, N2).
    classes = {n: row[6] for n, row in _stored(layered).items() if row[6]}
    assert classes == {
        "X": "general_keep",
        "Y": "important_keep",
        "Z": "general_keep",
        "L": "important_value",
        "N1": "general_develop",
        "N2": "important_retain",
        "N3": "general_retain",
    }


@pytest.mark.django_db
def test_lifecycle_and_intent_settings_change_the_answer(layered):
    # Loyal from 3 orders in a year: Y (3 orders, rhythm 150 d) becomes loyal; dormant after
    # 1.5x and churned after more than 3x the rhythm: X (60 d since, rhythm 20: exactly 3x) is
    # still dormant, Z (60 d since, rhythm 5) churned; intent from 2 interactions: S (2 product
    # views) is now interested.
    layer_config_update(
        workspace=layered.ws,
        values={
            "loyal_orders": 3,
            "dormant_factor": "1.5",
            "churned_factor": 3,
            "intent_min_interactions": 2,
        },
    )

    layers_refresh(workspace=layered.ws, now=NOW)

    got = {n: (row[7], row[8]) for n, row in _stored(layered).items() if n in ("X", "Y", "Z", "S")}
    assert got == {
        "X": ("dormant", "closed"),
        "Z": ("churned", "closed"),
        "Y": ("loyal", "closed"),
        "S": ("prospect", "interested"),
    }


@pytest.mark.django_db
def test_one_order_buyers_use_the_default_rhythm_when_nobody_bought_twice(ws):
    a = factories.contact(ws, name="a")
    b = factories.contact(ws, name="b")
    order(ws, a, "store", "10.00", ago(100))  # 100 <= 2 x 90 -> new
    order(ws, b, "store", "10.00", ago(181))  # 181 > 2 x 90 -> dormant

    done = layers_refresh(workspace=ws, now=NOW)

    assert done.median_interval_days is None
    assert dict(ContactLayer.objects.values_list("contact__name", "lifecycle_stage")) == {
        "a": "new",
        "b": "dormant",
    }


@pytest.mark.django_db
def test_the_same_expressions_give_the_same_layers_on_duckdb_over_parquet(layered, tmp_path):
    parquet_export(models_=[Contact, Order, Event], directory=tmp_path)
    config = layer_config_get(workspace=layered.ws)
    median = median_interval_expression(workspace=layered.ws, config=config, now=NOW)
    [(on_db,)] = fetch(median)
    [(on_duckdb,)] = duckdb_fetch(median, tmp_path)
    assert on_db == on_duckdb == 20 * 86_400

    expr = layers_expression(workspace=layered.ws, config=config, now=NOW, median_interval=on_db)

    def whole(v):  # DuckDB answers through pandas: NULL integers come back as NaN floats
        return None if v is None or math.isnan(v) else int(v)

    def norm(rows) -> dict[str, tuple]:
        names = {c.id: n for n, c in layered.contacts.items()}

        def recency(f, last):  # as ContactLayer.recency_days_as_of derives it
            if not f:
                return None
            last = datetime.fromisoformat(last) if isinstance(last, str) else last
            last = last.to_pydatetime() if hasattr(last, "to_pydatetime") else last
            last = last if last.tzinfo else last.replace(tzinfo=UTC)
            return int((NOW - last).total_seconds() // 86_400)

        return {
            names[cid]: (
                recency(f, last),
                f,
                f"{Decimal(str(m)):.2f}",
                whole(rs),
                whole(fs),
                whole(ms),
                cls,
                stage,
                intent,
            )
            for cid, f, m, rs, fs, ms, cls, last, _, stage, intent in rows
        }

    assert norm(duckdb_fetch(expr, tmp_path)) == EXPECTED
    assert norm(fetch(expr)) == EXPECTED


@pytest.mark.django_db
def test_stage_flow_between_two_monthly_snapshots(ws):
    s1 = factories.store(ws, code="S1")
    a = factories.contact(ws, name="a", store_code="S1")
    b = factories.contact(ws, name="b")
    factories.contact(ws, name="c")
    order(ws, a, "store", "10.00", datetime(2026, 2, 1, tzinfo=UTC))
    order(ws, b, "store", "10.00", datetime(2026, 3, 5, tzinfo=UTC))
    # Two refreshes in February: the month keeps the last one's stages, once per contact.
    layers_refresh(workspace=ws, now=datetime(2026, 2, 10, tzinfo=UTC))
    layers_refresh(workspace=ws, now=datetime(2026, 2, 11, tzinfo=UTC))
    d = factories.contact(ws, name="d")  # arrives after February's snapshot

    layers_refresh(workspace=ws, now=datetime(2026, 3, 20, tzinfo=UTC))

    assert LayerSnapshot.objects.filter(workspace=ws, month=date(2026, 2, 1)).count() == 3
    # a: new -> new (one order, 47 days ago, default rhythm 90 d); b: first order in March;
    # c never bought; d has no February snapshot.
    assert stage_flow(workspace=ws, month=date(2026, 3, 1)) == [
        StageFlow(None, "prospect", 1),
        StageFlow("prospect", "prospect", 1),
        StageFlow("prospect", "new", 1),
        StageFlow("new", "new", 1),
    ]
    assert stage_flow(workspace=ws, month=date(2026, 3, 1), store_id=s1.id) == [
        StageFlow("new", "new", 1)
    ]
    assert stage_flow(workspace=ws, month=date(2026, 2, 1)) == [
        StageFlow(None, "prospect", 2),
        StageFlow(None, "new", 1),
    ]
    # March keeps only the changes: b moved, d arrived; a and c are where February left them.
    march = LayerSnapshot.objects.filter(workspace=ws, month=date(2026, 3, 1))
    assert set(march.values_list("contact_id", flat=True)) == {b.id, d.id}
    assert snapshot_months(workspace=ws) == [date(2026, 3, 1), date(2026, 2, 1)]
    assert stage_flow(workspace=ws, month=date(2026, 4, 1)) == []  # no refresh in April

    # b's order is refunded away before the month ends: b is back where February left it, and
    # March's row for b goes.
    Order.objects.filter(contact=b).delete()
    layers_refresh(workspace=ws, now=datetime(2026, 3, 21, tzinfo=UTC))
    assert set(march.values_list("contact_id", flat=True)) == {d.id}
    assert stage_flow(workspace=ws, month=date(2026, 3, 1)) == [
        StageFlow(None, "prospect", 1),
        StageFlow("prospect", "prospect", 2),
        StageFlow("new", "new", 1),
    ]

    # April, with nothing moving, writes no row and still has its snapshot: February's stages
    # carried through March.
    layers_refresh(workspace=ws, now=datetime(2026, 4, 2, tzinfo=UTC))
    assert not LayerSnapshot.objects.filter(workspace=ws, month=date(2026, 4, 1)).exists()
    assert stage_flow(workspace=ws, month=date(2026, 4, 1)) == [
        StageFlow("prospect", "prospect", 3),
        StageFlow("new", "new", 1),
    ]


@pytest.mark.django_db
def test_snapshot_month_is_the_workspaces_local_month(ws):
    factories.contact(ws)

    # 2026-02-28 17:00 UTC is already March 1st, 01:00 in Shanghai.
    done = layers_refresh(workspace=ws, now=datetime(2026, 2, 28, 17, tzinfo=UTC))

    assert done.month == date(2026, 3, 1)


RULES = [
    ({"rfm_class": "重要价值"}, {"L"}),
    ({"rfm_class": ["important_retain", "一般发展"]}, {"Y", "N2", "N1", "N3"}),
    ({"lifecycle": "dormant"}, {"X", "N3"}),
    ({"lifecycle": ["流失", "loyal"]}, {"Z", "N2", "L"}),
    ({"intent": "quoted"}, {"Q", "Q2"}),
    ({"intent": ["意向", "silent"]}, {"P", "R", "S"}),
    (
        {"all": [{"lifecycle": "prospect"}, {"not": {"intent": "silent"}}]},
        {"P", "Q", "Q2"},
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("rule", "expected"), RULES)
def test_rules_on_layers(layered, rule, expected):
    layers_refresh(workspace=layered.ws, now=NOW)

    ids = {row[0] for row in fetch(compile_rule(workspace=layered.ws, rule=rule, now=NOW))}

    assert layered.names(ids) == expected


@pytest.mark.django_db
def test_rules_on_layers_refuse_unknown_values_with_their_path(ws):
    cases = [
        (
            {"all": [{"lifecycle": ["dormant", "sleepy"]}]},
            "all.0.lifecycle.1",
            "'sleepy' is not one of: prospect, new, repeat, loyal, dormant, churned "
            "(or 潜客, 新客, 复购客, 忠诚客, 沉睡, 流失)",
        ),
        (
            {"rfm_class": "vip"},
            "rfm_class",
            "'vip' is not one of: important_value, important_develop, important_keep, "
            "important_retain, general_value, general_develop, general_keep, general_retain "
            "(or 重要价值, 重要发展, 重要保持, 重要挽留, 一般价值, 一般发展, 一般保持, 一般挽留)",
        ),
        (
            {"any": [{"tag": 1}, {"intent": 3}]},
            "any.1.intent",
            "'3' is not one of: silent, interested, quoted, closed (or 无语, 意向, 报价, 成交)",
        ),
        ({"intent": []}, "intent", "expected a list of 1 to 1000 values"),
    ]
    for rule, path, message in cases:
        with pytest.raises(ValidationFailed) as info:
            compile_rule(workspace=ws, rule=rule, now=NOW)
        assert (info.value.path, info.value.message) == (path, message)


BAD_CONFIGS = [
    (
        {"rfm_method": "decile"},
        "rfm_method",
        "unknown method 'decile': expected one of quintile, threshold",
    ),
    ({"rfm_recency_days": -1}, "rfm_recency_days", "rfm_recency_days must be from 0 to 3650"),
    ({"rfm_monetary": "-0.01"}, "rfm_monetary", "rfm_monetary must be at least 0"),
    ({"rfm_window_days": 0}, "rfm_window_days", "rfm_window_days must be from 1 to 3650"),
    ({"rfm_frequency": "3"}, "rfm_frequency", "rfm_frequency must be a whole number"),
    (
        {"rfm_method": "threshold", "rfm_recency_days": 30, "rfm_frequency": 2},
        "rfm_monetary",
        "the threshold method needs rfm_monetary",
    ),
    ({"dormant_factor": 0}, "dormant_factor", "dormant_factor must be above 0 and at most 100"),
    (
        {"dormant_factor": 4, "churned_factor": 4},
        "churned_factor",
        "churned_factor must be larger than dormant_factor",
    ),
    ({"colour": "red"}, "colour", "unknown setting 'colour'"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("values", "path", "message"), BAD_CONFIGS)
def test_bad_configuration_is_refused_with_its_path_and_nothing_saved(ws, values, path, message):
    with pytest.raises(ValidationFailed) as info:
        layer_config_update(workspace=ws, values=values)

    assert (info.value.code, info.value.path, info.value.message) == ("invalid", path, message)
    assert LayerConfig.objects.count() == 0


@pytest.mark.django_db
def test_configuration_is_kept_per_workspace(ws, other_ws):
    layer_config_update(workspace=ws, values={"rfm_window_days": 180, "dormant_factor": "2.5"})

    saved = layer_config_get(workspace=ws)
    assert (saved.rfm_window_days, saved.dormant_factor, saved.loyal_orders) == (
        180,
        Decimal("2.50"),
        4,
    )
    assert layer_config_get(workspace=other_ws).rfm_window_days == 365
    assert LayerConfig.objects.filter(workspace=other_ws).count() == 0


# --- API ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_refresh_then_matrix_flow_and_one_contacts_layers(layered, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    x = layered.contacts["X"]
    before = client.get(f"/contacts/{x.id}/layers", workspace=layered.ws).json()
    assert before["computed_at"] is None and before["lifecycle_stage"] is None

    refreshed = client.post("/layers/refresh", workspace=layered.ws).json()

    assert refreshed["contacts"] == 13 and refreshed["month"] == "2026-03"
    assert refreshed["stages"] == {
        "prospect": 5,
        "new": 1,
        "repeat": 2,
        "loyal": 1,
        "dormant": 2,
        "churned": 2,
    }
    matrix = client.get("/layers/rfm", workspace=layered.ws).json()
    assert [(c["label"], c["contacts"]) for c in matrix if c["contacts"]] == [
        ("重要价值", 1),
        ("重要挽留", 2),
        ("一般发展", 2),
        ("一般保持", 1),
        ("一般挽留", 1),
    ]
    layers = client.get(f"/contacts/{x.id}/layers", workspace=layered.ws).json()
    assert {k: layers[k] for k in ("lifecycle_stage", "lifecycle_label", "intent_label")} == {
        "lifecycle_stage": "dormant",
        "lifecycle_label": "沉睡",
        "intent_label": "成交",
    }
    # Recency is derived at the refresh time; the row was written by this refresh.
    assert layers["recency_days"] == 60 and refreshed["changed"] == 13
    assert layers["computed_at"] == layers["changed_at"]
    assert layers["computed_at"].startswith("2026-03-01T20:00:00")  # NOW, Shanghai time
    flow = client.get("/layers/stage-flow?month=2026-03", workspace=layered.ws).json()
    assert sum(f["contacts"] for f in flow) == 13 and {f["from_stage"] for f in flow} == {None}


@pytest.mark.django_db
def test_api_config_round_trip_and_refusal(ws):
    assert client.get("/layers/rfm/config", workspace=ws).json()["rfm_method"] == "quintile"

    saved = client.put(
        "/layers/rfm/config",
        json={
            "rfm_method": "threshold",
            "rfm_recency_days": 30,
            "rfm_frequency": 2,
            "rfm_monetary": "300",
        },
        workspace=ws,
    ).json()

    assert (saved["rfm_method"], saved["rfm_monetary"], saved["loyal_orders"]) == (
        "threshold",
        "300.00",
        4,
    )
    with pytest.raises(ValidationFailed) as info:
        client.put("/layers/rfm/config", json={"rfm_frequency": -2}, workspace=ws)
    assert info.value.path == "rfm_frequency"
    assert layer_config_get(workspace=ws).rfm_method == "threshold"


@pytest.mark.django_db
def test_api_stage_flow_month_must_be_year_and_month(ws):
    with pytest.raises(ValidationFailed) as info:
        client.get("/layers/stage-flow?month=2026-13", workspace=ws)
    assert (info.value.path, info.value.message) == ("month", "month is YYYY-MM, e.g. 2026-03")


@pytest.mark.django_db
def test_api_another_workspaces_contact_is_not_found(layered, other_ws):
    with pytest.raises(NotFound):
        client.get(f"/contacts/{layered.contacts['X'].id}/layers", workspace=other_ws)


@pytest.mark.django_db
def test_a_merged_contact_keeps_the_survivors_stage_history(ws):
    old = factories.contact(ws, phone="13800000001", first_seen_at=datetime(2025, 1, 1, tzinfo=UTC))
    young = factories.contact(
        ws, phone="13800000002", first_seen_at=datetime(2025, 6, 1, tzinfo=UTC)
    )
    order(ws, young, "store", "10.00", datetime(2026, 2, 5, tzinfo=UTC))
    layers_refresh(workspace=ws, now=datetime(2026, 1, 20, tzinfo=UTC))
    layers_refresh(workspace=ws, now=datetime(2026, 2, 20, tzinfo=UTC))
    # January: both prospects; February: the younger one bought (a row of its own).
    assert LayerSnapshot.objects.filter(contact=young).count() == 2

    factories.contact(
        ws,
        identities=[
            {"kind": "phone", "value": "13800000001"},
            {"kind": "phone", "value": "13800000002"},
        ],
    )

    # The survivor's history is its own (prospect in January and, unchanged, in February);
    # the merged contact's February row would have made it "new" there without an order.
    assert list(
        LayerSnapshot.objects.filter(workspace=ws).values_list(
            "contact_id", "month", "lifecycle_stage"
        )
    ) == [(old.id, date(2026, 1, 1), "prospect")]
    assert stage_flow(workspace=ws, month=date(2026, 2, 1)) == [
        StageFlow("prospect", "prospect", 1)
    ]
