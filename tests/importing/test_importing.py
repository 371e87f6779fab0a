import csv
import json
import tracemalloc
from decimal import Decimal

import pytest

from siyu.commerce.models import Order, OrderItem, Product, Refund, Staff, Store
from siyu.contacts.models import Consent, Contact, ContactMerge
from siyu.errors import ValidationFailed
from siyu.events.models import Event
from siyu.importing import run_import
from tests import factories

PAID = "2026-03-01T10:00:00+08:00"


def write_csv(path, header, rows, encoding="utf-8"):
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_rejects(path):
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


class Recorder:
    def __init__(self):
        self.calls = []

    def start(self, label, total):
        self.calls.append(("start", label, total))

    def advance(self, n=1):
        self.calls.append(("advance", n))


ORDER_HEADER = [
    "order_no",
    "contact_phone",
    "channel",
    "paid_at",
    "amount",
    "discount_amount",
    "items",
    "refunds",
]


def test_orders_csv_keeps_good_rows_and_rejects_each_bad_one_with_its_line(ws, tmp_path):
    factories.contact(ws, phone="13800000001")
    factories.product(ws, sku="APPLE")
    items = json.dumps([{"sku": "APPLE", "quantity": 2, "unit_price": "15.00"}])
    refunds = json.dumps(
        [{"refund_no": "R1", "amount": "5.00", "refunded_at": "2026-03-02T10:00:00+08:00"}]
    )
    path = write_csv(
        tmp_path / "orders.csv",
        ORDER_HEADER,
        [
            ["A1", "13800000001", "store", PAID, "", "", items, refunds],  # line 2: items + refund
            ["A2", "13800000001", "store", "2026-02-30T10:00:00+08:00", "9.90", "", "", ""],
            ["A3", "13800000001", "store", PAID, "-1", "", "", ""],
            ["A4", "13999999999", "store", PAID, "9.90", "", "", ""],
            ["A1", "13800000001", "store", PAID, "30.00", "", "", ""],
            ["A5", "13800000001", "store", PAID, "abc", "", "", ""],
            ["A6", "13800000001", "mini_program", PAID, "9.90", "1.00", "", ""],
        ],
    )

    report = run_import(workspace=ws, entity="orders", path=path)

    assert (report.total, report.created, report.updated, report.unchanged, report.rejected) == (
        7,
        2,
        0,
        0,
        5,
    )
    assert report.errors == [
        (
            3,
            "paid_at: 2026-02-30T10:00:00+08:00 is not a valid date (day value is outside expected range)",
        ),
        (4, "amount: input should be greater than or equal to 0, got '-1'"),
        (5, "contact_phone: unknown contact identity phone:139****9999; upsert the contact first"),
        (6, "order_no: 'A1' already appears on line 2"),
        (7, "amount: input should be a valid decimal, got 'abc'"),
    ]
    a1 = Order.objects.get(workspace=ws, order_no="A1")
    assert (a1.gross_amount, a1.amount, a1.refunded_amount, a1.status) == (
        Decimal("30.00"),
        Decimal("30.00"),
        Decimal("5.00"),
        "partially_refunded",
    )
    assert list(
        OrderItem.objects.filter(order=a1).values_list("sku", "quantity", "amount", "product__sku")
    ) == [
        ("APPLE", 2, Decimal("30.00"), "APPLE"),
    ]
    assert list(Refund.objects.filter(order=a1).values_list("refund_no", "amount")) == [
        ("R1", Decimal("5.00"))
    ]
    a6 = Order.objects.get(workspace=ws, order_no="A6")
    assert (a6.gross_amount, a6.discount_amount, a6.amount) == (
        Decimal("10.90"),
        Decimal("1.00"),
        Decimal("9.90"),
    )
    rejects = read_rejects(tmp_path / "orders.rejects.csv")
    assert rejects[0] == [*ORDER_HEADER, "_line", "_error"]
    assert [(r[0], r[-2]) for r in rejects[1:]] == [
        ("A2", "3"),
        ("A3", "4"),
        ("A4", "5"),
        ("A1", "6"),
        ("A5", "7"),
    ]
    assert rejects[1][:4] == ["A2", "13800000001", "store", "2026-02-30T10:00:00+08:00"]
    assert report.rejects_path == tmp_path / "orders.rejects.csv"
    assert "line 3: paid_at: 2026-02-30T10:00:00+08:00 is not a valid date" in report.summary()


