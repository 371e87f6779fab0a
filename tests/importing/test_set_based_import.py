"""Orders and events files with rows in every spelling the schema allows, and near misses.

On PostgreSQL clean CSV rows are written set-at-a-time in SQL and the rest row by row; these tests
pin what a user sees — what is stored, what is refused and why — so it is the same on either
database and whichever way a row went."""

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal

from siyu.commerce.models import Order, OrderItem
from siyu.contacts import pii
from siyu.contacts.identities import normalise_identity
from siyu.contacts.models import Consent, Contact, Identity
from siyu.events.models import Event
from siyu.importing import run_import
from tests import factories

PAID = "2026-03-01T10:00:00+08:00"


def write_csv(path, header, rows):
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


ORDER_HEADER = [
    "order_no",
    "contact_id",
    "contact_phone",
    "contact_wechat_openid",
    "contact_wechat_app_id",
    "channel",
    "platform",
    "store_code",
    "staff_code",
    "paid_at",
    "gross_amount",
    "discount_amount",
    "amount",
    "items",
]


def items(*entries):
    return json.dumps(list(entries), ensure_ascii=False)


def test_orders_in_every_accepted_spelling_store_the_same_values(ws, tmp_path):
    phone_owner = factories.contact(ws, phone="13800000101")
    by_id = factories.contact(ws, phone="13800000102")
    openid_owner = factories.contact(ws, phone="13800000103")
    openid = normalise_identity("wechat_openid", "o-1", "wxAPP")
    openid_owner.identities.create(
        workspace=ws,
        kind=openid.kind,
        app_id=openid.app_id,
        value_hash=openid.value_hash,
        value=openid.stored_value(),
        display=openid.display(),
    )
    store = factories.store(ws, code="SH01")
    staff = factories.staff(ws, store_obj=store, code="E1")
    apple = factories.product(ws, sku="APPLE")
    rows = [
        # line 2: items as strings, amount given
        ["N1", "", "13800000101", "", "", "store", "", "SH01", "E1", PAID, "", "", "30.00",
         items({"sku": "APPLE", "quantity": 2, "unit_price": "15.00"})],
        # line 3: numbers, a name, an item amount, a discount, spaces around cells and the sku
        ["  N2 ", "", " 138 0000 0101 ", "", "", "mini_program", "wxshop", "", "",
         "2026-03-01T02:00:00Z", "", "1.5", "",
         items({"sku": " PEAR ", "name": "梨", "quantity": 3, "unit_price": 4.5, "amount": "13.50"})],
        # line 4: by contact_id, gross only, fractions of a second, no items
        ["N3", str(by_id.id), "", "", "", "delivery", "", "", "", "2026-03-01T10:00:00.250+08:00",
         "20", "0", "", ""],
        # line 5: empty item list, amount only, negative offset
        ["N4", "", "13800000101", "", "", "app", "", "", "", "2026-03-01T10:00:00-05:30", "", "",
         "9.9", "[]"],
        # line 6: by an app-scoped identity
        ["N5", "", "", "o-1", "wxAPP", "other", "", "", "", PAID, "", "", "1.00", ""],
        # line 7: a space instead of the T
        ["N6", "", "13800000101", "", "", "store", "", "", "", "2026-03-01 10:00:00+08:00", "", "",
         "2.00", ""],
        # line 8: an amount that does not add up
        ["N7", "", "13800000101", "", "", "store", "", "", "", PAID, "", "", "31.00",
         items({"sku": "APPLE", "quantity": 2, "unit_price": "15.00"})],
        # line 9: an item with a field the schema does not know
        ["N8", "", "13800000101", "", "", "store", "", "", "", PAID, "", "", "",
         items({"sku": "APPLE", "quantity": 1, "unit_price": "1.00", "colour": "red"})],
        # line 10: a quantity that is not a whole number
        ["N9", "", "13800000101", "", "", "store", "", "", "", PAID, "", "", "",
         items({"sku": "APPLE", "quantity": 1.5, "unit_price": "1.00"})],
        # line 11: an unknown staff code
        ["N10", "", "13800000101", "", "", "store", "", "", "E404", PAID, "", "", "1.00", ""],
        # line 12: a day February does not have, in the same batch as good rows
        ["N11", "", "13800000101", "", "", "store", "", "", "", "2026-02-29T10:00:00+08:00", "",
         "", "1.00", ""],
        # line 13: no time zone
        ["N12", "", "13800000101", "", "", "store", "", "", "", "2026-03-01T10:00:00", "", "",
         "1.00", ""],
        # line 14: items that are not JSON
        ["N13", "", "13800000101", "", "", "store", "", "", "", PAID, "", "", "", "[{sku: 1}]"],
        # line 15: an unknown contact_id
        ["N14", "999999999", "", "", "", "store", "", "", "", PAID, "", "", "1.00", ""],
        # line 16: hour 24
        ["N15", "", "13800000101", "", "", "store", "", "", "", "2026-03-01T24:00:00+08:00", "",
         "", "1.00", ""],
    ]  # fmt: skip
    path = write_csv(tmp_path / "orders.csv", ORDER_HEADER, rows)

    report = run_import(workspace=ws, entity="orders", path=path)
    again = run_import(workspace=ws, entity="orders", path=path)

    assert (report.total, report.created, report.rejected) == (15, 6, 9)
    assert [line for line, _ in report.errors] == [8, 9, 10, 11, 12, 13, 14, 15, 16]
    reasons = dict(report.errors)
    assert reasons[8] == "amount 31.00 != gross_amount 30.00 - discount_amount 0.00"
    assert reasons[9] == "items.0.colour: unknown field"
    assert reasons[10].startswith("items.0.quantity: input should be a valid integer")
    assert reasons[11] == "staff_code: unknown staff code 'E404'"
    assert reasons[12].startswith("paid_at: 2026-02-29T10:00:00+08:00 is not a valid date")
    assert reasons[13].startswith("paid_at: ") and "time zone offset" in reasons[13]
    assert reasons[14].startswith("items: not valid JSON")
    assert reasons[15] == "contact_id: unknown contact_id 999999999"
    assert reasons[16].startswith("paid_at: 2026-03-01T24:00:00+08:00 is not a valid date")
    assert (again.created, again.unchanged, again.rejected) == (0, 6, 9)
    orders = {
        o.order_no: o
        for o in Order.objects.filter(workspace=ws).select_related("contact", "store", "staff")
    }
    assert sorted(orders) == ["N1", "N2", "N3", "N4", "N5", "N6"]
    assert [orders[n].contact_id for n in sorted(orders)] == [
        phone_owner.id,
        phone_owner.id,
        by_id.id,
        phone_owner.id,
        openid_owner.id,
        phone_owner.id,
    ]
    n1, n2, n3, n4 = orders["N1"], orders["N2"], orders["N3"], orders["N4"]
    assert (n1.store_id, n1.staff_id, n1.gross_amount, n1.amount, n1.status) == (
        store.id,
        staff.id,
        Decimal("30.00"),
        Decimal("30.00"),
        "paid",
    )
    assert (n2.channel, n2.platform, n2.gross_amount, n2.discount_amount, n2.amount) == (
        "mini_program",
        "wxshop",
        Decimal("13.50"),
        Decimal("1.50"),
        Decimal("12.00"),
    )
    assert n2.paid_at == datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    assert n3.paid_at == datetime(2026, 3, 1, 2, 0, 0, 250000, tzinfo=UTC)
    assert (n3.gross_amount, n3.amount, n3.items.count()) == (Decimal("20.00"), Decimal("20.00"), 0)
    assert n4.paid_at == datetime(2026, 3, 1, 15, 30, tzinfo=UTC)
    assert (n4.amount, n4.refunded_amount) == (Decimal("9.90"), Decimal("0.00"))
    assert list(
        OrderItem.objects.filter(workspace=ws)
        .order_by("order__order_no")
        .values_list(
            "order__order_no", "product_id", "sku", "name", "quantity", "unit_price", "amount"
        )
    ) == [
        ("N1", apple.id, "APPLE", "", 2, Decimal("15.00"), Decimal("30.00")),
        ("N2", None, "PEAR", "梨", 3, Decimal("4.50"), Decimal("13.50")),
    ]


