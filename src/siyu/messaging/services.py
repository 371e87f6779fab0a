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
constants, and the contact variables' column expressions (``rendering.CONTACT_VARIABLES``);
every value a user gives — template text, audience-wide variables — travels as a parameter.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time as clock
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
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
from siyu.messaging import guardrails, library_queries, queries, rendering
from siyu.messaging.channels import ADAPTERS, adapter_for
from siyu.messaging.channels.base import ChannelAdapter, Outbound, ProviderResult
from siyu.messaging.library_services import template_publish, template_save
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
from siyu.tenancy.services import audit_record

__all__ = ["template_publish", "template_save"]  # the content library's writes, re-exported

#: A message is tried at most this many times, then it fails with its last error.
MAX_ATTEMPTS = 5
#: Wait before attempt 2, 3, 4, 5.
BACKOFF_SECONDS = (30, 120, 600, 1800)
LEASE_SECONDS = 120
#: Outcomes are recorded together, this many at a time or after RECORD_SECONDS: one commit per
#: chunk rather than per message. A killed worker's unrecorded chunk is resent (same keys).
RECORD_EVERY = 200
RECORD_SECONDS = 1.0

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


#: Settings that are secrets, at any depth (an SMS gateway's account key sits in its fixed
#: ``params``): never shown back, audited as changed, not by value.
SECRET_SETTINGS = frozenset({"secret", "password", "api_key", "apikey", "access_key", "token"})
SECRET_MASK = "••••••"  # noqa: S105  (what the console and the API show in place of a secret)


def _is_secret(key: str) -> bool:
    return key.lower() in SECRET_SETTINGS


def settings_masked(settings: Any) -> Any:
    """The settings as they may be shown: each non-empty secret replaced by ``SECRET_MASK``."""
    if isinstance(settings, dict):
        return {
            k: SECRET_MASK if _is_secret(k) and v else settings_masked(v)
            for k, v in settings.items()
        }
    return settings


def _secrets_kept(given: Any, stored: Any) -> Any:
    """``given`` with each secret that came back as ``SECRET_MASK`` set to its stored value."""
    if not isinstance(given, dict):
        return given
    stored = stored if isinstance(stored, dict) else {}
    return {
        k: stored.get(k, "")
        if _is_secret(k) and v == SECRET_MASK
        else _secrets_kept(v, stored.get(k))
        for k, v in given.items()
    }


def _channel_checked(
    *,
    kind: str,
    settings: Any,
    consent_channel: str | None,
    rate_per_second: Any,
) -> tuple[dict, str, float]:
    """The settings, consent channel and rate a channel of ``kind`` may be saved with."""
    if kind not in ADAPTERS:
        raise ValidationFailed(
            "unknown_channel_kind", f"Unknown channel kind {kind!r}.", path="kind"
        )
    if not isinstance(settings, dict):
        raise ValidationFailed(
            "channel_settings_invalid", "settings must be a JSON object.", path="settings"
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
        raise ValidationFailed(
            "unknown_consent_channel",
            f"Unknown consent channel {consent!r}.",
            path="consent_channel",
        )
    try:
        rate = float(rate_per_second)
    except (TypeError, ValueError):
        rate = 0.0
    if not rate > 0:
        raise ValidationFailed(
            "bad_rate", "rate_per_second must be above 0.", path="rate_per_second"
        )
    return settings, consent, rate


def _channel_audit(workspace: Workspace, channel: ChannelConfig, action: str, actor: Any) -> None:
    audit_record(
        workspace=workspace,
        action=action,
        actor_user=actor,
        target=channel,
        data={
            "kind": channel.kind,
            "name": channel.name,
            "settings": settings_masked(channel.settings),
            "enabled": channel.enabled,
        },
    )


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
    actor: Any = None,
) -> ChannelConfig:
    """``consent_channel`` defaults to the kind's own (sms, email); a webhook names it when it
    reaches customers (say "wecom")."""
    settings, consent, rate = _channel_checked(
        kind=kind,
        settings=settings,
        consent_channel=consent_channel,
        rate_per_second=rate_per_second,
    )
    name = _channel_name(workspace, name)
    channel = ChannelConfig.objects.create(
        workspace=workspace,
        kind=kind,
        name=name,
        settings=settings,
        consent_channel=consent,
        require_consent=require_consent,
        rate_per_second=rate,
    )
    _channel_audit(workspace, channel, "messaging.channel_create", actor)
    return channel


