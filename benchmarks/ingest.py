"""How fast `run_import` ingests orders and events, against a raw bulk load of the same file.

    python benchmarks/ingest.py --rows 1000000 --database-url postgres://postgres@127.0.0.1:5432/siyu_bench

Creates the database if it is missing and migrates it, seeds contacts in bulk (not timed), writes
an orders CSV (one item per order as JSON) and an events CSV for them, then times
``run_import`` on each and, as the baseline, a raw load of the same file into a bare table with the
same columns and no constraints: ``COPY … FROM STDIN (FORMAT csv)`` into a plain (logged)
table on PostgreSQL (an UNLOGGED one, which skips the WAL that stored data cannot do without,
is printed beside it), ``executemany`` in one transaction on SQLite. Each run uses a fresh workspace, so it
can be repeated on the same database. Without --database-url it runs on a scratch SQLite file.

On PostgreSQL ``run_import`` stages each chunk of the CSV with COPY and validates and writes it
set-at-a-time in SQL (``siyu.importing.staged``). It also prints a second reference, the *table
floor*: the rows it just stored, already typed, ``INSERT … SELECT``-ed into empty copies of the
real tables with the same indexes, checks and foreign keys (orders with their items), committed.
That is what writing these rows costs in this schema whatever the importer does; the bare-table
baseline pays none of it, so ``floor ÷ import`` (1 is the best possible) shows what is left to
gain in the importer, and ``raw COPY ÷ floor`` what the schema itself (its indexes and deferred
foreign-key checks) costs.

``--new-contacts N`` also times a contacts CSV of N new contacts (created in bulk; no baseline).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ORDER_HEADER = ["order_no", "contact_phone", "channel", "paid_at", "amount", "items"]
EVENT_HEADER = [
    "event_id",
    "type",
    "contact_phone",
    "occurred_at",
    "channel",
    "duration_seconds",
    "properties",
]
RAW_TYPES = {
    "orders": "order_no text, contact_phone text, channel text, paid_at timestamptz, amount numeric(14,2), items jsonb",
    "events": "event_id text, type text, contact_phone text, occurred_at timestamptz, channel text, "
    "duration_seconds integer, properties jsonb",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=200_000, help="rows per file (orders and events)"
    )
    parser.add_argument(
        "--contacts",
        type=int,
        default=0,
        help="contacts to seed (default rows/10, at most 100,000)",
    )
    parser.add_argument(
        "--database-url", default="", help="PostgreSQL URL; default a scratch SQLite file"
    )
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument(
        "--new-contacts",
        type=int,
        default=0,
        help="also time importing a contacts CSV of this many new contacts (no baseline)",
    )
    parser.add_argument("--workdir", default="", help="where the CSV files go (default a temp dir)")
    return parser.parse_args()


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def phone(i: int) -> str:
    return f"139{i:08d}"


def seed_contacts(workspace, count: int) -> None:
    """Straight into the tables: this is set-up, not what is measured."""
    from datetime import UTC, datetime

    from siyu.contacts.identities import normalise_identity
    from siyu.contacts.models import Contact, Identity

    first_seen = datetime(2025, 1, 1, tzinfo=UTC)
    for start in range(0, count, 5000):
        idents = [
            normalise_identity("phone", phone(i)) for i in range(start, min(start + 5000, count))
        ]
        contacts = Contact.objects.bulk_create(
            [
                Contact(
                    workspace=workspace,
                    first_seen_at=first_seen,
                    phone_hash=n.value_hash,
                    phone_masked=n.display(),
                )
                for n in idents
            ]
        )
        Identity.objects.bulk_create(
            [
                Identity(
                    workspace=workspace,
                    contact=c,
                    kind=n.kind,
                    app_id="",
                    value_hash=n.value_hash,
                    value=n.stored_value(),
                    display=n.display(),
                )
                for c, n in zip(contacts, idents, strict=True)
            ]
        )


def write_files(workdir: Path, rows: int, contacts: int, tag: str) -> tuple[Path, Path]:
    rng = random.Random(7)
    orders, events = workdir / f"orders-{tag}.csv", workdir / f"events-{tag}.csv"
    with orders.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(ORDER_HEADER)
        for i in range(rows):
            qty, price = rng.randint(1, 3), rng.choice(["9.90", "19.90", "39.00", "128.00"])
            amount = f"{int(qty) * float(price):.2f}"
            items = json.dumps([{"sku": f"SKU{i % 500}", "quantity": qty, "unit_price": price}])
            day, minute = 1 + i % 28, i % 1440
            w.writerow(
                [
                    f"{tag}-O{i:09d}",
                    phone(rng.randrange(contacts)),
                    "mini_program",
                    f"2026-03-{day:02d}T{minute // 60:02d}:{minute % 60:02d}:00+08:00",
                    amount,
                    items,
                ]
            )
    with events.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(EVENT_HEADER)
        for i in range(rows):
            day, second = 1 + i % 28, i % 86400
            w.writerow(
                [
                    f"{tag}-E{i:09d}",
                    rng.choice(["page_view", "product_view", "add_to_cart", "share"]),
                    phone(rng.randrange(contacts)),
                    f"2026-03-{day:02d}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}+08:00",
                    "mini_program",
                    rng.randrange(600),
                    json.dumps({"sku": f"SKU{i % 500}", "page": "detail"}),
                ]
            )
    return orders, events


def write_contacts_file(workdir: Path, rows: int, tag: str) -> Path:
    """New contacts only (phones after the seeded ones): the bulk-create path of the import."""
    path = workdir / f"contacts-{tag}.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["phone", "name", "city", "source_channel", "campaign", "consent_sms"])
        for i in range(rows):
            w.writerow([phone(50_000_000 + i), f"会员{i}", "上海", "store_qr", "spring", "granted"])
    return path


def raw_load(path: Path, entity: str, *, unlogged: bool = False) -> float:
    """The baseline: the same file into a bare table with the same columns, no constraints.
    ``unlogged`` (PostgreSQL): a table that writes no WAL (no stored data can skip it)."""
    from django.db import connection, transaction

    table = f"bench_raw_{entity}"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        if connection.vendor == "postgresql":
            kind = "UNLOGGED TABLE" if unlogged else "TABLE"
            cursor.execute(f"CREATE {kind} {table} ({RAW_TYPES[entity]})")
        else:
            cols = ", ".join(ORDER_HEADER if entity == "orders" else EVENT_HEADER)
            cursor.execute(f"CREATE TABLE {table} ({cols})")
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with (
                path.open("rb") as fh,
                cursor.copy(f"COPY {table} FROM STDIN (FORMAT csv, HEADER true)") as copy,
            ):
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
        else:
            with path.open(newline="") as fh:
                reader = csv.reader(fh)
                header = next(reader)
                marks = ", ".join(["%s"] * len(header))
                cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", reader)
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {table}")
    return elapsed


def floor_load(workspace_id: int, entity: str) -> float:
    """The stored rows inserted again into empty copies of the real tables (PostgreSQL only)."""
    from floor import table_floor_seconds

    tables = ["commerce_order", "commerce_orderitem"] if entity == "orders" else ["events_event"]
    return table_floor_seconds([(t, "workspace_id = %s", [workspace_id]) for t in tables])


def main() -> int:
    args = parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="siyu-bench-"))
    os.environ.setdefault("SIYU_DATA_DIR", str(scratch / "data"))
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
        ensure_database(args.database_url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from siyu.importing import run_import
    from siyu.tenancy.services import workspace_create

    call_command("migrate", verbosity=0)
    contacts = args.contacts or min(max(args.rows // 10, 1), 100_000)
    tag = f"b{int(time.time())}"
    workspace = workspace_create(slug=f"bench-{tag}", name=f"Benchmark {tag}")
    workdir = Path(args.workdir) if args.workdir else scratch
    workdir.mkdir(parents=True, exist_ok=True)

    print(
        f"database: {connection.vendor}; rows per file: {args.rows:,}; contacts: {contacts:,}; batch: {args.batch_size:,}"
    )
    t = time.perf_counter()
    seed_contacts(workspace, contacts)
    print(f"seeded contacts in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    orders, events = write_files(workdir, args.rows, contacts, tag)
    print(
        f"wrote {orders.name} ({orders.stat().st_size / 1e6:.0f} MB) and {events.name} "
        f"({events.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s"
    )

    results = []
    for entity, path in (("orders", orders), ("events", events)):
        report = run_import(
            workspace=workspace, entity=entity, path=path, batch_size=args.batch_size
        )
        if report.rejected or report.created != args.rows:
            print(report.summary())
            return 1
        baseline = raw_load(path, entity)
        postgres = connection.vendor == "postgresql"
        unlogged = raw_load(path, entity, unlogged=True) if postgres else None
        floor = floor_load(workspace.id, entity) if postgres else None
        results.append((entity, report.elapsed_seconds, baseline, floor, unlogged))

    if args.new_contacts:
        path = write_contacts_file(workdir, args.new_contacts, tag)
        report = run_import(
            workspace=workspace, entity="contacts", path=path, batch_size=args.batch_size
        )
        if report.rejected or report.created != args.new_contacts:
            print(report.summary())
            return 1
        print(
            f"contacts: {args.new_contacts:,} new in {report.elapsed_seconds:.1f} s, "
            f"{args.new_contacts / report.elapsed_seconds:,.0f} rows/s"
        )

    baseline_name = "raw COPY" if connection.vendor == "postgresql" else "raw executemany"
    print()
    print(
        f"{'entity':<8} {'run_import':>12} {'rows/s':>10} {baseline_name:>16} {'rows/s':>10} "
        f"{'ratio':>7} {'table floor':>12} {'floor÷import':>13}"
    )
    for entity, elapsed, baseline, floor, _unlogged in results:
        floor_cols = (
            f"{floor:>10.1f} s {floor / elapsed:>13.3f}"
            if floor is not None
            else f"{'-':>12} {'-':>13}"
        )
        print(
            f"{entity:<8} {elapsed:>10.1f} s {args.rows / elapsed:>10,.0f} {baseline:>14.2f} s "
            f"{args.rows / baseline:>10,.0f} {baseline / elapsed:>7.3f} {floor_cols}"
        )
    print("(ratio = import rows/s ÷ baseline rows/s; the target is ≥ 0.5)")
    if connection.vendor == "postgresql":
        for entity, elapsed, _baseline, _floor, unlogged in results:
            print(
                f"(raw COPY into an UNLOGGED bare table, which writes no WAL, {entity}: "
                f"{unlogged:.2f} s, ratio {unlogged / elapsed:.3f})"
            )
        print(
            "(table floor = the stored rows inserted into empty copies of the real tables with their "
            "indexes and foreign keys; floor÷import near 1 means the importer adds little to it)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