def test_an_order_number_repeated_in_a_batch_or_a_later_one_is_refused_naming_the_first(
    ws, tmp_path
):
    factories.contact(ws, phone="13800000111")
    rows = [
        ["R1", "13800000111", "store", PAID, "1.00"],
        ["R2", "13800000111", "store", PAID, "1.00"],
        ["R2", "13800000111", "store", PAID, "2.00"],
        ["R3", "13800000111", "store", "not a date", "1.00"],
        ["R3", "13800000111", "store", PAID, "3.00"],
        ["R4", "13800000111", "store", PAID, "1.00"],
        ["R1", "13800000111", "store", PAID, "1.00"],
    ]
    path = write_csv(
        tmp_path / "o.csv", ["order_no", "contact_phone", "channel", "paid_at", "amount"], rows
    )

    report = run_import(workspace=ws, entity="orders", path=path, batch_size=3)

    assert report.errors == [
        (4, "order_no: 'R2' already appears on line 3"),
        (5, "paid_at: not a date is not a valid date (invalid character in year)"),
        (8, "order_no: 'R1' already appears on line 2"),
    ]
    assert dict(Order.objects.filter(workspace=ws).values_list("order_no", "amount")) == {
        "R1": Decimal("1.00"),
        "R2": Decimal("1.00"),
        "R3": Decimal("3.00"),
        "R4": Decimal("1.00"),
    }