def _channel_name(workspace: Workspace, name: str, channel: ChannelConfig | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("channel_name_missing", "A channel needs a name.", path="name")
    taken = ChannelConfig.objects.filter(workspace=workspace, name=name)
    if channel is not None:
        taken = taken.exclude(pk=channel.pk)
    if taken.exists():
        raise ValidationFailed(
            "channel_name_taken", f"A channel named {name!r} exists already.", path="name"
        )
    return name


@transaction.atomic
def channel_update(
    *,
    workspace: Workspace,
    channel: ChannelConfig,
    name: str,
    settings: dict,
    consent_channel: str,
    require_consent: bool,
    rate_per_second: float,
    enabled: bool,
    actor: Any = None,
) -> ChannelConfig:
    """Changes everything but the kind. A secret given back as ``SECRET_MASK`` (as the console
    shows it) keeps its stored value, so editing the rate does not need the password again.
    Messages already queued go out through the channel as it is when they are sent; a disabled
    channel suppresses them with the reason "channel disabled"."""
    if channel.workspace_id != workspace.id:
        raise NotFound("channel_not_found", f"No channel {channel.id} in this workspace.")
    settings = _secrets_kept(settings, channel.settings)
    settings, consent, rate = _channel_checked(
        kind=channel.kind,
        settings=settings,
        consent_channel=consent_channel,
        rate_per_second=rate_per_second,
    )
    channel.name = _channel_name(workspace, name, channel)
    channel.settings = settings
    channel.consent_channel = consent
    channel.require_consent = require_consent
    channel.rate_per_second = rate
    channel.enabled = enabled
    channel.save()
    _channel_audit(workspace, channel, "messaging.channel_update", actor)
    return channel


@transaction.atomic
def cap_settings_set(
    *,
    workspace: Workspace,
    daily_caps: dict[str, int] | None = None,
    weekly_caps: dict[str, int] | None = None,
    quiet_start: time | None = None,
    quiet_end: time | None = None,
    global_daily_cap: int | None = None,
    actor: Any = None,
) -> MessageCapSettings:
    """Changes what is given; ``global_daily_cap`` None lifts the global cap."""
    current = queries.cap_settings_for(workspace=workspace)
    if global_daily_cap is not None and (
        not isinstance(global_daily_cap, int) or global_daily_cap < 1
    ):
        raise ValidationFailed(
            "bad_cap",
            "global_daily_cap must be a whole number of at least 1.",
            path="global_daily_cap",
        )
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
    audit_record(
        workspace=workspace,
        action="messaging.guardrails",
        actor_user=actor,
        target=current,
        data={
            "daily_caps": current.daily_caps,
            "weekly_caps": current.weekly_caps,
            "quiet_hours": [current.quiet_start.isoformat(), current.quiet_end.isoformat()],
            "global_daily_cap": current.global_daily_cap,
        },
    )
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
    variables: dict[str, str] | None = None,
    journey_id: int | None = None,
    journey_step: str = "",
) -> QueueResult:
    """Puts one message per contact in the outbox with a single INSERT … SELECT, keyed
    "<prefix>:contact:<id>" and skipped on conflict, so queueing the same campaign again is a
    no-op. ``daily_cap``/``weekly_cap`` override the workspace's caps (a journey's own).

    ``variables`` gives the audience-wide values ({{coupon}}, {{link}}; {{product}} defaults to
    the attached product's name): every one the template uses must be there. ``journey_id`` and
    ``journey_step`` are written on every row, so a journey can count its steps' messages.

    The statement joins each contact once to its consent and its address, and counts its
    messages in the cap window by the message_contact_time index (staged beforehand with the
    candidates on PostgreSQL, see ``_stage_candidates``), so the cost follows the batch,
    never the workspace's weekly volume."""
    if template.workspace_id != workspace.id or channel.workspace_id != workspace.id:
        raise NotFound("not_found", "Template or channel not found in this workspace.")
    if template.channel_kind != channel.kind:
        raise ValidationFailed(
            "template_channel_mismatch",
            f"Template {template.name!r} is for {template.channel_kind}, channel {channel.name!r} is {channel.kind}.",
        )
    if not channel.enabled:
        raise ValidationFailed("channel_disabled", f"Channel {channel.name!r} is disabled.")
    if len(journey_step) > 64:
        raise ValidationFailed(
            "bad_journey_step", "journey_step has at most 64 characters.", path="journey_step"
        )
    constants = rendering.constants_for(
        template.subject,
        template.body,
        product_name=template.product.name if template.product_id else None,
        given=variables,
    )
    caps = queries.cap_settings_for(workspace=workspace)
    zone = ZoneInfo(workspace.time_zone)
    scheduled = (
        guardrails.quiet_until(now, start=caps.quiet_start, end=caps.quiet_end, zone=zone) or now
    )
    day_cap = daily_cap if daily_cap is not None else caps.daily_caps.get(channel.kind)
    week_cap = weekly_cap if weekly_cap is not None else caps.weekly_caps.get(channel.kind)
    day_from, day_to = guardrails.day_window(scheduled, zone)
    week_from, _week_to = guardrails.week_window(scheduled, zone)
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
    sql = _Sql()
    ctes: list[str] = []
    joins: list[str] = []
    capped = day_cap is not None or week_cap is not None
    subject_sql, subject_params = rendering.render_sql(template.subject, constants)
    body_sql, body_params = rendering.render_sql(template.body, constants)
    select = sql.add(
        f"SELECT c.id AS contact_id, {subject_sql} AS subject, {body_sql} AS body, "
        "%s || CAST(c.id AS TEXT) AS ikey",
        [*subject_params, *body_params, prefix],
    )
    # Cap counts first: on SQLite they are subqueries of this select, whose parameters come
    # before the joins'. On PostgreSQL they are staged with the candidates (_stage_candidates).
    staged = connection.vendor == "postgresql"
    if capped:
        # Each candidate's own messages in the cap window (the week holds the day: both end
        # with the same local day), looked up by the message_contact_time index: the work
        # follows the contacts queued, not how much the workspace sent this week.
        window_from = week_from if week_cap is not None else day_from
        window_params = [_ts(window_from), _ts(day_to), channel.kind]
        if staged:
            counts = (
                "COUNT(m.id) FILTER (WHERE m.scheduled_at >= %s) AS day_n, COUNT(m.id) AS week_n "
                f"FROM {Contact._meta.db_table} c LEFT JOIN {msg} m ON m.contact_id = c.id "  # noqa: S608
                "AND m.scheduled_at >= %s AND m.scheduled_at < %s AND m.channel_kind = %s "
                f"AND m.status IN ({counted}) "
            )
            counts_params = [_ts(day_from), *window_params]
        else:
            window = (
                f"FROM {msg} m WHERE m.contact_id = c.id AND m.scheduled_at >= %s "  # noqa: S608
                f"AND m.scheduled_at < %s AND m.channel_kind = %s AND m.status IN ({counted})"
            )
            select += sql.add(
                f", (SELECT COUNT(*) {window} AND m.scheduled_at >= %s) AS day_n, "
                f"(SELECT COUNT(*) {window}) AS week_n",
                [*window_params, _ts(day_from), *window_params],
            )
    else:
        counts, counts_params = f"0 AS day_n, 0 AS week_n FROM {Contact._meta.db_table} c ", []
        if not staged:
            select += ", 0 AS day_n, 0 AS week_n"
    if staged:
        matched = _stage_candidates(
            f"{counts}WHERE c.workspace_id = %s AND c.id {match}",
            [*counts_params, workspace.id, *match_params],
        )
        select += ", capn.day_n, capn.week_n"
    if rendering.uses_store(template.subject, template.body):
        joins.append(f"LEFT JOIN {Store._meta.db_table} s ON s.id = c.store_id")
    if channel.consent_channel:
        select += ", k.status AS consent"
        joins.append(
            sql.add(
                f"LEFT JOIN {Consent._meta.db_table} k ON k.contact_id = c.id AND k.channel = %s",
                [channel.consent_channel],
            )
        )
    else:
        select += ", NULL AS consent"
    address_kind = ADAPTERS[channel.kind].address_kind
    if address_kind == "phone":
        select += ", CASE WHEN c.phone_enc <> '' THEN 1 ELSE 0 END AS has_address"
    elif address_kind == "email":
        select += ", CASE WHEN ea.contact_id IS NULL THEN 0 ELSE 1 END AS has_address"
        joins.append(
            sql.add(
                f"LEFT JOIN (SELECT DISTINCT i.contact_id FROM {Identity._meta.db_table} i "  # noqa: S608
                f"WHERE i.workspace_id = %s AND i.kind = '{IdentityKind.EMAIL}') ea ON ea.contact_id = c.id",
                [workspace.id],
            )
        )
    else:
        select += ", 1 AS has_address"
    # A contact queued before under this key is skipped by ON CONFLICT. The statement anti-joins
    # the outbox up front only when it matters: for the global cap, which counts the new rows in
    # order, and when this prefix was queued before (a re-queue), where skipping a million rows
    # in one hash join beats a million conflict probes. Both look only at this prefix's keys (a
    # range of the unique index); ON CONFLICT stays the guarantee.
    key_from, key_to = prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)
    fresh = ""
    fresh_params: list = []
    if caps.global_daily_cap is not None or _prefix_used(workspace, key_from, key_to):
        fresh = (
            f" AND NOT EXISTS (SELECT 1 FROM {msg} e WHERE e.workspace_id = %s "  # noqa: S608
            "AND e.idempotency_key >= %s AND e.idempotency_key < %s "
            "AND e.idempotency_key = %s || CAST(c.id AS TEXT))"
        )
        fresh_params = [workspace.id, key_from, key_to, prefix]
    if staged:
        # The candidates are the staged ones, whose size the planner knows.
        source = f"{_CANDIDATES} capn JOIN {Contact._meta.db_table} c ON c.id = capn.contact_id"
        where, where_params = "c.workspace_id = %s", [workspace.id]
    else:
        source = f"{Contact._meta.db_table} c"
        where, where_params = f"c.workspace_id = %s AND c.id {match}", [workspace.id, *match_params]
    candidates_sql = f"{select} FROM {source} {' '.join(joins)} " + sql.add(  # noqa: S608
        f"WHERE {where}{fresh}", [*where_params, *fresh_params]
    )
    require = "1 = 1" if channel.require_consent else "1 = 0"
    cap_rule = " OR ".join(
        [
            *([sql.add("day_n >= %s", [day_cap])] if day_cap is not None else []),
            *([sql.add("week_n >= %s", [week_cap])] if week_cap is not None else []),
        ]
    )
    reason_sql = (
        f"CASE WHEN consent = '{ConsentStatus.OPTED_OUT}' THEN '{SuppressReason.OPTED_OUT}' "
        f"WHEN {require} AND (consent IS NULL OR consent <> '{ConsentStatus.GRANTED}') THEN '{SuppressReason.NO_CONSENT}' "
        f"WHEN has_address = 0 THEN '{SuppressReason.NO_ADDRESS}' "
        + (f"WHEN {cap_rule} THEN '{SuppressReason.FREQUENCY_CAP}' " if cap_rule else "")
        + "END"
    )
    ctes.append(f"cand AS ({candidates_sql})")
    ctes.append(f"judged AS (SELECT cand.*, {reason_sql} AS pre_reason FROM cand)")  # noqa: S608
    if caps.global_daily_cap is not None:
        # The global cap lets the first contacts (by id) through, up to what is left today.
        ctes.append(
            sql.add(
                "final AS (SELECT judged.*, CASE WHEN pre_reason IS NOT NULL THEN pre_reason "  # noqa: S608
                "WHEN %s + SUM(CASE WHEN pre_reason IS NULL THEN 1 ELSE 0 END) "
                "OVER (ORDER BY contact_id ROWS UNBOUNDED PRECEDING) > %s "
                f"THEN '{SuppressReason.GLOBAL_DAILY_CAP}' END AS reason FROM judged)",
                [global_used, caps.global_daily_cap],
            )
        )
    else:
        ctes.append("final AS (SELECT judged.*, pre_reason AS reason FROM judged)")
    insert_sql = (
        f"WITH {', '.join(ctes)} "  # noqa: S608
        f"INSERT INTO {msg} (workspace_id, contact_id, channel_id, channel_kind, template_id, idempotency_key, "
        "subject, body, status, suppress_reason, daily_cap, weekly_cap, attempts, next_attempt_at, scheduled_at, "
        "last_error, provider_message_id, locked_by, queued_at, journey_id, journey_step) "
        + sql.add(
            "SELECT %s, contact_id, %s, %s, %s, ikey, subject, body, "  # noqa: S608
            f"CASE WHEN reason IS NULL THEN '{MessageStatus.QUEUED}' ELSE '{MessageStatus.SUPPRESSED}' END, "
            "COALESCE(reason, ''), CAST(%s AS integer), CAST(%s AS integer), 0, %s, %s, '', '', '', %s, "
            "CAST(%s AS bigint), %s FROM final WHERE 1 = 1 "
            "ON CONFLICT (workspace_id, idempotency_key) DO NOTHING RETURNING status, suppress_reason",
            [
                workspace.id,
                channel.id,
                channel.kind,
                template.id,
                daily_cap,
                weekly_cap,
                _ts(scheduled),
                _ts(scheduled),
                _ts(now),
                journey_id,
                journey_step,
            ],
        )
    )
    if connection.vendor == "postgresql":
        # Counted in the database: a million RETURNING rows would cost more than the insert.
        insert_sql = (
            f"WITH written AS ({insert_sql}) "  # noqa: S608
            "SELECT status, suppress_reason, COUNT(*) FROM written GROUP BY status, suppress_reason"
        )
    with connection.cursor() as cursor:
        if not staged:
            cursor.execute(
                f"SELECT count(*) FROM {Contact._meta.db_table} c WHERE c.workspace_id = %s AND c.id {match}",  # noqa: S608
                [workspace.id, *match_params],
            )
            matched = cursor.fetchone()[0]
        else:
            # Sorting a million candidates for the joins in memory rather than on disk.
            cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(insert_sql, sql.params)
        if connection.vendor == "postgresql":
            written = cursor.fetchall()
            cursor.execute(f"DROP TABLE {_CANDIDATES}")
        else:
            written = list(Counter(cursor.fetchall()).items())
            written = [(status, reason, n) for (status, reason), n in written]

    result = QueueResult(already_queued=matched - sum(n for _s, _r, n in written))
    suppressed: Counter[str] = Counter()
    for status, reason, n in written:
        if status == MessageStatus.SUPPRESSED:
            suppressed[reason] += n
        elif scheduled > now:
            result.delayed += n
        else:
            result.queued += n
    result.suppressed = dict(sorted(suppressed.items()))
    return result


