"""A sender process for the crash tests, run as a subprocess against its own database
(SIYU_DATA_DIR / DATABASE_URL from the environment):

    outbox_worker.py seed <count> <webhook url> <secret>   migrate, queue <count> webhook messages
    outbox_worker.py run <worker id>                       send until nothing is queued or sending
    outbox_worker.py report                                print the outbox as JSON

``run`` uses the production loop (``outbox_drain``) with a 2-second lease, so a killed worker's
claim comes back quickly."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from datetime import time as time_of_day

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.utils import timezone  # noqa: E402

from siyu.contacts.models import Contact  # noqa: E402
from siyu.messaging import services  # noqa: E402
from siyu.messaging.models import Message  # noqa: E402
from siyu.tenancy.services import workspace_create  # noqa: E402

LEASE_SECONDS = 2
SEND_RATE = 400  # per second and worker: slow enough to be killed midway


def seed(count: int, url: str, secret: str) -> None:
    call_command("migrate", verbosity=0)
    ws = workspace_create(slug="crash", name="Crash test")
    services.cap_settings_set(workspace=ws, quiet_start=time_of_day(0), quiet_end=time_of_day(0))
    first_seen = datetime(2026, 1, 1, tzinfo=UTC)
    Contact.objects.bulk_create(
        [Contact(workspace=ws, nickname=f"c{i}", first_seen_at=first_seen) for i in range(count)],
        batch_size=2000,
    )
    channel = services.channel_create(
        workspace=ws,
        kind="webhook",
        name="hook",
        settings={"url": url, "secret": secret},
        rate_per_second=SEND_RATE,
    )
    template = services.template_save(
        workspace=ws, name="t", channel_kind="webhook", body="Hi {{nickname}}"
    )
    result = services.messages_queue(
        workspace=ws,
        template=template,
        channel=channel,
        contact_ids=Contact.objects.filter(workspace=ws),
        idempotency_prefix="campaign:1",
        now=timezone.now(),
    )
    print(json.dumps({"queued": result.queued}))


def run(worker_id: str) -> None:
    while True:
        services.outbox_drain(worker_id=worker_id, limit=50, lease_seconds=LEASE_SECONDS)
        if not Message.objects.filter(status__in=("queued", "sending")).exists():
            return
        time.sleep(0.2)  # a killed worker's rows wait for their lease to end


def report() -> None:
    by_status = dict(
        Message.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    retried = Message.objects.filter(attempts__gt=1).count()
    keys = list(Message.objects.filter(status="sent").values_list("idempotency_key", flat=True))
    print(json.dumps({"by_status": by_status, "attempted_twice": retried, "sent_keys": keys}))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "seed":
        seed(int(args[0]), args[1], args[2])
    elif command == "run":
        run(args[0])
    else:
        report()
