"""A small hand-made brand whose every figure is worked out by hand in the tests.

Shanghai time (UTC+8). Local days 2026-03-01 and 2026-03-02; store A owns c1 and c2 (WeCom),
store B owns c3 (Douyin). c2 was referred by c1 and first seen at 00:30 on 03-02 local, which is
still 03-01 in UTC — the local day must win.

    orders                       local paid        gross  disc  paid   refunded  items
    o0  c3  (before the range)   02-25 12:00       50     0     50     0
    o1  c1  first ever           03-01 12:00       110    10    100    0         P(cost 30) × 2
    o2  c3  repeat               03-01 20:00       50     0     50     0         unknown sku × 1
    o3  c1  repeat               03-02 09:00       80     0     80     20
    o4  c2  first ever, referred 03-02 10:00       40     0     40     0

    events: c1 page_view ×2 on 03-01, c3 product_view on 03-01, c2 page_view 03-02 00:10
    consent: c3 sms opted out 03-02 08:00; c1 wecom granted
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from siyu.commerce.models import Order, OrderItem, Product, Store
from siyu.contacts.models import Consent, Contact
from siyu.tenancy.models import Workspace
from tests import factories

SH = ZoneInfo("Asia/Shanghai")


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SH).astimezone(UTC)


@dataclass
class Brand:
    ws: Workspace
    a: Store
    b: Store
    c1: Contact
    c2: Contact
    c3: Contact
    product: Product


def order(
    ws: Workspace,
    c: Contact,
    no: str,
    at: datetime,
    gross: str,
    disc: str = "0",
    refunded: str = "0",
) -> Order:
    g, d = Decimal(gross), Decimal(disc)
    return Order.objects.create(
        workspace=ws,
        order_no=no,
        contact=c,
        channel="store",
        paid_at=at,
        gross_amount=g,
        discount_amount=d,
        amount=g - d,
        refunded_amount=Decimal(refunded),
    )


def contact(
    ws: Workspace,
    name: str,
    store: Store,
    channel: str,
    seen: datetime,
    referred_by: Contact | None = None,
) -> Contact:
    return Contact.objects.create(
        workspace=ws,
        name=name,
        store=store,
        source_channel=channel,
        first_seen_at=seen,
        referred_by=referred_by,
    )


def build(ws: Workspace) -> Brand:
    a = factories.store(ws, code="A")
    b = factories.store(ws, code="B")
    c1 = contact(ws, "c1", a, "wecom", local(3, 1, 10))
    c2 = contact(ws, "c2", a, "wecom", local(3, 2, 0, 30), referred_by=c1)
    c3 = contact(ws, "c3", b, "douyin", local(2, 20, 10))
    p = factories.product(ws, sku="P", price="55.00", cost=Decimal("30.00"))
    order(ws, c3, "o0", local(2, 25, 12), "50")
    o1 = order(ws, c1, "o1", local(3, 1, 12), "110", disc="10")
    OrderItem.objects.create(
        workspace=ws,
        order=o1,
        product=p,
        sku="P",
        quantity=2,
        unit_price=Decimal("55.00"),
        amount=Decimal("110.00"),
    )
    o2 = order(ws, c3, "o2", local(3, 1, 20), "50")
    OrderItem.objects.create(
        workspace=ws,
        order=o2,
        sku="X",
        quantity=1,
        unit_price=Decimal("50.00"),
        amount=Decimal("50.00"),
    )
    order(ws, c1, "o3", local(3, 2, 9), "80", refunded="20")
    order(ws, c2, "o4", local(3, 2, 10), "40")
    factories.event(ws, c1, occurred_at=local(3, 1, 9))
    factories.event(ws, c1, occurred_at=local(3, 1, 11))
    factories.event(ws, c3, type="product_view", occurred_at=local(3, 1, 19))
    factories.event(ws, c2, occurred_at=local(3, 2, 0, 10))
    Consent.objects.create(
        workspace=ws, contact=c3, channel="sms", status="opted_out", updated_at=local(3, 2, 8)
    )
    Consent.objects.create(
        workspace=ws, contact=c1, channel="wecom", status="granted", updated_at=local(3, 1, 10)
    )
    return Brand(ws=ws, a=a, b=b, c1=c1, c2=c2, c3=c3, product=p)