_CANDIDATES = "siyu_queue_candidates"


def _stage_candidates(selected: str, params: list) -> int:
    """The contacts to queue for, each with its messages in the cap window (``selected``: the
    counts, then FROM … WHERE the candidates), into a temporary table before the outbox
    INSERT runs (PostgreSQL); returns how many there are.

    Not a subquery of the INSERT: when the outbox's statistics say it is empty (a new
    workspace's first big send), PostgreSQL reads it with a sequential scan per candidate, and
    within the INSERT every scan also walks the pages the statement has written so far: a
    million-contact launch went quadratic (over 18 minutes instead of a minute). Staged,
    nothing is being written while the outbox is read, and the INSERT's plan is made for the
    number of candidates there really are (a journey's just-entered contacts have no
    statistics yet, and were planned as one row)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_CANDIDATES}")
        cursor.execute(
            f"CREATE TEMP TABLE {_CANDIDATES} AS SELECT c.id AS contact_id, {selected} "  # noqa: S608
            "GROUP BY c.id",
            params,
        )
        matched = cursor.rowcount
        cursor.execute(f"ANALYZE {_CANDIDATES}")
    return matched


def _prefix_used(workspace: Workspace, key_from: str, key_to: str) -> bool:
    """Whether any key in [key_from, key_to) exists: one probe of the unique index."""
    return Message.objects.filter(
        workspace=workspace, idempotency_key__gte=key_from, idempotency_key__lt=key_to
    ).exists()


class _Sql:
    """Collects parameters in the order their SQL pieces are written into the statement."""

    def __init__(self) -> None:
        self.params: list = []

    def add(self, text: str, params: Sequence) -> str:
        self.params.extend(params)
        return text


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
    dispatchers see the claim. Rows left ``sending`` past their lease are due first, then queued
    rows in the order they fell due; each half walks its own partial index, so a claim costs the
    same with ten or a million rows waiting."""
    msg, chan = Message._meta.db_table, ChannelConfig._meta.db_table
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    true = "true" if connection.vendor == "postgresql" else "1"
    until = _ts(now + timedelta(seconds=lease_seconds))
    claimed: list[int] = []
    with transaction.atomic(), connection.cursor() as cursor:
        for status, due_column, order in (
            (MessageStatus.SENDING, "locked_until", "locked_until"),
            (MessageStatus.QUEUED, "next_attempt_at", "next_attempt_at, id"),
        ):
            wanted = limit - len(claimed)
            if wanted <= 0:
                break
            cursor.execute(
                f"UPDATE {msg} SET status = '{MessageStatus.SENDING}', locked_by = %s, locked_until = %s, "  # noqa: S608
                f"attempts = attempts + 1 WHERE id IN (SELECT id FROM {msg} WHERE "
                f"status = '{status}' AND {due_column} <= %s "
                f"AND channel_id IN (SELECT id FROM {chan} WHERE enabled = {true}) "
                f"ORDER BY {order} LIMIT %s{skip_locked}) RETURNING id",
                [worker_id, until, _ts(now), wanted],
            )
            claimed.extend(row[0] for row in cursor.fetchall())
    return sorted(claimed)


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
    capped = any(
        m.daily_cap is not None
        or m.weekly_cap is not None
        or m.channel_kind in caps.daily_caps
        or m.channel_kind in caps.weekly_caps
        for m in messages
    )
    if capped:  # an uncapped batch (say, the console's) need not count anything
        for row in out.filter(
            contact_id__in=contact_ids, sent_at__gte=week_from, sent_at__lt=day_to
        ).values("contact_id", "channel_kind", "sent_at"):
            key = (row["contact_id"], row["channel_kind"])
            budget.week[key] += 1
            if row["sent_at"] >= day_from:
                budget.day[key] += 1
    if caps.global_daily_cap is not None:
        # Bounded by the week of scheduling too, so the message_day index serves it: a message
        # sent today was scheduled within the week unless its channel was off for longer.
        budget.global_today = out.filter(
            scheduled_at__gte=week_from, sent_at__gte=day_from, sent_at__lt=day_to
        ).count()
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