def test_events_in_every_accepted_spelling_store_the_same_values(ws, tmp_path):
    contact = factories.contact(ws, phone="13800000121")
    header = [
        "event_id",
        "type",
        "name",
        "contact_phone",
        "occurred_at",
        "channel",
        "duration_seconds",
        "properties",
    ]
    rows = [
        ["V1", "page_view", "", "13800000121", PAID, "h5", "", ""],
        ["V2", "custom", "抽奖", "13800000121", "2026-03-01T02:00:00Z", "", "0",
         json.dumps({"prize": "杯子", "tags": ["a", 1, None], "where": {"x": 1.5}}, ensure_ascii=False)],
        ["V3", "content_view", "", "13800000121", PAID, "", "86400", '{"n": 1e3}'],
        ["V4", "custom", "", "13800000121", PAID, "", "", ""],
        ["V5", "page_view", "", "13800000121", "2999-01-01T00:00:00+08:00", "", "", ""],
        ["V6", "page_view", "", "13800000121", PAID, "", "86401", ""],
        ["V7", "page_view", "", "13800000121", PAID, "", "", "[1, 2]"],
        ["V8", "wave", "", "13800000121", PAID, "", "", ""],
        ["V9", "share", "", "13800000121", PAID, "", "", '{"deep": {"er": {"est": true}}}'],
    ]  # fmt: skip
    path = write_csv(tmp_path / "events.csv", header, rows)

    report = run_import(workspace=ws, entity="events", path=path)

    assert (report.created, report.rejected) == (4, 5)
    assert [line for line, _ in report.errors] == [5, 6, 7, 8, 9]
    reasons = dict(report.errors)
    assert reasons[5] == "custom events need a name"
    assert reasons[6] == "occurred_at: 2999-01-01T00:00:00+08:00 is in the future"
    assert (
        reasons[7] == "duration_seconds: input should be less than or equal to 86400, got '86401'"
    )
    assert reasons[8].startswith("properties: Input should be a valid dictionary")
    assert reasons[9].startswith("type: input should be 'page_view'")
    events = {e.event_id: e for e in Event.objects.filter(workspace=ws)}
    assert sorted(events) == ["V1", "V2", "V3", "V9"]
    assert {e.contact_id for e in events.values()} == {contact.id}
    assert (events["V1"].channel, events["V1"].duration_seconds, events["V1"].properties) == (
        "h5",
        None,
        {},
    )
    assert (events["V2"].name, events["V2"].duration_seconds) == ("抽奖", 0)
    assert events["V2"].occurred_at == datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    assert events["V2"].properties == {"prize": "杯子", "tags": ["a", 1, None], "where": {"x": 1.5}}
    assert events["V3"].properties == {"n": 1000.0}
    assert events["V9"].properties == {"deep": {"er": {"est": True}}}


