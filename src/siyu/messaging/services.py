"""Every write of messaging: channels, templates, guardrail settings, queueing an audience into
the outbox, dispatching it through the channel adapters, and delivery receipts.

Guardrails run twice. When queued, for the whole audience in one INSERT … SELECT: opt-out and
consent, a missing address, the per-contact caps and the global daily cap suppress (with the
reason); quiet hours delay. When sent, for each claimed batch: the same checks again, because
consent, caps and the clock may have moved since.

Exactly-once: a dispatcher claims rows by setting ``sending`` with a lease in a short committed
transaction (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite's write lock serialises), sends, then
commits the outcome row by row. A worker killed between the provider's answer and that commit
leaves the row ``sending``; once its lease ends it is claimed and sent again with the same
idempotency key, which the provider (webhook receiver, SMS gateway out_id, e-mail Message-ID)
uses to drop the repeat. The outbox itself never holds two rows for one key.

The raw SQL below is composed only of table names from model ``_meta``, status and reason
constants, and the template variables' SQL (names checked against ``rendering.VARIABLES``);
every value a user gives travels as a parameter.
"""

from __future__ import annotations

import os
import socket
import threading
import time as clock
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from siyu.bulk import in_list
from siyu.commerce.models import Store
from siyu.contacts.models import (
    Consent,
    ConsentChannel,
    ConsentStatus,
    Contact,
    Identity,
    IdentityKind,
)
from siyu.errors import NotFound, ValidationFailed
from siyu.messaging import guardrails, queries, rendering
from siyu.messaging.channels import ADAPTERS, adapter_for
from siyu.messaging.channels.base import ChannelAdapter, Outbound, ProviderResult
from siyu.messaging.models import (
    COUNTED_STATUSES,
    OUT_STATUSES,
    ChannelConfig,
    ChannelKind,
    Message,
    MessageCapSettings,
    MessageStatus,
    MessageTemplate,
    SuppressReason,
)
from siyu.tenancy.models import Workspace

#: A message is tried at most this many times, then it fails with its last error.
MAX_ATTEMPTS = 5
#: Wait before attempt 2, 3, 4, 5.
BACKOFF_SECONDS = (30, 120, 600, 1800)
LEASE_SECONDS = 120

REQUIRED_SETTINGS = {
    ChannelKind.CONSOLE: (),
    ChannelKind.WEBHOOK: ("url", "secret"),
    ChannelKind.EMAIL: ("host", "from"),
    ChannelKind.SMS: ("url",),
}
DEFAULT_CONSENT = {ChannelKind.SMS: ConsentChannel.SMS, ChannelKind.EMAIL: ConsentChannel.EMAIL}
_ADDRESS_SQL = {
    "phone": "CASE WHEN c.phone_enc <> '' THEN 1 ELSE 0 END",
    "email": (
        f"CASE WHEN EXISTS (SELECT 1 FROM {Identity._meta.db_table} i WHERE i.contact_id = c.id "  # noqa: S608
        f"AND i.kind = '{IdentityKind.EMAIL}') THEN 1 ELSE 0 END"
    ),
}
_RECEIPT_RANK = {
    MessageStatus.SENT: 0,
    MessageStatus.DELIVERED: 1,
    MessageStatus.READ: 2,
    MessageStatus.CLICKED: 3,
}
_RECEIPT_FIELD = {
    MessageStatus.DELIVERED: "delivered_at",
    MessageStatus.READ: "read_at",
    MessageStatus.CLICKED: "clicked_at",
}


# --- channels, templates, settings -------------------------------------------------------------


