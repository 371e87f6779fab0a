"""A worker process for the journey kill test, run as a subprocess against its own database
(SIYU_DATA_DIR / DATABASE_URL from the environment):

    journey_worker.py seed <count> <webhook url> <secret>   migrate, launch a webhook journey on <count> contacts
    journey_worker.py run <worker id>                       walk journeys and send until everything is done
    journey_worker.py report                                print enrollments and outbox as JSON

``run`` is the production pair of loops (``journeys_tick`` then ``outbox_drain``) with small
chunks and a 2-second lease, so a kill lands mid-walk and mid-send and a dead worker's claim
comes back quickly."""

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

from siyu.audiences import services as audiences  # noqa: E402
from siyu.contacts.models import Contact  # noqa: E402
from siyu.journeys import services as journeys  # noqa: E402
from siyu.journeys.models import Enrollment  # noqa: E402
from siyu.messaging import services as messaging  # noqa: E402
from siyu.messaging.models import Message  # noqa: E402
from siyu.tenancy.services import workspace_create  # noqa: E402

LEASE_SECONDS = 2
SEND_RATE = 1000  # per second and worker: slow enough to be killed midway
CHUNK = 500  # enrollments moved per transaction


def seed(count: int, url: str, secret: str) -> None:
    call_command("migrate", verbosity=0)
    ws = workspace_create(slug="crash", name="Crash test")
    messaging.cap_settings_set(workspace=ws, quiet_start=time_of_day(0), quiet_end=time_of_day(0))
    first_seen = datetime(2026, 1, 1, tzinfo=UTC)
    Contact.objects.bulk_create(
        [Contact(workspace=ws, nickname=f"c{i}", first_seen_at=first_seen) for i in range(count)],
        batch_size=2000,
    )
    channel = messaging.channel_create(
        workspace=ws, kind="webhook", name="hook", settings={"url": url, "secret": secret}, rate_per_second=SEND_RATE
    )
    template = messaging.template_save(workspace=ws, name="t", channel_kind="webhook", body="Hi {{nickname}}")
    tag = audiences.tag_create(workspace=ws, group=audiences.tag_group_create(workspace=ws, name="g"), name="member day")
    journey = journeys.journey_create(
        workspace=ws,
        name="member day",
        definition={
            "trigger": {"type": "manual"},
            # A tag first, so the launch leaves every walk to the workers (a journey that starts
            # by sending queues its messages as it launches): the kill lands mid-walk.
            "steps": [
                {"key": "mark", "type": "tag", "tag_id": tag.id, "action": "add"},
                {"key": "notify", "type": "webhook", "channel_id": channel.id, "template_id": template.id},
            ],
        },
    )
    journeys.journey_publish(workspace=ws, journey=journey)
    run = journeys.journey_launch(workspace=ws, journey=journey)
    print(json.dumps({"enrolled": run.enrolled}))


def run(worker_id: str) -> None:
    while True:
        journeys.journeys_tick(budget_seconds=0, chunk=CHUNK)  # one chunk, then send
        messaging.outbox_drain(worker_id=worker_id, limit=50, budget_seconds=1.0, lease_seconds=LEASE_SECONDS)
        walking = Enrollment.objects.filter(status="active").exists()
        if not walking and not Message.objects.filter(status__in=("queued", "sending")).exists():
            return
        time.sleep(0.1)


def report() -> None:
    outbox = dict(Message.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    walks = dict(Enrollment.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    per_contact = Message.objects.values("contact_id").annotate(n=Count("id")).filter(n__gt=1).count()
    keys = list(Message.objects.filter(status="sent").values_list("idempotency_key", flat=True))
    print(json.dumps({"outbox": outbox, "enrollments": walks, "contacts_with_two_rows": per_contact, "sent_keys": keys}))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "seed":
        seed(int(args[0]), args[1], args[2])
    elif command == "run":
        run(args[0])
    else:
        report()