def test_new_contacts_in_bulk_store_what_one_by_one_upserts_would(ws, tmp_path):
    store = factories.store(ws, code="SH01")
    existing = factories.contact(ws, phone="13800000131")
    header = [
        "phone",
        "member_no",
        "name",
        "city",
        "source_channel",
        "first_seen_at",
        "campaign",
        "first_touch_store_code",
        "store_code",
        "consent_sms",
        "attributes",
        "referred_by_phone",
    ]
    rows = [
        # line 2: new, nothing shared: written in bulk
        ["13800000132", "", "A", "上海", "store_qr", PAID, "spring", "SH01", "SH01", "granted",
         '{"vip": true}', ""],
        # line 3: new, but line 5 names it as referrer
        ["13800000133", "M-1", "B", "", "douyin", "", "", "", "", "opted_out", "", ""],
        # line 4: the stored contact, a new member number
        ["13800000131", "M-2", "", "", "", "", "", "", "", "", "", ""],
        # line 5: new, referred by line 3's phone
        ["13800000135", "", "D", "", "", "", "", "", "", "", "", "13800000133"],
        # lines 6 and 7: the same member number twice: one contact
        ["13800000136", "M-6", "E", "", "", "", "", "", "", "", "", ""],
        ["", "M-6", "", "杭州", "", "", "", "", "", "", "", ""],
        # line 8: refers to a contact the file only introduces on line 9
        ["13800000137", "", "F", "", "", "", "", "", "", "", "", "13800000138"],
        ["13800000138", "", "G", "", "", "", "", "", "", "", "", ""],
        # line 10: new, nothing shared: written in bulk
        ["13800000139", "M-9", "H", "", "wecom", "", "", "", "", "opted_out", "", ""],
    ]  # fmt: skip
    path = write_csv(tmp_path / "contacts.csv", header, rows)

    report = run_import(workspace=ws, entity="contacts", path=path)
    # Line 8's referrer did not exist yet when line 8 was read.
    referred_first = Contact.objects.get(workspace=ws, name="F").referred_by_id
    again = run_import(workspace=ws, entity="contacts", path=path)

    assert (report.created, report.updated, report.unchanged, report.rejected) == (7, 2, 0, 0)
    assert referred_first is None
    # Now it does: line 8 gains its referrer; nothing else changes.
    assert (again.created, again.updated, again.unchanged) == (0, 1, 8)
    contacts = {c.name or c.phone_masked: c for c in Contact.objects.filter(workspace=ws)}
    assert sorted(contacts) == ["138****0131", "A", "B", "D", "E", "F", "G", "H"]
    a, b, d, e, f, g, h = (contacts[n] for n in "ABDEFGH")
    assert (a.phone_masked, a.city, a.source_channel, a.first_touch_campaign) == (
        "138****0132",
        "上海",
        "store_qr",
        "spring",
    )
    assert (a.store_id, a.first_touch_store_id, a.attributes) == (store.id, store.id, {"vip": True})
    assert a.first_seen_at == datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    assert (b.member_no, b.source_channel, d.referred_by_id) == ("M-1", "douyin", b.id)
    assert (e.member_no, e.city) == ("M-6", "杭州")
    assert (f.referred_by_id, g.referred_by_id) == (g.id, None)
    assert (h.member_no, h.source_channel, h.phone_masked) == ("M-9", "wecom", "138****0139")
    assert contacts["138****0131"].id == existing.id
    assert contacts["138****0131"].member_no == "M-2"
    assert sorted(
        Consent.objects.filter(workspace=ws).values_list(
            "contact_id", "channel", "status", "source"
        )
    ) == sorted(
        [
            (a.id, "sms", "granted", "upsert"),
            (b.id, "sms", "opted_out", "upsert"),
            (h.id, "sms", "opted_out", "upsert"),
        ]
    )
    assert sorted(
        Identity.objects.filter(workspace=ws).values_list("contact_id", "kind", "display")
    ) == sorted(
        [
            (existing.id, "phone", "138****0131"),
            (existing.id, "member_no", "M-2"),
            (a.id, "phone", "138****0132"),
            (b.id, "phone", "138****0133"),
            (b.id, "member_no", "M-1"),
            (d.id, "phone", "138****0135"),
            (e.id, "phone", "138****0136"),
            (e.id, "member_no", "M-6"),
            (f.id, "phone", "138****0137"),
            (g.id, "phone", "138****0138"),
            (h.id, "phone", "138****0139"),
            (h.id, "member_no", "M-9"),
        ]
    )
    assert pii.decrypt(h.phone_enc) == "+8613800000139"
