"""The demo brand as a user of the console sees it: every table filled, money exact, the Tuesday
member day, fruit in season, contacts merged across channels, the same data for the same seed."""

from collections import defaultdict
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from siyu.commerce.models import Order, OrderItem, Product, Refund, Staff, Store
from siyu.contacts.models import Consent, Contact, ContactMerge, Identity
from siyu.demo import build_demo
from siyu.events.models import Event
from siyu.tenancy.services import workspace_create

TODAY = date(2026, 3, 1)
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        ws = workspace_create(slug="demo-under-test", name="鲜果时光 FreshFruit Demo")
        summary = build_demo(workspace=ws, contacts=1500, seed=11, today=TODAY)
        yield ws, summary
        ws.delete()


@pytest.mark.django_db
def test_every_table_is_filled_and_only_in_the_demo_workspace(demo):
    ws, summary = demo

    for model in (
        Store,
        Staff,
        Product,
        Contact,
        Identity,
        Consent,
        ContactMerge,
        Order,
        OrderItem,
        Refund,
        Event,
    ):
        assert model.objects.filter(workspace=ws).exists(), model.__name__
        assert not model.objects.exclude(workspace=ws).exists(), model.__name__
    assert not Order.objects.filter(workspace=ws).exclude(contact__workspace=ws).exists()
    assert not OrderItem.objects.filter(workspace=ws).exclude(order__workspace=ws).exists()
    assert not Event.objects.filter(workspace=ws).exclude(contact__workspace=ws).exists()
    assert Contact.objects.filter(workspace=ws).count() == summary.contacts
    assert Order.objects.filter(workspace=ws).count() == summary.orders
    assert OrderItem.objects.filter(workspace=ws).count() == summary.order_items
    assert Event.objects.filter(workspace=ws).count() == summary.events
    assert summary.orders > 5 * summary.contacts
    assert summary.events > 2 * summary.orders
    assert summary.parameters["r"] == 1.2 and summary.parameters["time_unit"] == "week"


@pytest.mark.django_db
def test_money_adds_up_for_every_order_in_sql(demo):
    ws, _ = demo
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT COUNT(*) FROM commerce_order o
            WHERE o.workspace_id = %s AND (
                ROUND(o.amount, 2) <> ROUND(o.gross_amount - o.discount_amount, 2)
                OR ROUND(o.gross_amount, 2) <> COALESCE(
                    (SELECT ROUND(SUM(i.amount), 2) FROM commerce_orderitem i WHERE i.order_id = o.id), -1)
                OR o.refunded_amount > o.amount
            )
            """,
            [ws.id],
        )
        assert cur.fetchone()[0] == 0
        cur.execute(
            "SELECT COUNT(*) FROM commerce_order WHERE workspace_id = %s AND discount_amount > 0",
            [ws.id],
        )
        assert cur.fetchone()[0] > 0


@pytest.mark.django_db
def test_tuesday_member_day_lifts_daily_revenue(demo):
    ws, _ = demo
    revenue, days = defaultdict(float), defaultdict(set)
    for paid_at, amount in Order.objects.filter(workspace=ws).values_list("paid_at", "amount"):
        local = paid_at.astimezone(SHANGHAI).date()
        revenue[local.weekday()] += float(amount)
        days[local.weekday()].add(local)
    per_day = {wd: revenue[wd] / len(days[wd]) for wd in range(7)}

    assert per_day[1] > 1.4 * max(v for wd, v in per_day.items() if wd != 1)


@pytest.mark.django_db
def test_cherries_sell_in_their_season(demo):
    ws, _ = demo
    paid = OrderItem.objects.filter(workspace=ws, sku="FF-CHERRY").values_list(
        "order__paid_at", flat=True
    )
    months = [p.astimezone(SHANGHAI).month for p in paid]

    assert len(months) > 100
    assert sum(m in (12, 1, 2) for m in months) / len(months) > 0.7


@pytest.mark.django_db
def test_merged_contacts_leave_their_identities_with_the_survivor(demo):
    ws, summary = demo
    merges = list(ContactMerge.objects.filter(workspace=ws))

    assert len(merges) == summary.merges > 0
    for merge in merges:
        assert not Contact.objects.filter(id=merge.merged_contact_id).exists()
        assert not Identity.objects.filter(contact_id=merge.merged_contact_id).exists()
        kinds = set(Identity.objects.filter(contact=merge.survivor).values_list("kind", flat=True))
        assert "phone" in kinds and kinds & {"douyin_id", "xiaohongshu_id"}


@pytest.mark.django_db
def test_contacts_carry_where_they_came_from(demo):
    ws, _ = demo
    store_qr = Contact.objects.filter(workspace=ws, source_channel="store_qr").select_related(
        "first_touch_store", "first_touch_staff"
    )

    for c in store_qr[:200]:
        assert (
            c.first_touch_state
            == f"store:{c.first_touch_store.code}:staff:{c.first_touch_staff.code}"
        )
        assert c.owner_staff_id == c.first_touch_staff_id
    referred = Contact.objects.filter(workspace=ws, referred_by__isnull=False).select_related(
        "referred_by"
    )
    assert referred.exists()
    assert all(c.referred_by.first_seen_at <= c.first_seen_at for c in referred)
    assert Event.objects.filter(workspace=ws, type="invite").count() >= referred.count()
    assert not Event.objects.filter(
        workspace=ws, type="content_view", duration_seconds__isnull=True
    ).exists()


@pytest.mark.django_db
def test_same_seed_builds_the_same_orders(ws, other_ws):
    first = build_demo(workspace=ws, contacts=300, seed=5, today=TODAY)
    second = build_demo(workspace=other_ws, contacts=300, seed=5, today=TODAY)

    def orders(w):
        return list(
            Order.objects.filter(workspace=w)
            .order_by("order_no")
            .values_list("order_no", "paid_at", "amount", "gross_amount")
        )

    assert first.orders == second.orders > 0
    assert orders(ws) == orders(other_ws)


@pytest.mark.django_db
def test_a_tiny_demo_still_builds(ws):
    summary = build_demo(workspace=ws, contacts=3, seed=1, today=TODAY)

    assert summary.contacts == Contact.objects.filter(workspace=ws).count() == 3
    assert summary.merges == 0
    assert Store.objects.filter(workspace=ws).count() == summary.stores >= 9
