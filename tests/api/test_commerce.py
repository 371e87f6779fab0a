from decimal import Decimal

import pytest

from siyu.commerce.models import Order, OrderItem, Product, Refund, Staff, Store
from tests import factories
from tests.api.helpers import PHONE, errors, order, post, put


@pytest.fixture
def known(ws):
    return factories.contact(ws, phone=PHONE)


def _refund(refund_no: str, amount: str) -> dict:
    return {"refund_no": refund_no, "amount": amount, "refunded_at": "2026-03-02T09:00:00+08:00"}


@pytest.mark.django_db
def test_posting_the_same_orders_twice_changes_nothing_the_second_time(api, known):
    batch = [order("O-1"), order("O-2", refunds=[_refund("R-1", "5.00")])]
    assert post(api, "/api/v1/orders", batch).json() == {"created": 2, "updated": 0, "unchanged": 0}
    assert post(api, "/api/v1/orders", batch).json() == {"created": 0, "updated": 0, "unchanged": 2}
    assert (Order.objects.count(), OrderItem.objects.count(), Refund.objects.count()) == (2, 2, 1)


@pytest.mark.django_db
def test_money_round_trips_exactly(api, known):
    items = [
        {"sku": "A", "quantity": 3, "unit_price": "19.90"},
        {"sku": "B", "quantity": 1, "unit_price": "0.10"},
        {"sku": "C", "quantity": 1, "unit_price": "0.20"},
    ]
    post(api, "/api/v1/orders", [order("O-1", items=items, discount_amount="0.30")])
    body = api.get("/api/v1/orders/O-1").json()
    assert (body["gross_amount"], body["discount_amount"], body["amount"]) == (
        "60.00",
        "0.30",
        "59.70",
    )
    assert [(i["unit_price"], i["amount"]) for i in body["items"]] == [
        ("19.90", "59.70"),
        ("0.10", "0.10"),
        ("0.20", "0.20"),
    ]
    assert Order.objects.get().amount == Decimal("59.70")


@pytest.mark.django_db
def test_a_float_with_binary_noise_is_refused_not_rounded(api, known):
    response = post(
        api,
        "/api/v1/orders",
        [order("O-1", items=[{"sku": "A", "quantity": 1, "unit_price": 0.1 + 0.2}])],
    )
    assert errors(response) == [
        {
            "path": "0.items.0.unit_price",
            "message": "Decimal input should have no more than 14 digits in total",
        }
    ]
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_order_shows_codes_and_times_in_the_workspace_zone(api, ws, known):
    factories.store(ws, code="SH-01")
    post(api, "/api/v1/orders", [order("O-1", store_code="SH-01", paid_at="2026-03-01T04:30:00Z")])
    body = api.get("/api/v1/orders/O-1").json()
    assert body["contact_id"] == known.id
    assert body["store_code"] == "SH-01" and body["staff_code"] is None
    assert body["paid_at"] == "2026-03-01T12:30:00+08:00"
    assert body["status"] == "paid"


@pytest.mark.django_db
def test_every_bad_order_is_named_and_none_is_stored(api, known):
    batch = [
        order("O-1"),
        order("O-2", items=[{"sku": "A", "quantity": 1, "unit_price": "-1.00"}]),
        order("O-3", paid_at="2026-02-30T10:00:00+08:00"),
        order("O-4", items=[{"sku": "A", "quantity": "two", "unit_price": "1.00"}]),
    ]
    assert errors(post(api, "/api/v1/orders", batch)) == [
        {"path": "1.items.0.unit_price", "message": "Input should be greater than or equal to 0"},
        {
            "path": "2.paid_at",
            "message": "Input should be a valid datetime or date, day value is outside expected range",
        },
        {
            "path": "3.items.0.quantity",
            "message": "Input should be a valid integer, unable to parse string as an integer",
        },
    ]
    batch = [
        order("O-1"),
        order("O-2", phone="13900000000"),
        order("O-1"),
        order("O-4", store_code="NOPE"),
    ]
    assert errors(post(api, "/api/v1/orders", batch)) == [
        {
            "path": "1.contact",
            "message": "unknown contact identity phone:139****0000; upsert the contact first",
        },
        {
            "path": "2.order_no",
            "message": "'O-1' appears more than once in this batch (first at item 0)",
        },
        {"path": "3.store_code", "message": "unknown store code 'NOPE'"},
    ]
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_amounts_that_do_not_add_up_are_refused(api, known):
    response = post(api, "/api/v1/orders", [order("O-1", amount="10.00")])
    assert errors(response) == [
        {"path": "0", "message": "amount 10.00 != gross_amount 19.90 - discount_amount 0.00"}
    ]


@pytest.mark.django_db
def test_refund_partly_then_fully_moves_the_status(api, known):
    post(api, "/api/v1/orders", [order("O-1")])
    partial = post(api, "/api/v1/orders/O-1/refunds", [_refund("R-1", "4.90")]).json()
    assert (
        partial["created"],
        partial["order"]["status"],
        partial["order"]["refunded_amount"],
    ) == (
        1,
        "partially_refunded",
        "4.90",
    )
    full = post(
        api, "/api/v1/orders/O-1/refunds", [_refund("R-1", "4.90"), _refund("R-2", "15.00")]
    ).json()
    assert (full["created"], full["unchanged"]) == (1, 1)
    assert (full["order"]["status"], full["order"]["refunded_amount"]) == ("refunded", "19.90")
    assert [r["refund_no"] for r in full["order"]["refunds"]] == ["R-1", "R-2"]