def test_rerunning_the_same_file_changes_nothing(ws, tmp_path):
    factories.contact(ws, phone="13800000001")
    path = write_csv(
        tmp_path / "orders.csv",
        ORDER_HEADER,
        [[f"B{i}", "13800000001", "store", PAID, "9.90", "", "", ""] for i in range(30)],
    )
    first = run_import(workspace=ws, entity="orders", path=path, batch_size=7)

    again = run_import(workspace=ws, entity="orders", path=path, batch_size=7)

    assert (first.created, first.unchanged) == (30, 0)
    assert (again.total, again.created, again.updated, again.unchanged, again.rejected) == (
        30,
        0,
        0,
        30,
        0,
    )
    assert Order.objects.filter(workspace=ws).count() == 30
    assert again.rejects_path is None


def test_a_refund_added_to_a_stored_order_on_rerun_counts_as_updated(ws, tmp_path):
    factories.contact(ws, phone="13800000001")
    header = ["order_no", "contact_phone", "channel", "paid_at", "amount", "refunds"]
    write_csv(tmp_path / "orders.csv", header, [["C1", "13800000001", "store", PAID, "20.00", ""]])
    run_import(workspace=ws, entity="orders", path=tmp_path / "orders.csv")
    refund = json.dumps(
        [{"refund_no": "CR1", "amount": "20.00", "refunded_at": "2026-03-03T10:00:00+08:00"}]
    )
    write_csv(
        tmp_path / "orders.csv", header, [["C1", "13800000001", "store", PAID, "20.00", refund]]
    )

    report = run_import(workspace=ws, entity="orders", path=tmp_path / "orders.csv")

    assert (report.created, report.updated, report.unchanged) == (0, 1, 0)
    assert Order.objects.get(workspace=ws, order_no="C1").status == "refunded"


def test_a_duplicate_in_a_later_batch_names_the_first_line(ws, tmp_path):
    factories.contact(ws, phone="13800000001")
    rows = [[f"D{i}", "13800000001", "store", PAID, "1.00", "", "", ""] for i in range(10)]
    rows.append(["D3", "13800000001", "store", PAID, "1.00", "", "", ""])
    path = write_csv(tmp_path / "orders.csv", ORDER_HEADER, rows)

    report = run_import(workspace=ws, entity="orders", path=path, batch_size=4)

    assert report.errors == [(12, "order_no: 'D3' already appears on line 5")]
    assert report.created == 10


def test_a_file_broken_midway_keeps_the_batches_before_it_and_names_the_line(ws, tmp_path):
    # On PostgreSQL the next batch is read while the one before it is written: the break must
    # still surface, after the batches before it are stored, and name its line.
    factories.contact(ws, phone="13800000001")
    rows = [[f"B{i}", "13800000001", "store", PAID, "1.00", "", "", ""] for i in range(5)]
    rows.append(["B5", "13800000001", "store", PAID, "1.00", "", "x" * (17 << 20), ""])
    path = write_csv(tmp_path / "orders.csv", ORDER_HEADER, rows)

    with pytest.raises(ValidationFailed) as raised:
        run_import(workspace=ws, entity="orders", path=path, batch_size=2)

    assert raised.value.message == "orders.csv line 7: field larger than field limit (16777216)"
    assert sorted(Order.objects.filter(workspace=ws).values_list("order_no", flat=True)) == [
        "B0",
        "B1",
        "B2",
        "B3",
    ]


def test_unknown_csv_column_refuses_the_file_naming_it(ws, tmp_path):
    path = write_csv(tmp_path / "orders.csv", [*ORDER_HEADER, "colour", "size"], [])

    with pytest.raises(ValidationFailed) as exc:
        run_import(workspace=ws, entity="orders", path=path)

    assert exc.value.message.startswith(
        "orders.csv: unknown column(s): 'colour', 'size' (expected columns: order_no, "
    )
    assert not Order.objects.filter(workspace=ws).exists()


def test_missing_required_csv_columns_are_listed(ws, tmp_path):
    path = write_csv(tmp_path / "events.csv", ["event_id", "type"], [["e1", "page_view"]])

    with pytest.raises(ValidationFailed) as exc:
        run_import(workspace=ws, entity="events", path=path)

    assert exc.value.message.startswith(
        "events.csv: missing required column(s): occurred_at; one of contact_id/contact_phone/contact_email/"
    )


@pytest.mark.parametrize(
    ("entity", "name", "message"),
    [
        (
            "customers",
            "x.csv",
            "unknown entity 'customers'; choose one of contacts, events, orders, products, stores, staff, spend",
        ),
        ("orders", "x.xlsx", "x.xlsx: expected a .csv or .jsonl file"),
    ],
)
def test_whole_file_problems_are_refused_with_a_clear_message(ws, tmp_path, entity, name, message):
    (tmp_path / name).write_text("order_no\n")

    with pytest.raises(ValidationFailed) as exc:
        run_import(workspace=ws, entity=entity, path=tmp_path / name)

    assert exc.value.message == message


