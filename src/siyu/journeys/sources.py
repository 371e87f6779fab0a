"""Where entrants come from: each trigger's source rows as a queryset of (cid, ekey) — the
contact and the entry key that makes entering idempotent. The engine inserts from them; the dry
run counts them."""

from __future__ import annotations

from datetime import datetime

from django.db.models import CharField, F, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat

from siyu.audiences.models import SegmentChange, SegmentChangeKind, SegmentMember
from siyu.commerce.models import Order
from siyu.contacts.models import Contact
from siyu.errors import ValidationFailed
from siyu.events.models import Event, EventType
from siyu.tenancy.models import Workspace

EVENT_TRIGGERS = {
    "group_joined": EventType.JOIN_GROUP,
    "group_left": EventType.LEAVE_GROUP,
    "coupon_claimed": EventType.COUPON_CLAIM,
}
DEFAULT_REENTRY = {"event": "after_exit", "schedule": "always", "manual": "once"}
BIRTHDAY_AT = "09:00"


def reentry_of(definition: dict) -> str:
    return definition.get("reentry") or DEFAULT_REENTRY[definition["trigger"]["type"]]


def _text(value: str) -> Value:
    return Value(value, output_field=CharField())


def _keyed(prefix: str, column: str):
    return Concat(_text(prefix), Cast(column, CharField()), output_field=CharField())


def audience_source(workspace: Workspace, segment_id: int | None, key: str) -> QuerySet:
    """(cid, ekey) rows: a segment's members, or every contact of the workspace."""
    if segment_id is not None:
        return SegmentMember.objects.filter(workspace=workspace, segment_id=segment_id).values(
            cid=F("contact_id"), ekey=_text(key)
        )
    return Contact.objects.filter(workspace=workspace).values(cid=F("id"), ekey=_text(key))


def trigger_source(
    workspace: Workspace, trigger: dict, since: datetime, until: datetime
) -> QuerySet:
    """(cid, ekey, arrived) rows for an event trigger: what arrived in (since, until], with its
    arrival time."""
    event = trigger["event"]
    if event == "contact_added":
        added = Contact.objects.filter(
            workspace=workspace, created_at__gt=since, created_at__lte=until
        ).values(cid=F("id"), ekey=_keyed("contact:", "id"), arrived=F("created_at"))
        befriended = Event.objects.filter(
            workspace=workspace,
            type=EventType.CONTACT_ADDED,
            received_at__gt=since,
            received_at__lte=until,
        ).values(cid=F("contact_id"), ekey=_keyed("event:", "id"), arrived=F("received_at"))
        return added.union(befriended, all=True)
    if event in EVENT_TRIGGERS:
        return Event.objects.filter(
            workspace=workspace,
            type=EVENT_TRIGGERS[event],
            received_at__gt=since,
            received_at__lte=until,
        ).values(cid=F("contact_id"), ekey=_keyed("event:", "id"), arrived=F("received_at"))
    if event == "order_paid":
        return Order.objects.filter(
            workspace=workspace, created_at__gt=since, created_at__lte=until
        ).values(cid=F("contact_id"), ekey=_keyed("order:", "id"), arrived=F("created_at"))
    if event in ("segment_entered", "segment_exited"):
        change = SegmentChangeKind.ENTERED if event == "segment_entered" else SegmentChangeKind.LEFT
        return SegmentChange.objects.filter(
            workspace=workspace,
            segment_id=trigger["segment_id"],
            change=change,
            at__gt=since,
            at__lte=until,
        ).values(cid=F("contact_id"), ekey=_keyed("segment:", "id"), arrived=F("at"))
    raise ValidationFailed("invalid_journey", f"{event} is not scanned", path="trigger.event")


def birthday_source(workspace: Workspace, local_day) -> QuerySet:
    """Contacts whose birthday is ``local_day``; 29 February birthdays are kept on 28 February
    in other years."""
    match = Q(birthday__month=local_day.month, birthday__day=local_day.day)
    if local_day.month == 2 and local_day.day == 28:
        try:
            local_day.replace(day=29)
        except ValueError:
            match |= Q(birthday__month=2, birthday__day=29)
    return Contact.objects.filter(match, workspace=workspace).values(
        cid=F("id"), ekey=_text(f"birthday:{local_day.year}")
    )
