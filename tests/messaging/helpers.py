"""Shared by the messaging tests: a fixed noon outside quiet hours and a one-call queue."""

from datetime import UTC, datetime

from siyu.messaging import services

NOON = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai, outside quiet hours


def queue(ws, template, channel, contacts, prefix="campaign:1", now=NOON, **kw):
    return services.messages_queue(
        workspace=ws,
        template=template,
        channel=channel,
        contact_ids=[c.id for c in contacts],
        idempotency_prefix=prefix,
        now=now,
        **kw,
    )
