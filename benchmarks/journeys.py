"""Launches a journey on every contact of a large workspace and times the walk into the outbox,
next to a bare bulk INSERT … SELECT of the same number of rows (the baseline); then times the
worker sending with the console adapter.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_bench SIYU_DATA_DIR=/tmp/bench \\
        .venv/bin/python benchmarks/journeys.py --contacts 1000000

Seeding is shared with benchmarks/messaging.py (not timed; the same workspace is reused): N
contacts, a tenth opted out of the channel's consent, a campaign already sent yesterday so the
weekly cap has a week to count. Timed: ``journey_launch`` of a journey whose one step sends,
with frequency caps (1 a day, 3 a week) and quiet hours active (22:00 local: every message waits
for 08:00). A first send step runs as the contacts enter, so the launch is one transaction that
enrolls the N contacts already past the step and queues their N messages; ``journeys_tick``
then finds nothing to move (it is timed too, to show it). "messages/s" counts every outbox
row written (queued, delayed or suppressed with a reason) per second of launch + walk.
Target (issue 6): >= 20k messages/s on PostgreSQL and >= 0.3 of the bare INSERT rate.

On PostgreSQL it also prints the *table floor* (``floor.py``): the launch's messages and
enrollments inserted again into empty copies of their tables, with the same indexes and checks.
That is what storing those rows costs in this schema whatever the launch does, so it tells apart
the launch's own work (caps, quiet hours, consent, enrolling) from the schema's.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import messaging as outbox_bench  # noqa: E402  (sets Django up; its seeding is reused)
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from floor import table_floor_seconds  # noqa: E402

from siyu.contacts.models import Contact  # noqa: E402
from siyu.journeys import services as journeys  # noqa: E402
from siyu.journeys.models import Enrollment  # noqa: E402
from siyu.messaging import services as messaging  # noqa: E402
from siyu.messaging.models import Message  # noqa: E402

PLAIN = "bench_plain_journey_messages"


def bare_insert_seconds(workspace_id: int) -> float:
    outbox_bench.execute(f"DROP TABLE IF EXISTS {PLAIN}")
    outbox_bench.execute(
        f"CREATE TABLE {PLAIN} (id {'bigserial' if connection.vendor == 'postgresql' else 'integer'} PRIMARY KEY, "
        "workspace_id bigint, contact_id bigint, idempotency_key varchar(200), body text, status varchar(12), "
        "suppress_reason varchar(20), scheduled_at timestamp, queued_at timestamp)"
    )
    started = time.perf_counter()
    with transaction.atomic():
        outbox_bench.execute(
            f"INSERT INTO {PLAIN} (workspace_id, contact_id, idempotency_key, body, status, suppress_reason, "  # noqa: S608
            "scheduled_at, queued_at) SELECT workspace_id, id, 'plain:' || CAST(id AS TEXT), "
            "nickname || '，早安！', 'queued', '', first_seen_at, first_seen_at "
            f"FROM {Contact._meta.db_table} WHERE workspace_id = %s",
            [workspace_id],
        )
    seconds = time.perf_counter() - started
    outbox_bench.execute(f"DROP TABLE {PLAIN}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument(
        "--drain", type=int, default=50_000, help="messages the worker sends (timed)"
    )
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    logging.getLogger("siyu.messaging.console").handlers = [logging.NullHandler()]
    logging.getLogger("siyu.messaging.console").propagate = False
    ws = outbox_bench.seed(args.contacts)
    n = Contact.objects.filter(workspace=ws).count()
    messaging.cap_settings_set(
        workspace=ws,
        daily_caps={"console": 1},
        weekly_caps={"console": 3},
        quiet_start=time_of_day(21),
        quiet_end=time_of_day(8),
    )
    stamp = time.time_ns()
    channel = messaging.channel_create(
        workspace=ws,
        kind="console",
        name=f"journey-console-{stamp}",
        settings={},
        consent_channel="wecom",
        rate_per_second=1_000_000,
    )
    template = messaging.template_save(
        workspace=ws,
        name=f"journey-bench-{stamp}",
        channel_kind="console",
        body="{{nickname}}，周二会员日！专属券 {{coupon}}，{{store}}等你。",
    )
    # A fresh week per run, so earlier runs' messages do not count against this one's caps.
    day = datetime(2027, 1, 5, tzinfo=outbox_bench.ZONE) + timedelta(days=14 * (stamp % 1000))
    tonight = day.replace(hour=22)
    journey = journeys.journey_create(
        workspace=ws,
        name=f"会员日 {stamp}",
        definition={
            "trigger": {"type": "manual"},
            "caps": {"daily": 1, "weekly": 3},
            "steps": [
                {
                    "key": "member_day",
                    "type": "send",
                    "channel_id": channel.id,
                    "template_id": template.id,
                    "variables": {"coupon": "TUE26"},
                }
            ],
        },
        now=tonight,
    )
    journeys.journey_publish(workspace=ws, journey=journey, now=tonight)
    outbox_bench.analyze()

    baseline = bare_insert_seconds(ws.id)
    started = time.perf_counter()
    run = journeys.journey_launch(workspace=ws, journey=journey, now=tonight)
    launch_seconds = time.perf_counter() - started
    started = time.perf_counter()
    tick = journeys.journeys_tick(now=tonight, budget_seconds=3600)
    walk_seconds = time.perf_counter() - started
    written = Message.objects.filter(workspace=ws, journey_id=journey.id).count()
    # The send is the journey's first step, so the launch queues it as the contacts enter and
    # the walk finds nothing left to move (journeys.services._enter_sending).
    assert run.enrolled == n and tick.moved == 0, (run.enrolled, tick.moved, n)
    assert written == n, (written, n)
    assert not Enrollment.objects.filter(journey=journey, status="active").exists()

    total = launch_seconds + walk_seconds
    rate, plain_rate = written / total, n / baseline
    print(f"\n{connection.vendor}, {n:,} contacts")
    print(f"  bare INSERT … SELECT (baseline):    {baseline:7.2f} s  {plain_rate:>10,.0f} rows/s")
    if connection.vendor == "postgresql":
        floor = table_floor_seconds(
            [
                (Enrollment._meta.db_table, "journey_id = %s", [journey.id]),
                (
                    Message._meta.db_table,
                    "workspace_id = %s AND journey_id = %s",
                    [ws.id, journey.id],
                ),
            ]
        )
        print(
            f"  table floor (messages + enrollments): {floor:5.2f} s  {n / floor:>10,.0f} messages/s"
            f"  (the schema's cost: {baseline / floor:.2f} of the baseline)"
        )
    print(
        f"  launch (enroll {n:,}):          {launch_seconds:7.2f} s  {n / launch_seconds:>10,.0f} enrollments/s"
    )
    print(
        f"  walk into the outbox:               {walk_seconds:7.2f} s  {n / walk_seconds:>10,.0f} walks/s"
    )
    print(
        f"  journey → outbox, end to end:       {total:7.2f} s  {rate:>10,.0f} messages/s"
        f"  ratio {rate / plain_rate:.2f} of the baseline"
        + (f", {floor / total:.2f} of the table floor" if connection.vendor == "postgresql" else "")
    )

    outbox_bench.analyze()
    morning = tonight.replace(hour=8, minute=1) + timedelta(days=1)
    sent = 0
    started = time.perf_counter()
    while sent < args.drain:
        done = messaging.messages_dispatch(worker_id="bench", limit=500, now=morning)
        sent += done.sent + sum(done.suppressed.values())
        if not done.claimed:
            break
    seconds = time.perf_counter() - started
    print(
        f"  worker, console adapter:            {seconds:7.2f} s  {sent / seconds:>10,.0f} messages/s ({sent:,} messages)"
    )


if __name__ == "__main__":
    main()
