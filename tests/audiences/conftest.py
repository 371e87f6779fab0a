"""A small hand-made customer pool whose every segment answer is worked out by hand in the tests.

``NOW`` anchors every relative window; several rows sit exactly on, or one microsecond before,
a window's edge, so the timestamp comparisons are checked on every database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from siyu.audiences import services
from siyu.audiences.models import Tag
from siyu.commerce.models import Order, OrderItem, Staff, Store
from siyu.contacts.models import Contact
from siyu.events.models import Event
from siyu.tenancy.models import Workspace
from tests import factories

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


@dataclass
class Pool:
    ws: Workspace
    contacts: dict[str, Contact]
    s1: Store
    s2: Store
    e1: Staff
    vip: Tag

    def names(self, ids) -> set[str]:
        by_id = {c.id: name for name, c in self.contacts.items()}
        return {by_id.get(i, f"?{i}") for i in ids}


_seq = iter(range(1, 10_000))


def order(
    ws,
    contact,
    channel,
    amount,
    paid_at,
    *,
    store=None,
    product=None,
    refunded="0.00",
    status="paid",
):
    n = next(_seq)
    o = Order.objects.create(
        workspace=ws,
        order_no=f"O{n}",
        contact=contact,
        channel=channel,
        store=store,
        paid_at=paid_at,
        gross_amount=Decimal(amount),
        amount=Decimal(amount),
        refunded_amount=Decimal(refunded),
        status=status,
    )
    if product is not None:
        OrderItem.objects.create(
            workspace=ws,
            order=o,
            product=product,
            sku=product.sku,
            quantity=1,
            unit_price=Decimal(amount),
            amount=Decimal(amount),
        )
    return o


def events(ws, contact, type_, count, at, properties=None):
    for _ in range(count):
        Event.objects.create(
            workspace=ws,
            event_id=f"E{next(_seq)}",
            contact=contact,
            type=type_,
            occurred_at=at,
            properties=properties or {},
        )


@pytest.fixture
def pool(ws, other_ws) -> Pool:
    s1, s2 = factories.store(ws, code="S1"), factories.store(ws, code="S2")
    e1 = factories.staff(ws, s1, code="E1")
    tea = factories.product(ws, sku="TEA1", category="茶饮")
    cake = factories.product(ws, sku="CAKE1", category="烘焙")
    a = factories.contact(
        ws,
        name="A",
        city="上海",
        gender="f",
        source_channel="douyin",
        store_code="S1",
        owner_staff_code="E1",
        birthday=date(1990, 5, 10),
        first_seen_at=NOW - timedelta(days=10),
        consent={"sms": "granted"},
        first_touch={"campaign": "spring"},
        identities=[
            {"kind": "phone", "value": "13900000001"},
            {"kind": "wecom_external_userid", "value": "wm-a"},
        ],
    )
    b = factories.contact(
        ws,
        name="B",
        city="北京",
        gender="m",
        source_channel="wecom",
        store_code="S2",
        birthday=date(1985, 12, 1),
        first_seen_at=NOW - timedelta(days=400),
        consent={"sms": "opted_out"},
    )
    c = factories.contact(
        ws,
        name="C",
        city="上海",
        first_seen_at=NOW - timedelta(days=7),
        identities=[{"kind": "member_no", "value": "M-C"}],
    )
    d = factories.contact(
        ws, name="D", city="100%'上海", store_code="S1", first_seen_at=NOW - timedelta(days=7) - US
    )
    order(ws, a, "mini_program", "100.00", NOW - timedelta(days=30), product=tea)
    order(ws, a, "store", "300.00", NOW - timedelta(days=5), store=s1, product=cake)
    order(ws, b, "store", "50.00", NOW - timedelta(days=200), store=s2, product=cake)
    order(
        ws,
        b,
        "mini_program",
        "80.00",
        NOW - timedelta(days=30) - US,
        refunded="30.00",
        status="partially_refunded",
    )
    order(
        ws,
        d,
        "mini_program",
        "500.00",
        NOW - timedelta(days=3),
        refunded="500.00",
        status="refunded",
    )
    events(ws, a, "share", 3, NOW - timedelta(days=1), {"page": "home", "n": 2, "vip": True})
    events(ws, b, "share", 1, NOW - timedelta(days=2), {"page": "cart"})
    events(ws, d, "share", 5, NOW - timedelta(days=40))
    vip = services.tag_create(
        workspace=ws, group=services.tag_group_create(workspace=ws, name="价值"), name="VIP"
    )
    services.tag_contacts(workspace=ws, tag=vip, contact_ids=[c.id])
    # Another brand with the same kind of customers: never part of any answer.
    o = factories.contact(
        other_ws,
        city="上海",
        consent={"sms": "granted"},
        identities=[{"kind": "wecom_external_userid", "value": "wm-a"}],
    )
    order(other_ws, o, "mini_program", "999.00", NOW - timedelta(days=1))
    events(other_ws, o, "share", 9, NOW - timedelta(days=1), {"page": "home"})
    return Pool(ws=ws, contacts={"a": a, "b": b, "c": c, "d": d}, s1=s1, s2=s2, e1=e1, vip=vip)