def test_a_missing_file_is_refused(ws, tmp_path):
    with pytest.raises(ValidationFailed) as exc:
        run_import(workspace=ws, entity="orders", path=tmp_path / "nope.csv")

    assert exc.value.message == f"cannot read {tmp_path / 'nope.csv'}: No such file or directory"


def test_gbk_csv_from_excel_imports_chinese_names_and_says_it_transcoded(ws, tmp_path):
    path = write_csv(
        tmp_path / "会员.csv",
        ["phone", "name", "city"],
        [
            ["13800000011", "张三", "上海"],
            ["13800000012", "李四", "杭州"],
        ],
        encoding="gbk",
    )

    report = run_import(workspace=ws, entity="contacts", path=path)

    assert (report.created, report.rejected, report.encoding) == (2, 0, "gb18030")
    assert sorted(Contact.objects.filter(workspace=ws).values_list("name", "city")) == [
        ("张三", "上海"),
        ("李四", "杭州"),
    ]
    assert "Encoding: not UTF-8 (line 2); read as GB18030/GBK." in report.summary()


def test_explicit_encoding_is_honoured_and_a_wrong_one_is_refused(ws, tmp_path):
    path = write_csv(
        tmp_path / "c.csv", ["phone", "name"], [["13800000011", "王五"]], encoding="gbk"
    )

    report = run_import(workspace=ws, entity="contacts", path=path, encoding="gbk")
    with pytest.raises(ValidationFailed) as exc:
        run_import(workspace=ws, entity="contacts", path=path, encoding="utf-8")

    assert Contact.objects.get(workspace=ws).name == "王五"
    assert report.encoding_note == ""
    assert exc.value.message == "c.csv is not valid utf-8: line 2 does not decode"


def test_utf8_bom_header_is_read_as_column_names(ws, tmp_path):
    path = write_csv(
        tmp_path / "stores.csv", ["code", "name"], [["SH01", "上海店"]], encoding="utf-8-sig"
    )

    report = run_import(workspace=ws, entity="stores", path=path)

    assert report.created == 1
    assert Store.objects.get(workspace=ws).name == "上海店"


def test_contacts_merge_across_rows_that_share_an_identity(ws, tmp_path):
    path = write_csv(
        tmp_path / "contacts.csv",
        ["phone", "member_no", "email", "name", "consent_sms"],
        [
            ["13800000021", "", "", "Li", "granted"],
            ["", "M-9", "li@example.com", "", ""],
            ["13800000021", "M-9", "", "", ""],
            ["12345", "", "", "Bad", ""],
        ],
    )

    report = run_import(workspace=ws, entity="contacts", path=path)

    assert (report.total, report.created, report.updated, report.rejected) == (4, 2, 1, 1)
    assert report.errors == [
        (5, "phone: '12345' is not a valid phone number (mainland mobile or +country code).")
    ]
    contact = Contact.objects.get(workspace=ws)
    assert (contact.name, contact.member_no, contact.phone_masked) == ("Li", "M-9", "138****0021")
    assert contact.identities.count() == 3
    assert ContactMerge.objects.filter(workspace=ws, survivor=contact).count() == 1
    assert Consent.objects.get(contact=contact).status == "granted"


def test_contacts_rerun_is_unchanged_and_a_changed_field_is_updated(ws, tmp_path):
    store = factories.store(ws, code="SH01")
    header = ["phone", "name", "store_code", "campaign", "consent_sms"]
    path = write_csv(
        tmp_path / "c.csv",
        header,
        [
            ["13800000031", "A", "SH01", "spring", "granted"],
            ["13800000032", "B", "", "", ""],
        ],
    )
    run_import(workspace=ws, entity="contacts", path=path)
    again = run_import(workspace=ws, entity="contacts", path=path)
    write_csv(
        tmp_path / "c.csv",
        header,
        [
            ["13800000031", "A", "SH01", "spring", "opted_out"],
            ["13800000032", "B2", "", "", ""],
            ["13800000033", "C", "NOPE", "", ""],
        ],
    )

    changed = run_import(workspace=ws, entity="contacts", path=path)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert (changed.created, changed.updated, changed.unchanged, changed.rejected) == (0, 2, 0, 1)
    assert changed.errors == [(4, "store_code: unknown store code 'NOPE'")]
    a = Contact.objects.get(workspace=ws, name="A")
    assert (a.store_id, a.first_touch_campaign) == (store.id, "spring")