@pytest.mark.django_db
def test_resending_a_refund_changes_nothing(api, known):
    post(api, "/api/v1/orders", [order("O-1")])
    post(api, "/api/v1/orders/O-1/refunds", [_refund("R-1", "4.90")])
    again = post(api, "/api/v1/orders/O-1/refunds", [_refund("R-1", "4.90")]).json()
    assert (again["created"], again["unchanged"], again["order"]["refunded_amount"]) == (
        0,
        1,
        "4.90",
    )
    assert Refund.objects.count() == 1


@pytest.mark.django_db
def test_refunds_beyond_the_amount_paid_are_refused_and_nothing_changes(api, known):
    post(api, "/api/v1/orders", [order("O-1", refunds=[_refund("R-1", "10.00")])])
    response = post(
        api, "/api/v1/orders/O-1/refunds", [_refund("R-2", "5.00"), _refund("R-3", "4.91")]
    )
    assert response.status_code == 422
    assert response.json() == {
        "code": "refund_exceeds_amount",
        "detail": "refunds of order O-1 would total 19.91, more than the 19.90 paid",
    }
    order_row = Order.objects.get()
    assert (order_row.refunded_amount, order_row.status, Refund.objects.count()) == (
        Decimal("10.00"),
        "partially_refunded",
        1,
    )


@pytest.mark.django_db
def test_bad_refunds_are_named(api, known):
    post(api, "/api/v1/orders", [order("O-1", refunds=[_refund("R-1", "1.00")]), order("O-2")])
    response = post(
        api,
        "/api/v1/orders/O-2/refunds",
        [_refund("R-1", "1.00"), _refund("R-2", "0"), _refund("R-3", "1.00")],
    )
    assert errors(response) == [{"path": "1", "message": "refund amount must be greater than 0"}]
    response = post(
        api,
        "/api/v1/orders/O-2/refunds",
        [_refund("R-1", "1.00"), _refund("R-3", "1.00"), _refund("R-3", "1.00")],
    )
    assert errors(response) == [
        {"path": "0.refund_no", "message": "refund_no 'R-1' already belongs to another order"},
        {
            "path": "2.refund_no",
            "message": "'R-3' appears more than once in this batch (first at item 1)",
        },
    ]
    assert Refund.objects.count() == 1


@pytest.mark.django_db
def test_another_workspaces_order_is_not_found_and_not_refunded(api, other_api, other_ws):
    factories.contact(other_ws, phone=PHONE)
    post(other_api, "/api/v1/orders", [order("O-1")])

    assert api.get("/api/v1/orders/O-1").status_code == 404
    response = post(api, "/api/v1/orders/O-1/refunds", [_refund("R-1", "1.00")])

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Order O-1 not found."}
    assert Refund.objects.count() == 0
    assert Order.objects.get(workspace=other_ws).status == "paid"


@pytest.mark.django_db
def test_catalogue_upserts_are_idempotent(api, ws):
    stores = [{"code": "SH-01", "name": "上海一店", "city": "上海"}]
    staff = [{"code": "E-1", "name": "小张", "store_code": "SH-01"}]
    products = [{"sku": "FRUIT-1", "name": "阳光玫瑰", "price": "39.90", "cost": "21.35"}]
    for url, batch in (
        ("/api/v1/stores", stores),
        ("/api/v1/staff", staff),
        ("/api/v1/products", products),
    ):
        assert put(api, url, batch).json() == {"created": 1, "updated": 0, "unchanged": 0}
        assert put(api, url, batch).json() == {"created": 0, "updated": 0, "unchanged": 1}
    products[0]["price"] = "35.00"
    assert put(api, "/api/v1/products", products).json() == {
        "created": 0,
        "updated": 1,
        "unchanged": 0,
    }
    assert Product.objects.get(workspace=ws).price == Decimal("35.00")
    assert Staff.objects.get(workspace=ws).store.code == "SH-01"


@pytest.mark.django_db
def test_a_catalogue_batch_with_a_bad_item_writes_nothing(api, ws):
    response = put(
        api,
        "/api/v1/stores",
        [{"code": "SH-01", "name": "一店"}, {"code": "SH-01", "name": "二店"}],
    )
    assert errors(response) == [
        {
            "path": "1.code",
            "message": "'SH-01' appears more than once in this batch (first at item 0)",
        }
    ]
    response = put(
        api,
        "/api/v1/staff",
        [{"code": "E-1", "name": "小张"}, {"code": "E-2", "name": "小李", "store_code": "NOPE"}],
    )
    assert errors(response) == [{"path": "1.store_code", "message": "unknown store code 'NOPE'"}]
    response = put(api, "/api/v1/products", [{"sku": "A", "name": "x", "price": "-0.01"}])
    assert errors(response) == [
        {"path": "0.price", "message": "Input should be greater than or equal to 0"}
    ]
    assert (Store.objects.count(), Staff.objects.count(), Product.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
def test_catalogue_writes_stay_in_the_keys_workspace(api, other_ws):
    factories.store(other_ws, code="SH-01", name="别家的店")
    assert put(api, "/api/v1/stores", [{"code": "SH-01", "name": "我的店"}]).json()["created"] == 1
    assert Store.objects.get(workspace=other_ws).name == "别家的店"