_UNLOCK = {"locked_by": "", "locked_until": None}


def _record_one(message: Message, result: ProviderResult, *, worker_id: str, now: datetime) -> str:
    """A retry or a failure (the rare outcomes), inside the caller's transaction."""
    if result.retryable and message.attempts < MAX_ATTEMPTS:
        wait = BACKOFF_SECONDS[min(message.attempts, len(BACKOFF_SECONDS)) - 1]
        _mine(message, worker_id).update(
            status=MessageStatus.QUEUED,
            next_attempt_at=now + timedelta(seconds=wait),
            last_error=result.error,
            **_UNLOCK,
        )
        return "retried"
    error = (
        result.error
        if not result.retryable
        else f"gave up after {message.attempts} attempts: {result.error}"
    )
    _mine(message, worker_id).update(status=MessageStatus.FAILED, last_error=error, **_UNLOCK)
    return "failed"


def _record_sent(sent: list[tuple[int, str]], *, worker_id: str, now: datetime) -> None:
    """One UPDATE for a chunk of sent messages, each with its provider id, only where this
    worker still holds the row."""
    if not sent:
        return
    msg = Message._meta.db_table
    done = (
        f"status = '{MessageStatus.SENT}', sent_at = %s, provider_message_id = v.pid, "
        "last_error = '', locked_by = '', locked_until = NULL"
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {msg} m SET {done} FROM unnest(%s::bigint[], %s::text[]) AS v(id, pid) "  # noqa: S608
                f"WHERE m.id = v.id AND m.status = '{MessageStatus.SENDING}' AND m.locked_by = %s",
                [_ts(now), [i for i, _p in sent], [p[:200] for _i, p in sent], worker_id],
            )
        else:
            cursor.execute(
                f"UPDATE {msg} SET {done} FROM (SELECT json_extract(value, '$[0]') AS id, "  # noqa: S608
                "json_extract(value, '$[1]') AS pid FROM json_each(%s)) AS v "
                f"WHERE {msg}.id = v.id AND {msg}.status = '{MessageStatus.SENDING}' AND {msg}.locked_by = %s",
                [_ts(now), json.dumps([[i, p[:200]] for i, p in sent]), worker_id],
            )