@transaction.atomic
def channel_create(
    *,
    workspace: Workspace,
    kind: str,
    name: str,
    settings: dict,
    consent_channel: str | None = None,
    require_consent: bool = False,
    rate_per_second: float = 10.0,
) -> ChannelConfig:
    """``consent_channel`` defaults to the kind's own (sms, email); a webhook names it when it
    reaches customers (say "wecom")."""
    if kind not in ADAPTERS:
        raise ValidationFailed(
            "unknown_channel_kind", f"Unknown channel kind {kind!r}.", path="kind"
        )
    missing = [key for key in REQUIRED_SETTINGS[kind] if not settings.get(key)]
    if missing:
        raise ValidationFailed(
            "channel_settings_missing",
            f"A {kind} channel needs settings: {', '.join(missing)}.",
            path="settings",
        )
    consent = DEFAULT_CONSENT.get(kind, "") if consent_channel is None else consent_channel
    if consent and consent not in ConsentChannel.values:
        raise ValidationFailed("unknown_consent_channel", f"Unknown consent channel {consent!r}.")
    if rate_per_second <= 0:
        raise ValidationFailed(
            "bad_rate", "rate_per_second must be above 0.", path="rate_per_second"
        )
    return ChannelConfig.objects.create(
        workspace=workspace,
        kind=kind,
        name=name,
        settings=settings,
        consent_channel=consent,
        require_consent=require_consent,
        rate_per_second=rate_per_second,
    )


@transaction.atomic
def template_save(
    *, workspace: Workspace, name: str, channel_kind: str, body: str, subject: str = ""
) -> MessageTemplate:
    """Creates or updates the template named ``name``; unknown ``{{variables}}`` are refused
    here, with the list of those that exist."""
    if channel_kind not in ADAPTERS:
        raise ValidationFailed(
            "unknown_channel_kind", f"Unknown channel kind {channel_kind!r}.", path="channel_kind"
        )
    if not body.strip():
        raise ValidationFailed("empty_body", "A template needs a body.", path="body")
    template, _ = MessageTemplate.objects.update_or_create(
        workspace=workspace,
        name=name,
        defaults={
            "channel_kind": channel_kind,
            "subject": rendering.normalise(subject, field="subject"),
            "body": rendering.normalise(body, field="body"),
        },
    )
    return template


@transaction.atomic
def cap_settings_set(
    *,
    workspace: Workspace,
    daily_caps: dict[str, int] | None = None,
    weekly_caps: dict[str, int] | None = None,
    quiet_start: time | None = None,
    quiet_end: time | None = None,
    global_daily_cap: int | None = None,
) -> MessageCapSettings:
    """Changes what is given; ``global_daily_cap`` None lifts the global cap."""
    current = queries.cap_settings_for(workspace=workspace)
    for caps, label in ((daily_caps, "daily_caps"), (weekly_caps, "weekly_caps")):
        for kind, cap in (caps or {}).items():
            if kind not in ADAPTERS or not isinstance(cap, int) or cap < 0:
                raise ValidationFailed(
                    "bad_cap", f"{label}: {kind!r}: {cap!r} is not a channel kind and a count ≥ 0."
                )
    if daily_caps is not None:
        current.daily_caps = daily_caps
    if weekly_caps is not None:
        current.weekly_caps = weekly_caps
    current.quiet_start = quiet_start or current.quiet_start
    current.quiet_end = quiet_end or current.quiet_end
    current.global_daily_cap = global_daily_cap
    current.save()
    return current


# --- queueing ------------------------------------------------------------------------------------


@dataclass
class QueueResult:
    """What one queueing did: ``queued`` go out now, ``delayed`` after quiet hours,
    ``suppressed`` per reason, ``already_queued`` had a row for their key already."""

    queued: int = 0
    delayed: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)
    already_queued: int = 0


def _ts(value: datetime | None):
    """A datetime as a raw-SQL parameter stored the way the ORM stores it."""
    return connection.ops.adapt_datetimefield_value(value)


def _contact_filter(
    workspace: Workspace, contact_ids: Sequence[int] | QuerySet
) -> tuple[str, list]:
    if isinstance(contact_ids, QuerySet):
        if contact_ids.model is not Contact:
            raise ValidationFailed(
                "bad_audience", "contact_ids must be contact ids or a queryset of contacts."
            )
        sql, params = contact_ids.filter(workspace=workspace).values("id").query.sql_with_params()
        return f"IN ({sql})", list(params)
    return in_list([int(i) for i in contact_ids])