def test_events_jsonl_rejects_a_broken_line_and_an_unknown_field(ws, tmp_path):
    factories.contact(ws, phone="13800000041")
    contact = {"kind": "phone", "value": "13800000041"}
    lines = [
        json.dumps(
            {"event_id": "e1", "type": "page_view", "contact": contact, "occurred_at": PAID}
        ),
        '{"event_id": "e2", "type": ',
        "",
        json.dumps(
            {
                "event_id": "e3",
                "type": "share",
                "contact": contact,
                "occurred_at": PAID,
                "colour": "red",
            }
        ),
        json.dumps(
            {
                "event_id": "e4",
                "type": "custom",
                "name": "抽奖",
                "contact": contact,
                "occurred_at": PAID,
                "properties": {"prize": "杯子"},
            },
            ensure_ascii=False,
        ),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    report = run_import(workspace=ws, entity="events", path=path)

    assert (report.created, report.rejected) == (2, 2)
    assert report.errors == [
        (2, "not valid JSON (Expecting value at character 26)"),
        (4, "colour: unknown field"),
    ]
    assert Event.objects.get(workspace=ws, event_id="e4").properties == {"prize": "杯子"}
    rejects = [
        json.loads(x)
        for x in (tmp_path / "events.rejects.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert rejects == [
        {
            "_line": 2,
            "_error": "not valid JSON (Expecting value at character 26)",
            "_raw": '{"event_id": "e2", "type":',
        },
        {
            "event_id": "e3",
            "type": "share",
            "contact": contact,
            "occurred_at": PAID,
            "colour": "red",
            "_line": 4,
            "_error": "colour: unknown field",
        },
    ]


def test_events_csv_with_multiline_cell_reports_the_line_the_record_starts_on(ws, tmp_path):
    factories.contact(ws, phone="13800000051")
    header = ["event_id", "type", "contact_phone", "occurred_at", "properties"]
    path = write_csv(
        tmp_path / "events.csv",
        header,
        [
            [
                "m1",
                "search",
                "13800000051",
                PAID,
                json.dumps({"q": "芒果", "page": 2}, indent=1, ensure_ascii=False),
            ],
            ["m2", "search", "13800000051", "yesterday", ""],
            ["m3", "search", "13800000051", PAID, "{not json"],
        ],
    )

    report = run_import(workspace=ws, entity="events", path=path)

    assert report.errors == [
        (6, "occurred_at: yesterday is not a valid date (input is too short)"),
        (
            7,
            "properties: not valid JSON (Expecting property name enclosed in double quotes at character 1)",
        ),
    ]
    assert Event.objects.get(workspace=ws, event_id="m1").properties == {"q": "芒果", "page": 2}


def test_a_corrected_rejects_file_can_be_imported_again(ws, tmp_path):
    factories.contact(ws, phone="13800000061")
    path = write_csv(
        tmp_path / "orders.csv",
        ORDER_HEADER,
        [["F1", "13800000061", "store", PAID, "-5", "", "", ""]],
    )
    run_import(workspace=ws, entity="orders", path=path)
    rows = read_rejects(tmp_path / "orders.rejects.csv")
    rows[1][4] = "5.00"
    fixed = write_csv(tmp_path / "fixed.csv", rows[0], rows[1:])

    report = run_import(workspace=ws, entity="orders", path=fixed)

    assert (report.created, report.rejected) == (1, 0)


def test_products_stores_and_staff_upsert_from_csv(ws, tmp_path):
    write_csv(
        tmp_path / "stores.csv",
        ["code", "name", "city", "opened_at"],
        [["SH01", "徐汇店", "上海", "2024-05-01"]],
    )
    write_csv(
        tmp_path / "staff.csv",
        ["code", "name", "store_code", "is_manager"],
        [
            ["E1", "小王", "SH01", "yes"],
            ["E2", "小李", "BJ99", ""],
        ],
    )
    write_csv(
        tmp_path / "products.csv",
        ["sku", "name", "price", "attributes"],
        [
            ["P1", "芒果", "12.50", '{"origin": "海南"}'],
            ["P2", "榴莲", "-3", ""],
        ],
    )

    stores = run_import(workspace=ws, entity="stores", path=tmp_path / "stores.csv")
    staff = run_import(workspace=ws, entity="staff", path=tmp_path / "staff.csv")
    products = run_import(workspace=ws, entity="products", path=tmp_path / "products.csv")
    again = run_import(workspace=ws, entity="products", path=tmp_path / "products.csv")

    assert (stores.created, staff.created, products.created, again.unchanged) == (1, 1, 1, 1)
    assert staff.errors == [(3, "store_code: unknown store code 'BJ99'")]
    assert products.errors == [(3, "price: input should be greater than or equal to 0, got '-3'")]
    assert Staff.objects.get(workspace=ws, code="E1").is_manager is True
    assert Product.objects.get(workspace=ws, sku="P1").attributes == {"origin": "海南"}


def test_progress_is_told_the_file_size_and_advanced_to_it(ws, tmp_path):
    path = write_csv(
        tmp_path / "stores.csv", ["code", "name"], [[f"S{i}", f"Store {i}"] for i in range(25)]
    )
    progress = Recorder()

    run_import(workspace=ws, entity="stores", path=path, progress=progress, batch_size=10)

    assert progress.calls[0] == ("start", "stores ← stores.csv", path.stat().st_size)
    assert sum(n for kind, n in progress.calls[1:]) == path.stat().st_size
    assert len(progress.calls) == 4


def test_import_stays_in_its_workspace(ws, other_ws, tmp_path):
    theirs = factories.contact(other_ws, phone="13800000071")
    path = write_csv(
        tmp_path / "events.csv",
        ["event_id", "type", "contact_phone", "occurred_at"],
        [
            ["w1", "page_view", "13800000071", PAID],
        ],
    )

    report = run_import(workspace=ws, entity="events", path=path)

    assert report.errors == [
        (2, "contact_phone: unknown contact identity phone:138****0071; upsert the contact first")
    ]
    assert not Event.objects.exists()

    orders = write_csv(
        tmp_path / "orders.csv",
        ["order_no", "contact_id", "channel", "paid_at", "amount"],
        [["W1", str(theirs.id), "store", PAID, "9.90"]],
    )
    report = run_import(workspace=ws, entity="orders", path=orders)

    assert report.errors == [(2, f"contact_id: unknown contact_id {theirs.id}")]
    assert not Order.objects.exists()


def _events_file(path, rows, phones):
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "event_id",
                "type",
                "contact_phone",
                "occurred_at",
                "channel",
                "duration_seconds",
                "properties",
            ]
        )
        for i in range(rows):
            writer.writerow(
                [
                    f"ev-{i:08d}",
                    "product_view",
                    phones[i % len(phones)],
                    PAID,
                    "mini_program",
                    i % 300,
                    json.dumps({"sku": f"SKU{i % 97}", "page": "detail", "ref": "x" * 40}),
                ]
            )
    return path