@dataclass
class _Outcomes:
    """Outcomes sent but not yet recorded. They are written together, one transaction per
    chunk: a worker killed before the chunk commits has those messages sent again after its
    lease, with the same idempotency keys, so the receiver drops the repeats."""

    worker_id: str
    now: datetime
    sent: list[tuple[int, str]] = field(default_factory=list)
    other: list[tuple[Message, ProviderResult]] = field(default_factory=list)
    suppressed: list[tuple[Message, str]] = field(default_factory=list)
    since: float | None = None

    def __len__(self) -> int:
        return len(self.sent) + len(self.other) + len(self.suppressed)

    def add(self, message: Message, result: ProviderResult) -> None:
        if self.since is None:
            self.since = clock.monotonic()
        if result.ok:
            self.sent.append((message.id, result.provider_message_id))
        else:
            self.other.append((message, result))

    def due(self, every: int) -> bool:
        return len(self) >= every or (
            self.since is not None and clock.monotonic() - self.since >= RECORD_SECONDS
        )

    def flush(self, into: DispatchResult) -> None:
        if not len(self):
            return
        with transaction.atomic():
            _record_sent(self.sent, worker_id=self.worker_id, now=self.now)
            for message, result in self.other:
                outcome = _record_one(message, result, worker_id=self.worker_id, now=self.now)
                setattr(into, outcome, getattr(into, outcome) + 1)
            by_reason: dict[str, list[int]] = defaultdict(list)
            for message, reason in self.suppressed:
                by_reason[reason].append(message.id)
            for reason, ids in by_reason.items():
                Message.objects.filter(
                    id__in=ids, status=MessageStatus.SENDING, locked_by=self.worker_id
                ).update(status=MessageStatus.SUPPRESSED, suppress_reason=reason, **_UNLOCK)
        into.sent += len(self.sent)
        self.sent, self.other, self.suppressed, self.since = [], [], [], None


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