@transaction.atomic
def messages_queue(
    *,
    workspace: Workspace,
    template: MessageTemplate,
    channel: ChannelConfig,
    contact_ids: Sequence[int] | QuerySet,
    idempotency_prefix: str,
    now: datetime,
    daily_cap: int | None = None,
    weekly_cap: int | None = None,
) -> QueueResult:
    """Puts one message per contact in the outbox with a single INSERT … SELECT, keyed
    "<prefix>:contact:<id>" and skipped on conflict, so queueing the same campaign again is a
    no-op. ``daily_cap``/``weekly_cap`` override the workspace's caps (a journey's own)."""
    if template.workspace_id != workspace.id or channel.workspace_id != workspace.id:
        raise NotFound("not_found", "Template or channel not found in this workspace.")
    if template.channel_kind != channel.kind:
        raise ValidationFailed(
            "template_channel_mismatch",
            f"Template {template.name!r} is for {template.channel_kind}, channel {channel.name!r} is {channel.kind}.",
        )
    if not channel.enabled:
        raise ValidationFailed("channel_disabled", f"Channel {channel.name!r} is disabled.")
    caps = queries.cap_settings_for(workspace=workspace)
    zone = ZoneInfo(workspace.time_zone)
    scheduled = (
        guardrails.quiet_until(now, start=caps.quiet_start, end=caps.quiet_end, zone=zone) or now
    )
    day_cap = daily_cap if daily_cap is not None else caps.daily_caps.get(channel.kind)
    week_cap = weekly_cap if weekly_cap is not None else caps.weekly_caps.get(channel.kind)
    day_from, day_to = guardrails.day_window(scheduled, zone)
    week_from, week_to = guardrails.week_window(scheduled, zone)
    counted = ", ".join(f"'{s}'" for s in COUNTED_STATUSES)
    msg = Message._meta.db_table
    global_used = 0
    if caps.global_daily_cap is not None:
        global_used = Message.objects.filter(
            workspace=workspace,
            status__in=COUNTED_STATUSES,
            scheduled_at__gte=day_from,
            scheduled_at__lt=day_to,
        ).count()

    match, match_params = _contact_filter(workspace, contact_ids)
    prefix = f"{idempotency_prefix}:contact:"
    consent_sql, consent_params = "NULL", []
    if channel.consent_channel:
        consent_sql = f"(SELECT k.status FROM {Consent._meta.db_table} k WHERE k.contact_id = c.id AND k.channel = %s)"  # noqa: S608
        consent_params = [channel.consent_channel]
    address_sql = _ADDRESS_SQL.get(ADAPTERS[channel.kind].address_kind, "1")

    def cap_count(start: datetime, end: datetime) -> tuple[str, list]:
        return (
            f"(SELECT count(*) FROM {msg} m WHERE m.workspace_id = %s AND m.contact_id = c.id "  # noqa: S608
            f"AND m.channel_kind = %s AND m.status IN ({counted}) AND m.scheduled_at >= %s AND m.scheduled_at < %s)",
            [workspace.id, channel.kind, _ts(start), _ts(end)],
        )

    day_sql, day_params = cap_count(day_from, day_to) if day_cap is not None else ("0", [])
    week_sql, week_params = cap_count(week_from, week_to) if week_cap is not None else ("0", [])
    candidates_sql = (
        f"SELECT c.id AS contact_id, "  # noqa: S608
        f"{rendering.render_sql('%s', template.subject)} AS subject, "
        f"{rendering.render_sql('%s', template.body)} AS body, "
        f"%s || CAST(c.id AS TEXT) AS ikey, {consent_sql} AS consent, {address_sql} AS has_address, "
        f"{day_sql} AS day_n, {week_sql} AS week_n "
        f"FROM {Contact._meta.db_table} c LEFT JOIN {Store._meta.db_table} s ON s.id = c.store_id "
        f"WHERE c.workspace_id = %s AND c.id {match} AND NOT EXISTS (SELECT 1 FROM {msg} e "
        f"WHERE e.workspace_id = %s AND e.idempotency_key = %s || CAST(c.id AS TEXT))"
    )
    candidates_params = [
        template.subject,
        template.body,
        prefix,
        *consent_params,
        *day_params,
        *week_params,
        workspace.id,
        *match_params,
        workspace.id,
        prefix,
    ]
    require = "1 = 1" if channel.require_consent else "1 = 0"
    judged_sql = (
        f"SELECT cand.*, CASE "  # noqa: S608
        f"WHEN consent = '{ConsentStatus.OPTED_OUT}' THEN '{SuppressReason.OPTED_OUT}' "
        f"WHEN {require} AND (consent IS NULL OR consent <> '{ConsentStatus.GRANTED}') THEN '{SuppressReason.NO_CONSENT}' "
        f"WHEN has_address = 0 THEN '{SuppressReason.NO_ADDRESS}' "
        f"WHEN day_n >= CAST(%s AS integer) OR week_n >= CAST(%s AS integer) THEN '{SuppressReason.FREQUENCY_CAP}' "
        f"END AS pre_reason FROM cand"
    )
    judged_params = [day_cap, week_cap]
    final_sql = (
        "SELECT judged.*, CASE WHEN pre_reason IS NOT NULL THEN pre_reason "  # noqa: S608
        "WHEN CAST(%s AS integer) IS NOT NULL AND %s + SUM(CASE WHEN pre_reason IS NULL THEN 1 ELSE 0 END) "
        "OVER (ORDER BY contact_id ROWS UNBOUNDED PRECEDING) > CAST(%s AS integer) "
        f"THEN '{SuppressReason.GLOBAL_DAILY_CAP}' END AS reason FROM judged"
    )
    final_params = [caps.global_daily_cap, global_used, caps.global_daily_cap]
    insert_sql = (
        f"WITH cand AS ({candidates_sql}), judged AS ({judged_sql}), final AS ({final_sql}) "  # noqa: S608
        f"INSERT INTO {msg} (workspace_id, contact_id, channel_id, channel_kind, template_id, idempotency_key, "
        "subject, body, status, suppress_reason, daily_cap, weekly_cap, attempts, next_attempt_at, scheduled_at, "
        "last_error, provider_message_id, locked_by, queued_at) "
        f"SELECT %s, contact_id, %s, %s, %s, ikey, subject, body, "
        f"CASE WHEN reason IS NULL THEN '{MessageStatus.QUEUED}' ELSE '{MessageStatus.SUPPRESSED}' END, "
        "COALESCE(reason, ''), CAST(%s AS integer), CAST(%s AS integer), 0, %s, %s, '', '', '', %s "
        "FROM final WHERE 1 = 1 "
        "ON CONFLICT (workspace_id, idempotency_key) DO NOTHING RETURNING status, suppress_reason"
    )
    insert_params = [
        workspace.id,
        channel.id,
        channel.kind,
        template.id,
        daily_cap,
        weekly_cap,
        _ts(scheduled),
        _ts(scheduled),
        _ts(now),
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {Contact._meta.db_table} c WHERE c.workspace_id = %s AND c.id {match}",  # noqa: S608
            [workspace.id, *match_params],
        )
        matched = cursor.fetchone()[0]
        cursor.execute(
            insert_sql, [*candidates_params, *judged_params, *final_params, *insert_params]
        )
        written = cursor.fetchall()

    result = QueueResult(already_queued=matched - len(written))
    suppressed: Counter[str] = Counter()
    for status, reason in written:
        if status == MessageStatus.SUPPRESSED:
            suppressed[reason] += 1
        elif scheduled > now:
            result.delayed += 1
        else:
            result.queued += 1
    result.suppressed = dict(sorted(suppressed.items()))
    return result


