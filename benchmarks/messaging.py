"""Times queueing an audience into the outbox and draining it with the console adapter, next to
a bare bulk INSERT … SELECT of the same number of rows into a plain table (the baseline).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_bench SIYU_DATA_DIR=/tmp/bench \\
        .venv/bin/python benchmarks/messaging.py --contacts 1000000

Seeding is not timed: N contacts written in one INSERT … SELECT (a tenth opted out of the
console's consent channel, a fifth with a store), and a campaign of yesterday already sent to
every contact, so the weekly cap has a week's messages to count. The timed queueing runs with
frequency caps (1 a day, 3 a week), a global daily cap and quiet hours active (it is 22:00 in
the workspace, so every message waits for 08:00). Draining then sends at 08:01 with one worker.
Target (issue 6): queueing >= 20k messages/s on PostgreSQL and >= 0.3 of the bare INSERT rate.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from datetime import datetime, timedelta
from datetime import time as time_of_day
from zoneinfo import ZoneInfo

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from siyu.commerce.models import Store  # noqa: E402
from siyu.contacts.models import Consent, Contact  # noqa: E402
from siyu.messaging import services  # noqa: E402
from siyu.messaging.models import Message  # noqa: E402
from siyu.tenancy.models import Workspace  # noqa: E402
from siyu.tenancy.services import workspace_create  # noqa: E402

ZONE = ZoneInfo("Asia/Shanghai")
PLAIN = "bench_plain_messages"


def execute(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def analyze() -> None:
    if connection.vendor == "postgresql":
        for table in (Contact._meta.db_table, Message._meta.db_table, Consent._meta.db_table):
            execute(f"VACUUM ANALYZE {table}")
    else:
        execute("ANALYZE")


def series(n: int) -> str:
    """SQL yielding the integers 1..n as column ``i``."""
    if connection.vendor == "postgresql":
        return f"SELECT generate_series(1, {int(n)}) AS i"
    return f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {int(n)}) SELECT i FROM s"  # noqa: S608


def seed(contacts: int) -> Workspace:
    slug = f"bench-messaging-{contacts}"
    ws = Workspace.objects.filter(slug=slug).first()
    if ws is not None:
        print(f"reusing workspace {slug}", flush=True)
        return ws
    print(f"seeding {contacts:,} contacts ...", flush=True)
    started = time.perf_counter()
    first_seen = (
        "2026-01-01 00:00:00+00" if connection.vendor == "postgresql" else "2026-01-01 00:00:00"
    )
    with transaction.atomic():
        ws = workspace_create(slug=slug, name="messaging benchmark")
        store = Store.objects.create(workspace=ws, code="S1", name="静安店")
        execute(
            f"INSERT INTO {Contact._meta.db_table} (workspace_id, name, nickname, gender, city, phone_enc, "  # noqa: S608
            "phone_hash, phone_masked, member_no, source_channel, first_touch_campaign, first_touch_state, "
            "store_id, attributes, first_seen_at, created_at, updated_at) "
            f"SELECT %s, 'n' || i, 'nick' || i, '', '上海', '', '', '', 'M' || i, 'other', '', '', "
            f"CASE WHEN i %% 5 = 0 THEN %s ELSE NULL END, '{{}}', %s, %s, %s FROM ({series(contacts)}) s",
            [ws.id, store.id, first_seen, first_seen, first_seen],
        )
        execute(
            f"INSERT INTO {Consent._meta.db_table} (workspace_id, contact_id, channel, status, source, updated_at) "  # noqa: S608
            "SELECT workspace_id, id, 'wecom', 'opted_out', 'bench', first_seen_at "
            f"FROM {Contact._meta.db_table} WHERE workspace_id = %s AND id %% 10 = 0",
            [ws.id],
        )
    print(f"  seeded in {time.perf_counter() - started:.1f} s", flush=True)
    return ws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--drain", type=int, default=None, help="messages to drain (default all)")
    parser.add_argument("--batch", type=int, default=500, help="messages claimed per dispatch")
    parser.add_argument(
        "--global-cap", action="store_true", help="also set a (never reached) global daily cap"
    )
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    logging.getLogger("siyu.messaging.console").handlers = [logging.NullHandler()]
    logging.getLogger("siyu.messaging.console").propagate = False
    ws = seed(args.contacts)
    analyze()  # as autovacuum would after a bulk load: the plans depend on the row counts
    n = args.contacts
    services.cap_settings_set(
        workspace=ws,
        daily_caps={"console": 1},
        weekly_caps={"console": 3},
        quiet_start=time_of_day(21),
        quiet_end=time_of_day(8),
        global_daily_cap=n * 10 if args.global_cap else None,
    )
    channel = services.channel_create(
        workspace=ws,
        kind="console",
        name=f"console-{time.time_ns()}",
        settings={},
        consent_channel="wecom",
        rate_per_second=1_000_000,
    )
    template = services.template_save(
        workspace=ws,
        name="bench",
        channel_kind="console",
        body="{{nickname}}，早安！会员 {{member_no}} 的专属券 {{coupon}} 今天到期，{{store}}等你。",
    )
    audience = Contact.objects.filter(workspace=ws)
    day = datetime(2026, 6, 1, tzinfo=ZONE)
    # A fresh day per run of the script: the previous runs' messages stay out of this week.
    offset = Message.objects.filter(workspace=ws).values("idempotency_key").count() // max(n, 1)
    day += timedelta(days=10 * offset)
    yesterday, tonight = day - timedelta(hours=12), day + timedelta(hours=22)

    print("sending yesterday's campaign (not timed) ...", flush=True)
    prior = services.messages_queue(
        workspace=ws,
        template=template,
        channel=channel,
        contact_ids=audience,
        idempotency_prefix=f"bench:{day:%Y%m%d}:prior",
        now=yesterday,
        variables={"coupon": "C0"},
    )
    Message.objects.filter(
        workspace=ws, idempotency_key__startswith=f"bench:{day:%Y%m%d}:prior"
    ).update(status="sent", sent_at=yesterday)
    analyze()
    print(f"  {prior}", flush=True)

    # The baseline: the same rows (every column of an outbox row, the body rendered from the
    # contact) into a plain table with only a primary key — no unique key, no other index, no
    # guardrails.
    ident = "bigserial" if connection.vendor == "postgresql" else "integer"
    stamp = "timestamptz" if connection.vendor == "postgresql" else "text"
    execute(f"DROP TABLE IF EXISTS {PLAIN}")
    execute(
        f"CREATE TABLE {PLAIN} (id {ident} PRIMARY KEY, workspace_id bigint, contact_id bigint, "
        "channel_id bigint, channel_kind varchar(16), template_id bigint, idempotency_key varchar(200), "
        "subject varchar(200), body text, status varchar(12), suppress_reason varchar(20), daily_cap integer, "
        f"weekly_cap integer, attempts smallint, next_attempt_at {stamp}, scheduled_at {stamp}, "
        f"last_error text, provider_message_id varchar(200), locked_by varchar(100), queued_at {stamp}, "
        "journey_id bigint, journey_step varchar(64))"
    )
    started = time.perf_counter()
    with transaction.atomic():
        execute(
            f"INSERT INTO {PLAIN} (workspace_id, contact_id, channel_id, channel_kind, template_id, "  # noqa: S608
            "idempotency_key, subject, body, status, suppress_reason, daily_cap, weekly_cap, attempts, "
            "next_attempt_at, scheduled_at, last_error, provider_message_id, locked_by, queued_at, "
            "journey_id, journey_step) SELECT workspace_id, id, %s, 'console', %s, "
            "'plain:contact:' || CAST(id AS TEXT), '', nickname || '，早安！会员 ' || member_no || ' 的专属券 SPRING26 今天到期', "
            "'queued', '', NULL, NULL, 0, first_seen_at, first_seen_at, '', '', '', first_seen_at, 1, 'morning' "
            f"FROM {Contact._meta.db_table} WHERE workspace_id = %s",
            [channel.id, template.id, ws.id],
        )
    plain_seconds = time.perf_counter() - started
    execute(f"DROP TABLE {PLAIN}")

    started = time.perf_counter()
    result = services.messages_queue(
        workspace=ws,
        template=template,
        channel=channel,
        contact_ids=audience,
        idempotency_prefix=f"bench:{day:%Y%m%d}:morning",
        now=tonight,
        variables={"coupon": "SPRING26"},
        journey_id=1,
        journey_step="morning",
    )
    queue_seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = services.messages_queue(
        workspace=ws,
        template=template,
        channel=channel,
        contact_ids=audience,
        idempotency_prefix=f"bench:{day:%Y%m%d}:morning",
        now=tonight,
        variables={"coupon": "SPRING26"},
    )
    requeue_seconds = time.perf_counter() - started
    queue_rate, plain_rate = n / queue_seconds, n / plain_seconds
    print(f"\n{connection.vendor}, {n:,} contacts")
    print(f"  queued: {result}")
    print(
        f"  bare INSERT … SELECT (baseline):  {plain_seconds:7.2f} s  {plain_rate:>10,.0f} rows/s"
    )
    print(
        f"  messages_queue (caps, quiet hours): {queue_seconds:7.2f} s  {queue_rate:>10,.0f} messages/s"
        f"  ratio {queue_rate / plain_rate:.2f} of the baseline"
    )
    print(
        f"  re-queue, all already queued:    {requeue_seconds:7.2f} s  ({again.already_queued:,} no-ops)"
    )

    analyze()
    morning = tonight.replace(hour=8, minute=1) + timedelta(days=1)
    wanted = args.drain if args.drain is not None else result.delayed
    drained = 0
    started = time.perf_counter()
    while drained < wanted:
        done = services.messages_dispatch(worker_id="bench", limit=args.batch, now=morning)
        drained += done.sent + sum(done.suppressed.values())
        if not done.claimed:
            break
    drain_seconds = time.perf_counter() - started
    print(
        f"  drain with the console adapter:    {drain_seconds:7.2f} s  "
        f"{drained / drain_seconds:>10,.0f} messages/s ({drained:,} messages, one worker)"
    )


if __name__ == "__main__":
    main()