_SEND_FIELDS = (
    "id",
    "workspace_id",
    "contact_id",
    "channel_id",
    "channel_kind",
    "template_id",
    "idempotency_key",
    "subject",
    "body",
    "attempts",
    "daily_cap",
    "weekly_cap",
)


def _load_claimed(ids: list[int]) -> list[Message]:
    """The claimed rows with only what sending needs, and their few channels, workspaces and
    templates loaded once each rather than joined to every row."""
    match, params = in_list(ids)
    messages = list(
        Message.objects.extra(where=[f"id {match}"], params=params)  # noqa: S610 (in_list's SQL)
        .only(*_SEND_FIELDS)
        .order_by("id")
    )
    channels = ChannelConfig.objects.in_bulk({m.channel_id for m in messages})
    workspaces = Workspace.objects.in_bulk({m.workspace_id for m in messages})
    templates = MessageTemplate.objects.select_related("product").in_bulk(
        {m.template_id for m in messages if m.template_id}
    )
    for message in messages:
        message.channel = channels[message.channel_id]
        message.workspace = workspaces[message.workspace_id]
        message.template = templates.get(message.template_id)
    return messages


def messages_dispatch(
    *,
    worker_id: str,
    limit: int = 100,
    now: datetime | None = None,
    lease_seconds: int = LEASE_SECONDS,
    record_every: int = RECORD_EVERY,
) -> DispatchResult:
    """Claims up to ``limit`` due messages, re-checks the guardrails, sends them through their
    channel's adapter (paced to ``rate_per_second``) and records the outcomes.

    Not one transaction, on purpose: the claim commits first and the outcomes commit in chunks
    of ``record_every`` (or every RECORD_SECONDS), so a crash loses at most one chunk of
    outcomes, whose messages the lease brings back and resends under the same keys. The batch
    stops sending when its lease is nearly spent and puts the rest back."""
    now = now or timezone.now()
    deadline = clock.monotonic() + lease_seconds * 0.8
    result = DispatchResult()
    ids = _claim(worker_id=worker_id, limit=limit, now=now, lease_seconds=lease_seconds)
    result.claimed = len(ids)
    if not ids:
        return result
    claimed = _load_claimed(ids)
    suppressed: Counter[str] = Counter()
    by_workspace: dict[int, list[Message]] = defaultdict(list)
    for message in claimed:
        by_workspace[message.workspace_id].append(message)
    pending = _Outcomes(worker_id=worker_id, now=now)
    for messages in by_workspace.values():
        workspace = messages[0].workspace
        budget = _budget(workspace, messages, now)
        quiet = guardrails.quiet_until(
            now, start=budget.caps.quiet_start, end=budget.caps.quiet_end, zone=budget.zone
        )
        if quiet is not None:
            result.delayed += _put_back(messages, worker_id=worker_id, next_attempt_at=quiet)
            continue
        for message in messages:
            if message.attempts > MAX_ATTEMPTS:
                pending.add(message, ProviderResult.retry("worker stopped mid-send"))
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
        attachments: dict[int, dict | None] = {}
        for index, message in enumerate(messages):
            if clock.monotonic() > deadline:
                pending.flush(result)
                result.released += _put_back(messages[index:], worker_id=worker_id)
                break
            reason = _send_time_reason(message, budget, addresses)
            if reason is not None:
                pending.suppressed.append((message, reason))
                suppressed[reason] += 1
                continue
            adapter = adapters.setdefault(message.channel_id, adapter_for(message.channel))
            _pace(paced_at, message.channel_id, adapter.rate_per_second)
            if message.template_id not in attachments:
                attachments[message.template_id] = (
                    library_queries.attachments_of(message.template) if message.template else None
                )
            outbound = Outbound(
                message_id=message.id,
                idempotency_key=message.idempotency_key,
                contact_id=message.contact_id,
                to=addresses.get(message.contact_id, ""),
                subject=message.subject,
                body=message.body,
                attachments=attachments[message.template_id],
            )
            answer = adapter.send(outbound)
            pending.add(message, answer)
            if answer.ok:
                key = (message.contact_id, message.channel_kind)
                budget.day[key] += 1
                budget.week[key] += 1
                budget.global_today += 1
            if pending.due(record_every):
                pending.flush(result)
    pending.flush(result)
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
    limit: int = 100,
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


# --- exports -------------------------------------------------------------------------------------


def outbox_export_record(*, workspace: Workspace, actor: Any, rows: int, filters: dict) -> None:
    """Every export of the outbox leaves an audit row: who, which filters, how many rows. The
    bodies carry names, so an export is personal data leaving the system."""
    audit_record(
        workspace=workspace,
        action="outbox.export",
        actor_user=actor,
        data={"rows": rows, "filters": filters},
    )