def test_memory_stays_flat_while_importing_many_events(ws, tmp_path):
    phones = [f"1380000{i:04d}" for i in range(50)]
    for phone in phones:
        factories.contact(ws, phone=phone)
    small = _events_file(tmp_path / "small.csv", 3_000, phones)
    big = _events_file(tmp_path / "big.csv", 30_000, phones)

    tracemalloc.start()
    run_import(workspace=ws, entity="events", path=small, batch_size=500)
    small_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    report = run_import(workspace=ws, entity="events", path=big, batch_size=500)
    big_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    assert report.created == 27_000 and report.unchanged == 3_000
    # Ten times the rows in the same batch size: memory follows the batch, not the file (a file
    # held whole, or its rows, would take ten times the small run's peak).
    assert big_peak < small_peak * 2


def test_a_row_the_database_refuses_costs_only_its_own_rejection(ws, tmp_path):
    factories.contact(ws, phone="13800000081")
    header = ["order_no", "contact_phone", "channel", "paid_at", "amount", "refunds"]

    def refund(no, amount):
        return json.dumps(
            [{"refund_no": no, "amount": amount, "refunded_at": "2026-03-03T10:00:00+08:00"}]
        )

    write_csv(
        tmp_path / "o.csv",
        header,
        [["G1", "13800000081", "store", PAID, "20.00", refund("GR0", "15.00")]],
    )
    run_import(workspace=ws, entity="orders", path=tmp_path / "o.csv")
    write_csv(
        tmp_path / "o.csv",
        header,
        [
            ["G1", "13800000081", "store", PAID, "20.00", refund("GR1", "10.00")],
            ["G2", "13800000081", "store", PAID, "8.00", ""],
        ],
    )

    report = run_import(workspace=ws, entity="orders", path=tmp_path / "o.csv")

    assert report.errors == [
        (2, "refunds: refunds of order G1 would total 25.00, more than the 20.00 paid")
    ]
    assert (report.created, report.rejected) == (1, 1)
    assert list(Refund.objects.filter(workspace=ws).values_list("refund_no", flat=True)) == ["GR0"]
