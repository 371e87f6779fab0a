from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from siyu.commerce.models import Order, OrderItem, Refund
from siyu.commerce.schemas import OrderIn, StaffIn
from siyu.commerce.services import orders_ingest, prepare_orders, staff_upsert, write_orders
from siyu.errors import ValidationFailed
from tests import factories

PAID = datetime(2026, 3, 3, 10, tzinfo=UTC)


def _order(**kw):
    base = {
        "order_no": "O1",
        "contact": {"kind": "phone", "value": "13900000001"},
        "channel": "store",
        "paid_at": PAID,
        "items": [{"sku": "CHERRY", "quantity": 2, "unit_price": "59.90"}],
        "discount_amount": "10.00",
    }
    return OrderIn(**{**base, **kw})


@pytest.fixture
def buyer(ws):
    factories.product(ws, sku="CHERRY", price="59.90")
    return factories.contact(ws, phone="13900000001")


@pytest.mark.django_db
def test_order_money_is_exact_and_items_link_products(ws, buyer):
    result = orders_ingest(workspace=ws, items=[_order()])
    order = Order.objects.get(workspace=ws, order_no="O1")
    assert result.created == 1
    assert (order.gross_amount, order.discount_amount, order.amount) == (
        Decimal("119.80"),
        Decimal("10.00"),
        Decimal("109.80"),
    )
    assert order.contact_id == buyer.id
    assert OrderItem.objects.get(order=order).product.sku == "CHERRY"


@pytest.mark.django_db
def test_an_order_another_writer_stored_meanwhile_is_skipped_with_its_items_and_refunds(ws, buyer):
    refund = {"refund_no": "R2", "amount": "5.00", "refunded_at": PAID}
    prepared, errors = prepare_orders(
        workspace=ws, items=[_order(), _order(order_no="O2", refunds=[refund])]
    )
    factories.order(ws, buyer, order_no="O2", amount="1.00")

    result = write_orders(workspace=ws, prepared=prepared)

    assert (errors, result.created, result.unchanged) == ([], 1, 1)
    assert sorted(
        Order.objects.filter(workspace=ws).values_list(
            "order_no", "amount", "refunded_amount", "status"
        )
    ) == [
        ("O1", Decimal("109.80"), Decimal("0.00"), "paid"),
        ("O2", Decimal("1.00"), Decimal("0.00"), "paid"),
    ]
    assert list(
        OrderItem.objects.filter(workspace=ws).values_list("order__order_no", "sku", "amount")
    ) == [("O1", "CHERRY", Decimal("119.80"))]
    assert Refund.objects.filter(workspace=ws).count() == 0


@pytest.mark.django_db
def test_sending_the_same_order_twice_changes_nothing(ws, buyer):
    orders_ingest(workspace=ws, items=[_order()])
    again = orders_ingest(workspace=ws, items=[_order()])
    assert (again.created, again.unchanged) == (0, 1)
    assert Order.objects.count() == 1 and OrderItem.objects.count() == 1


@pytest.mark.django_db
def test_refunds_arrive_later_and_update_the_status(ws, buyer):
    orders_ingest(workspace=ws, items=[_order()])
    refund = {"refund_no": "R1", "amount": "9.80", "refunded_at": PAID}
    orders_ingest(workspace=ws, items=[_order(refunds=[refund])])
    order = Order.objects.get(order_no="O1")
    assert (order.refunded_amount, order.status) == (Decimal("9.80"), "partially_refunded")
    orders_ingest(
        workspace=ws,
        items=[
            _order(refunds=[refund, {"refund_no": "R2", "amount": "100.00", "refunded_at": PAID}])
        ],
    )
    order.refresh_from_db()
    assert (order.refunded_amount, order.status) == (Decimal("109.80"), "refunded")
    orders_ingest(workspace=ws, items=[_order(refunds=[refund])])
    assert Refund.objects.count() == 2


@pytest.mark.django_db
def test_refunds_beyond_the_amount_paid_are_refused_and_nothing_changes(ws, buyer):
    orders_ingest(
        workspace=ws,
        items=[_order(refunds=[{"refund_no": "R1", "amount": "100.00", "refunded_at": PAID}])],
    )
    with pytest.raises(
        ValidationFailed, match=r"refunds of order O1 would total 110.00, more than the 109.80 paid"
    ):
        orders_ingest(
            workspace=ws,
            items=[_order(refunds=[{"refund_no": "R2", "amount": "10.00", "refunded_at": PAID}])],
        )
    assert list(Refund.objects.values_list("refund_no", flat=True)) == ["R1"]
    assert Order.objects.get(order_no="O1").refunded_amount == Decimal("100.00")


@pytest.mark.django_db
def test_an_order_for_an_unknown_identity_names_it(ws, buyer):
    with pytest.raises(ValidationFailed) as exc:
        orders_ingest(
            workspace=ws,
            items=[
                _order(),
                _order(order_no="O2", contact={"kind": "phone", "value": "13911112222"}),
            ],
        )
    assert exc.value.path == "1.contact"
    assert "unknown contact identity phone:139****2222" in exc.value.message
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_partial_mode_keeps_good_orders(ws, buyer):
    result = orders_ingest(
        workspace=ws,
        partial=True,
        items=[_order(), _order(order_no="O2", contact={"kind": "member_no", "value": "nobody"})],
    )
    assert result.created == 1 and [(e.index, e.path) for e in result.errors] == [(1, "contact")]


@pytest.mark.django_db
def test_duplicate_order_no_in_one_batch(ws, buyer):
    with pytest.raises(ValidationFailed, match="'O1' appears more than once in this batch"):
        orders_ingest(workspace=ws, items=[_order(), _order()])


def test_amounts_must_add_up():
    with pytest.raises(
        ValidationError, match=r"amount 100.00 != gross_amount 119.80 - discount_amount 10.00"
    ):
        _order(amount="100.00")
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        _order(discount_amount="-1")
    with pytest.raises(ValidationError, match="timestamp needs a time zone"):
        _order(paid_at="2026-03-03T10:00:00")
    with pytest.raises(ValidationError):
        _order(paid_at="2026-02-30T10:00:00+08:00")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        _order(colour="red")


@pytest.mark.django_db
def test_orders_of_one_workspace_never_resolve_another_workspaces_contact(ws, other_ws, buyer):
    factories.product(other_ws, sku="CHERRY")
    with pytest.raises(ValidationFailed, match="unknown contact identity"):
        orders_ingest(workspace=other_ws, items=[_order()])


@pytest.mark.django_db
def test_staff_errors_name_the_right_item(ws):
    factories.store(ws, code="SH01")
    result = staff_upsert(
        workspace=ws,
        items=[
            StaffIn(code="E1", name="a", store_code="NOPE"),
            StaffIn(code="E2", name="b", store_code="SH01"),
            StaffIn(code="E2", name="c", store_code="SH01"),
        ],
    )
    assert [(e.index, e.path) for e in result.errors] == [(0, "store_code"), (2, "code")]
    assert result.created == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("gross", "discount"),
    [("0.30", "0.10"), ("19.90", "10.00"), ("1234.57", "0.99"), ("0.03", "0.01")],
)
def test_any_exact_discount_is_stored_on_every_database(ws, buyer, gross, discount):
    result = orders_ingest(
        workspace=ws, items=[_order(items=[], gross_amount=gross, discount_amount=discount)]
    )
    assert result.created == 1
    order = Order.objects.get(order_no="O1")
    assert order.amount == Decimal(gross) - Decimal(discount)