# --- dispatching ---------------------------------------------------------------------------------


@dataclass
class DispatchResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    delayed: int = 0
    released: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)


def worker_name() -> str:
    """host:pid:thread, unique among live dispatchers."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _claim(*, worker_id: str, limit: int, now: datetime, lease_seconds: int) -> list[int]:
    """Marks up to ``limit`` due rows ``sending`` for this worker and commits at once, so other
    dispatchers see the claim. Rows left ``sending`` past their lease are due again."""
    msg, chan = Message._meta.db_table, ChannelConfig._meta.db_table
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    true = "true" if connection.vendor == "postgresql" else "1"
    sql = (
        f"UPDATE {msg} SET status = '{MessageStatus.SENDING}', locked_by = %s, locked_until = %s, "  # noqa: S608
        f"attempts = attempts + 1 WHERE id IN (SELECT id FROM {msg} WHERE "
        f"((status = '{MessageStatus.QUEUED}' AND next_attempt_at <= %s) "
        f"OR (status = '{MessageStatus.SENDING}' AND locked_until <= %s)) "
        f"AND channel_id IN (SELECT id FROM {chan} WHERE enabled = {true}) "
        f"ORDER BY next_attempt_at, id LIMIT %s{skip_locked}) RETURNING id"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            sql, [worker_id, _ts(now + timedelta(seconds=lease_seconds)), _ts(now), _ts(now), limit]
        )
        return sorted(row[0] for row in cursor.fetchall())


@dataclass
class _Budget:
    """What may still go out in this batch, per workspace: sent counts of today and this week
    per (contact, kind), consents, global count. Updated as the batch sends."""

    caps: MessageCapSettings
    zone: ZoneInfo
    day: Counter = field(default_factory=Counter)
    week: Counter = field(default_factory=Counter)
    global_today: int = 0
    consents: dict[tuple[int, str], str] = field(default_factory=dict)


def _budget(workspace: Workspace, messages: list[Message], now: datetime) -> _Budget:
    caps = queries.cap_settings_for(workspace=workspace)
    zone = ZoneInfo(workspace.time_zone)
    budget = _Budget(caps=caps, zone=zone)
    contact_ids = {m.contact_id for m in messages}
    day_from, day_to = guardrails.day_window(now, zone)
    week_from, _ = guardrails.week_window(now, zone)
    out = Message.objects.filter(workspace=workspace, status__in=OUT_STATUSES)
    for row in out.filter(
        contact_id__in=contact_ids, sent_at__gte=week_from, sent_at__lt=day_to
    ).values("contact_id", "channel_kind", "sent_at"):
        key = (row["contact_id"], row["channel_kind"])
        budget.week[key] += 1
        if row["sent_at"] >= day_from:
            budget.day[key] += 1
    if caps.global_daily_cap is not None:
        budget.global_today = out.filter(sent_at__gte=day_from, sent_at__lt=day_to).count()
    channels = {m.channel.consent_channel for m in messages} - {""}
    for cid, channel, status in Consent.objects.filter(
        workspace=workspace, contact_id__in=contact_ids, channel__in=channels
    ).values_list("contact_id", "channel", "status"):
        budget.consents[(cid, channel)] = status
    return budget


def _send_time_reason(message: Message, budget: _Budget, addresses: dict[int, str]) -> str | None:
    channel = message.channel
    consent = budget.consents.get((message.contact_id, channel.consent_channel))
    if channel.consent_channel and consent == ConsentStatus.OPTED_OUT:
        return SuppressReason.OPTED_OUT
    if channel.consent_channel and channel.require_consent and consent != ConsentStatus.GRANTED:
        return SuppressReason.NO_CONSENT
    if ADAPTERS[channel.kind].address_kind and message.contact_id not in addresses:
        return SuppressReason.NO_ADDRESS
    key = (message.contact_id, message.channel_kind)
    day_cap = (
        message.daily_cap
        if message.daily_cap is not None
        else budget.caps.daily_caps.get(message.channel_kind)
    )
    week_cap = (
        message.weekly_cap
        if message.weekly_cap is not None
        else budget.caps.weekly_caps.get(message.channel_kind)
    )
    if (day_cap is not None and budget.day[key] >= day_cap) or (
        week_cap is not None and budget.week[key] >= week_cap
    ):
        return SuppressReason.FREQUENCY_CAP
    if (
        budget.caps.global_daily_cap is not None
        and budget.global_today >= budget.caps.global_daily_cap
    ):
        return SuppressReason.GLOBAL_DAILY_CAP
    return None


def _mine(message: Message, worker_id: str) -> QuerySet[Message]:
    """The row, only while this worker still holds it: a worker whose lease ran out and was
    taken over writes nothing."""
    return Message.objects.filter(id=message.id, status=MessageStatus.SENDING, locked_by=worker_id)


def _record(message: Message, result: ProviderResult, *, worker_id: str, now: datetime) -> str:
    unlock = {"locked_by": "", "locked_until": None}
    with transaction.atomic():
        if result.ok:
            _mine(message, worker_id).update(
                status=MessageStatus.SENT,
                sent_at=now,
                provider_message_id=result.provider_message_id[:200],
                last_error="",
                **unlock,
            )
            return "sent"
        if result.retryable and message.attempts < MAX_ATTEMPTS:
            wait = BACKOFF_SECONDS[min(message.attempts, len(BACKOFF_SECONDS)) - 1]
            _mine(message, worker_id).update(
                status=MessageStatus.QUEUED,
                next_attempt_at=now + timedelta(seconds=wait),
                last_error=result.error,
                **unlock,
            )
            return "retried"
        error = (
            result.error
            if not result.retryable
            else f"gave up after {message.attempts} attempts: {result.error}"
        )
        _mine(message, worker_id).update(status=MessageStatus.FAILED, last_error=error, **unlock)
        return "failed"


def _put_back(
    messages: Iterable[Message], *, worker_id: str, next_attempt_at: datetime | None = None
) -> int:
    """Returns claimed rows to the queue untried: the attempt they were charged is undone."""
    ids = [m.id for m in messages]
    update = {
        "status": MessageStatus.QUEUED,
        "locked_by": "",
        "locked_until": None,
        "attempts": F("attempts") - 1,
    }
    if next_attempt_at is not None:
        update["next_attempt_at"] = next_attempt_at
    with transaction.atomic():
        return Message.objects.filter(
            id__in=ids, status=MessageStatus.SENDING, locked_by=worker_id
        ).update(**update)


def messages_dispatch(
    *,
    worker_id: str,
    limit: int = 20,
    now: datetime | None = None,
    lease_seconds: int = LEASE_SECONDS,
) -> DispatchResult:
    """Claims up to ``limit`` due messages, re-checks the guardrails, sends them through their
    channel's adapter (paced to ``rate_per_second``) and records each outcome.

    Not one transaction, on purpose: the claim commits first and every outcome commits on its
    own, so a crash loses at most the messages in flight, which the lease brings back. The
    batch stops sending when its lease is nearly spent and puts the rest back."""
    now = now or timezone.now()
    deadline = clock.monotonic() + lease_seconds * 0.8
    result = DispatchResult()
    ids = _claim(worker_id=worker_id, limit=limit, now=now, lease_seconds=lease_seconds)
    result.claimed = len(ids)
    if not ids:
        return result
    claimed = list(
        Message.objects.filter(id__in=ids).select_related("channel", "workspace").order_by("id")
    )
    suppressed: Counter[str] = Counter()
    by_workspace: dict[int, list[Message]] = defaultdict(list)
    for message in claimed:
        by_workspace[message.workspace_id].append(message)
    for messages in by_workspace.values():
        workspace = messages[0].workspace
        budget = _budget(workspace, messages, now)
        quiet = guardrails.quiet_until(
            now, start=budget.caps.quiet_start, end=budget.caps.quiet_end, zone=budget.zone
        )
        if quiet is not None:
            result.delayed += _put_back(messages, worker_id=worker_id, next_attempt_at=quiet)
            continue
        over = [m for m in messages if m.attempts > MAX_ATTEMPTS]
        for message in over:
            _record(
                message,
                ProviderResult.retry("worker stopped mid-send"),
                worker_id=worker_id,
                now=now,
            )
            result.failed += 1
        messages = [m for m in messages if m.attempts <= MAX_ATTEMPTS]
        addresses: dict[int, str] = {}
        for kind in {ADAPTERS[m.channel.kind].address_kind for m in messages} - {None}:
            wanted = [
                m.contact_id for m in messages if ADAPTERS[m.channel.kind].address_kind == kind
            ]
            addresses.update(
                queries.addresses_for(workspace_id=workspace.id, kind=kind, contact_ids=wanted)
            )
        adapters: dict[int, ChannelAdapter] = {}
        paced_at: dict[int, float] = {}
        for index, message in enumerate(messages):
            if clock.monotonic() > deadline:
                result.released += _put_back(messages[index:], worker_id=worker_id)
                break
            reason = _send_time_reason(message, budget, addresses)
            if reason is not None:
                with transaction.atomic():
                    _mine(message, worker_id).update(
                        status=MessageStatus.SUPPRESSED,
                        suppress_reason=reason,
                        locked_by="",
                        locked_until=None,
                    )
                suppressed[reason] += 1
                continue
            adapter = adapters.setdefault(message.channel_id, adapter_for(message.channel))
            _pace(paced_at, message.channel_id, adapter.rate_per_second)
            outbound = Outbound(
                message_id=message.id,
                idempotency_key=message.idempotency_key,
                contact_id=message.contact_id,
                to=addresses.get(message.contact_id, ""),
                subject=message.subject,
                body=message.body,
            )
            outcome = _record(message, adapter.send(outbound), worker_id=worker_id, now=now)
            setattr(result, outcome, getattr(result, outcome) + 1)
            if outcome == "sent":
                key = (message.contact_id, message.channel_kind)
                budget.day[key] += 1
                budget.week[key] += 1
                budget.global_today += 1
    result.suppressed = dict(suppressed)
    return result


def _pace(paced_at: dict[int, float], channel_id: int, rate_per_second: float) -> None:
    """Sleeps so that this worker sends at most ``rate_per_second`` on one channel."""
    gap = 1.0 / rate_per_second
    last = paced_at.get(channel_id)
    if last is not None:
        wait = last + gap - clock.monotonic()
        if wait > 0:
            clock.sleep(wait)
    paced_at[channel_id] = clock.monotonic()


def outbox_drain(
    *,
    worker_id: str,
    limit: int = 20,
    budget_seconds: float = 50.0,
    lease_seconds: int = LEASE_SECONDS,
) -> int:
    """Dispatches batch after batch until nothing is due or ``budget_seconds`` are spent;
    returns how many messages were sent. The periodic task and a dedicated sender loop call it."""
    stop = clock.monotonic() + budget_seconds
    sent = 0
    while clock.monotonic() < stop:
        done = messages_dispatch(worker_id=worker_id, limit=limit, lease_seconds=lease_seconds)
        sent += done.sent
        if not done.claimed:
            break
    return sent


# --- receipts ------------------------------------------------------------------------------------


@transaction.atomic
def message_receipt(
    *,
    workspace: Workspace,
    status: str,
    at: datetime,
    provider_message_id: str = "",
    message_id: int | None = None,
) -> Message:
    """Records delivered / read / clicked. Status only moves forward (a late "delivered" after
    "read" keeps "read"), and each step's time is kept once, the first reported."""
    if status not in _RECEIPT_FIELD:
        raise ValidationFailed(
            "bad_receipt_status", f"status must be delivered, read or clicked, not {status!r}."
        )
    rows = Message.objects.select_for_update().filter(workspace=workspace)
    if message_id is not None:
        message = rows.filter(id=message_id).first()
    else:
        message = (
            rows.filter(provider_message_id=provider_message_id)
            .exclude(provider_message_id="")
            .first()
        )
    if message is None:
        raise NotFound(
            "message_not_found",
            f"No message {message_id or provider_message_id!r} in this workspace.",
        )
    if message.status not in _RECEIPT_RANK:
        raise ValidationFailed(
            "message_not_sent",
            f"Message {message.id} is {message.status}; only a sent message takes receipts.",
            http_status=409,
        )
    if _RECEIPT_RANK[status] > _RECEIPT_RANK[message.status]:
        message.status = status
    stamp = _RECEIPT_FIELD[status]
    if getattr(message, stamp) is None:
        setattr(message, stamp, at)
    message.save(update_fields=["status", stamp])
    return message
