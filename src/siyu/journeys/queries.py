"""Reads of journeys: lists, the per-step measurement, and the dry run.

Measurement follows each enrollment for the goal's window (7 days without a goal): converted if
the goal happened in [entered, entered + window), revenue the net amount of the orders paid in
that window. Entrants kept in the holdout are measured the same way, so the difference between
the two is what the journey added; ROI is that incremental revenue over the journey's message
cost (docs/journeys.md).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, QuerySet
from django.utils import timezone

from siyu.analytics.explore import epoch
from siyu.analytics.tables import fetch, table, to_sql_fragment
from siyu.audiences.rules import compile_rule
from siyu.commerce.models import Order
from siyu.contacts.models import Consent, ConsentStatus, Contact
from siyu.errors import NotFound
from siyu.events.models import Event
from siyu.experiments import stats
from siyu.journeys import definition as spec
from siyu.journeys import sources
from siyu.journeys.models import (
    Enrollment,
    EnrollmentStatus,
    Journey,
    JourneyRun,
    JourneyVersion,
    StepCount,
)
from siyu.messaging import rendering
from siyu.messaging.models import ChannelConfig, Message, MessageStatus, MessageTemplate
from siyu.tenancy.models import Workspace

DEFAULT_WINDOW_DAYS = 7
DAY = 86_400
STEP_LABELS = {
    "send": "发送消息",
    "webhook": "调用 Webhook",
    "wait": "等待",
    "branch": "条件分支",
    "tag": "标签",
    "task": "员工任务",
    "split": "A/B 分流",
    "exit": "退出",
}


def journeys_list(*, workspace: Workspace) -> QuerySet[Journey]:
    return (
        Journey.objects.filter(workspace=workspace)
        .select_related("current_version")
        .annotate(enrolled=Count("enrollments"))
        .order_by("-updated_at")
    )


def journey_get(*, workspace: Workspace, journey_id: int) -> Journey:
    journey = (
        Journey.objects.filter(workspace=workspace, id=journey_id)
        .select_related("current_version")
        .first()
    )
    if journey is None:
        raise NotFound("journey_not_found", f"Journey {journey_id} not found in this workspace.")
    return journey


def journey_versions(*, workspace: Workspace, journey: Journey) -> QuerySet[JourneyVersion]:
    return JourneyVersion.objects.filter(workspace=workspace, journey=journey).order_by("-number")


def journey_runs(*, workspace: Workspace, journey: Journey, limit: int = 20) -> list[JourneyRun]:
    return list(
        JourneyRun.objects.filter(workspace=workspace, journey=journey).order_by("-at")[:limit]
    )


# --- measurement --------------------------------------------------------------------------------


@dataclass
class StepStats:
    key: str
    type: str
    label: str
    reached: int = 0
    messages: dict[str, int] = field(default_factory=dict)  # status -> count
    suppressed: dict[str, int] = field(default_factory=dict)  # reason -> count

    @property
    def sent(self) -> int:
        out = ("sent", "delivered", "read", "clicked")
        return sum(self.messages.get(s, 0) for s in out)

    @property
    def read(self) -> int:
        return sum(self.messages.get(s, 0) for s in ("read", "clicked"))

    @property
    def clicked(self) -> int:
        return self.messages.get("clicked", 0)


@dataclass
class Arm:
    """One side of the comparison: the treated (or a split arm) or the holdout."""

    name: str
    n: int
    converted: int
    revenue: Decimal
    revenue_squares: float

    @property
    def conversion(self) -> float | None:
        return self.converted / self.n if self.n else None

    @property
    def revenue_per_contact(self) -> Decimal | None:
        return (self.revenue / self.n).quantize(Decimal("0.01")) if self.n else None


@dataclass
class JourneyStats:
    window_days: int
    statuses: dict[str, int]
    steps: list[StepStats]
    treated: Arm
    holdout: Arm | None
    arms: list[Arm]
    messages_sent: int
    cost: Decimal
    lift: stats.Comparison | None = None
    incremental_revenue: Decimal | None = None
    roi: Decimal | None = None
    roi_reason: str = ""

    @property
    def entered(self) -> int:
        return sum(self.statuses.values())


def _arms(
    workspace: Workspace, journey: Journey, window_days: int, goal: dict | None
) -> dict[str, Arm]:
    """Per arm ("treated", "holdout", and each split variant as "variant:<key>"): entrants,
    converted within the window and revenue within the window, in one grouped query."""
    e = table(Enrollment)
    o = table(Order)
    e = e.filter(e.journey_id == journey.id).select(
        eid=e.id, cid=e.contact_id, t0=epoch(e.entered_at), status=e.status, variant=e.variant
    )
    o = o.filter(o.workspace_id == workspace.id).select(
        ocid=o.contact_id, paid=epoch(o.paid_at), net=o.amount - o.refunded_amount
    )
    window = window_days * DAY
    revenue = (
        e.left_join(o, [e.cid == o.ocid, o.paid >= e.t0, o.paid < e.t0 + window])
        .group_by(["eid", "cid", "t0", "status", "variant"])
        .aggregate(revenue=o.net.sum().fill_null(0), orders=o.ocid.count())
    )
    if goal is not None and goal["type"] == "event":
        ev = table(Event)
        ev = ev.filter(ev.workspace_id == workspace.id, ev.type == goal["event"]).select(
            gcid=ev.contact_id, at=epoch(ev.occurred_at)
        )
        hits = (
            revenue.left_join(
                ev, [revenue.cid == ev.gcid, ev.at >= revenue.t0, ev.at < revenue.t0 + window]
            )
            .group_by(["eid", "status", "variant", "revenue"])
            .aggregate(goals=ev.gcid.count())
        )
        per = hits.mutate(hit=(hits.goals > 0).ifelse(1, 0))
    else:
        per = revenue.mutate(hit=(revenue.orders > 0).ifelse(1, 0))
    rows = fetch(
        per.group_by(["status", "variant"]).aggregate(
            n=per.eid.count(),
            converted=per.hit.sum(),
            revenue=per.revenue.sum(),
            squares=(per.revenue.cast("float64") * per.revenue.cast("float64")).sum(),
        )
    )
    arms: dict[str, Arm] = {}

    def add(name: str, n: int, converted: int, money: Any, squares: Any) -> None:
        arm = arms.setdefault(name, Arm(name, 0, 0, Decimal(0), 0.0))
        arm.n += int(n)
        arm.converted += int(converted or 0)
        arm.revenue += Decimal(str(money or 0)).quantize(Decimal("0.01"))
        arm.revenue_squares += float(squares or 0)

    for status, variant, n, converted, money, squares in rows:
        side = "holdout" if status == EnrollmentStatus.HOLDOUT else "treated"
        add(side, n, converted, money, squares)
        if variant:
            add(f"variant:{variant}", n, converted, money, squares)
    return arms


def journey_stats(
    *, workspace: Workspace, journey: Journey, now: datetime | None = None
) -> JourneyStats:
    definition = journey.current_version.definition
    goal = definition.get("goal")
    window_days = goal["within_days"] if goal else DEFAULT_WINDOW_DAYS
    statuses = dict(
        Enrollment.objects.filter(workspace=workspace, journey=journey)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    reached: dict[str, int] = defaultdict(int)
    for key, n in StepCount.objects.filter(workspace=workspace, journey=journey).values_list(
        "step_key", "reached"
    ):
        reached[key] += n
    messages: dict[str, dict[str, int]] = defaultdict(dict)
    suppressed: dict[str, dict[str, int]] = defaultdict(dict)
    for key, status, reason, n in (
        Message.objects.filter(workspace=workspace, journey_id=journey.id)
        .values_list("journey_step", "status", "suppress_reason")
        .annotate(n=Count("id"))
        .values_list("journey_step", "status", "suppress_reason", "n")
    ):
        messages[key][status] = messages[key].get(status, 0) + n
        if status == MessageStatus.SUPPRESSED:
            suppressed[key][reason] = suppressed[key].get(reason, 0) + n
    steps = [
        StepStats(
            key=step["key"],
            type=step["type"],
            label=step.get("name") or STEP_LABELS[step["type"]],
            reached=reached.get(step["key"], 0),
            messages=messages.get(step["key"], {}),
            suppressed=suppressed.get(step["key"], {}),
        )
        for step in definition["steps"]
    ]
    arms = _arms(workspace, journey, window_days, goal)
    treated = arms.get("treated", Arm("treated", 0, 0, Decimal(0), 0.0))
    holdout = arms.get("holdout")
    sent = sum(s.sent for s in steps)
    cost = (Decimal(str(definition.get("cost_per_message", "0"))) * sent).quantize(Decimal("0.01"))
    result = JourneyStats(
        window_days=window_days,
        statuses=statuses,
        steps=steps,
        treated=treated,
        holdout=holdout,
        arms=[a for name, a in sorted(arms.items()) if name.startswith("variant:")],
        messages_sent=sent,
        cost=cost,
    )
    if holdout is None or holdout.n == 0:
        result.roi_reason = "没有对照组（holdout_percent 为 0），无法计算增量收入"
        return result
    result.lift = stats.two_proportions(holdout.converted, holdout.n, treated.converted, treated.n)
    if treated.n:
        result.incremental_revenue = (
            (treated.revenue / treated.n - holdout.revenue / holdout.n) * treated.n
        ).quantize(Decimal("0.01"))
    if cost == 0:
        result.roi_reason = "消息成本为 0（未设置 cost_per_message 或尚未发送），ROI 无意义"
    elif result.incremental_revenue is not None:
        result.roi = (result.incremental_revenue / cost).quantize(Decimal("0.01"))
    return result


# --- dry run ------------------------------------------------------------------------------------


@dataclass
class DryStep:
    key: str
    type: str
    label: str
    reach: int


@dataclass
class DryContact:
    contact_id: int
    name: str
    path: list[str]
    messages: list[dict[str, str]]
    notes: list[str]


@dataclass
class DryRun:
    audience: int
    audience_note: str
    holdout: int
    steps: list[DryStep]
    sample: list[DryContact]


def _audience_sql(
    workspace: Workspace, definition: dict, journey: Journey | None, now: datetime
) -> tuple[str, list, str]:
    """SQL of the contact ids who would enter now (``contact_id``), with a note saying what it
    stands for. Event triggers have no audience in advance: the last 7 days' trigger rows
    stand in for it."""
    trigger = definition["trigger"]
    if trigger["type"] == "event":
        if trigger["event"] == "birthday":
            source = sources.birthday_source(
                workspace, now.astimezone(ZoneInfo(workspace.time_zone)).date()
            )
            note = "今天过生日的客户"
        else:
            source = sources.trigger_source(workspace, trigger, now - timedelta(days=7), now)
            note = "按最近 7 天的触发事件估算"
    else:
        source = sources.audience_source(workspace, trigger.get("segment_id"), "dry")
        note = "人群包当前成员" if trigger.get("segment_id") else "全部客户"
    sql, params = source.query.sql_with_params()
    where = ["1 = 1"]
    if definition.get("entry_rule") is not None:
        rule = compile_rule(workspace=workspace, rule=definition["entry_rule"], now=now)
        where.append(f"src.cid IN (SELECT r.contact_id FROM ({to_sql_fragment(rule)}) r)")  # noqa: S608
    if journey is not None and sources.reentry_of(definition) != "always":
        active = (
            " AND e.status = 'active'" if sources.reentry_of(definition) == "after_exit" else ""
        )
        where.append(
            f"NOT EXISTS (SELECT 1 FROM {Enrollment._meta.db_table} e WHERE e.journey_id = %s "  # noqa: S608
            f"AND e.contact_id = src.cid{active})"
        )
        params = [*params, journey.id]
    return (
        f"SELECT DISTINCT src.cid AS contact_id FROM ({sql}) src WHERE {' AND '.join(where)}",  # noqa: S608
        list(params),
        note,
    )


def _count(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM ({sql}) x", params)  # noqa: S608
        return cursor.fetchone()[0]


def journey_dry_run(
    *,
    workspace: Workspace,
    definition: Any,
    journey: Journey | None = None,
    now: datetime | None = None,
    sample_size: int = 20,
) -> DryRun:
    """Who would enter now and what each would receive — without writing anything. Reach per
    step is computed on the whole audience (branches evaluated on today's data, splits by
    their weights); the sample walks real contacts through and renders their messages."""
    now = now or timezone.now()
    definition = spec.validate(workspace=workspace, definition=definition, now=now)
    audience_sql, params, note = _audience_sql(workspace, definition, journey, now)
    audience = _count(audience_sql, params)
    holdout_share = definition.get("holdout_percent", 0) / 100
    steps = definition["steps"]
    by_key = spec.step_by_key(definition)
    # reach: a set expressed as SQL flows through the graph (it has no cycles)
    flows: dict[str, list[tuple[str, list, float]]] = defaultdict(list)
    flows[steps[0]["key"]].append((audience_sql, params, 1 - holdout_share))
    reach: dict[str, float] = defaultdict(float)
    order = _topological(definition)
    for key in order:
        index, step = by_key[key]
        for sql, p, share in flows.get(key, []):
            n = _count(sql, p) * share
            reach[key] += n
            if step["type"] == "branch":
                rule = to_sql_fragment(
                    compile_rule(workspace=workspace, rule=step["rule"], now=now)
                )
                yes = f"SELECT a.contact_id FROM ({sql}) a WHERE a.contact_id IN (SELECT r.contact_id FROM ({rule}) r)"  # noqa: S608
                no = f"SELECT a.contact_id FROM ({sql}) a WHERE a.contact_id NOT IN (SELECT r.contact_id FROM ({rule}) r)"  # noqa: S608
                for target, part in ((step["yes"], yes), (step["no"], no)):
                    if target != spec.EXIT:
                        flows[target].append((part, p, share))
            elif step["type"] == "split":
                for arm in step["arms"]:
                    if arm["key"] != spec.HOLDOUT_ARM and arm.get("next", spec.EXIT) != spec.EXIT:
                        flows[arm.get("next", spec.EXIT)].append(
                            (sql, p, share * arm["weight"] / 100)
                        )
            else:
                for target in spec.outgoing(steps, index):
                    if target != spec.EXIT:
                        flows[target].append((sql, p, share))
    dry_steps = [
        DryStep(
            s["key"],
            s["type"],
            s.get("name") or STEP_LABELS[s["type"]],
            round(reach.get(s["key"], 0)),
        )
        for s in steps
    ]
    sample = _sample(workspace, definition, audience_sql, params, now, sample_size)
    return DryRun(
        audience=audience,
        audience_note=note,
        holdout=round(audience * holdout_share),
        steps=dry_steps,
        sample=sample,
    )


def _topological(definition: dict) -> list[str]:
    steps = definition["steps"]
    keys = {s["key"]: i for i, s in enumerate(steps)}
    seen: set[str] = set()
    out: list[str] = []

    def visit(key: str) -> None:
        if key in seen or key == spec.EXIT:
            return
        seen.add(key)
        for target in spec.outgoing(steps, keys[key]):
            visit(target)
        out.append(key)

    visit(steps[0]["key"])
    return list(reversed(out))


def _sample(
    workspace: Workspace,
    definition: dict,
    audience_sql: str,
    params: list,
    now: datetime,
    size: int,
) -> list[DryContact]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT a.contact_id FROM ({audience_sql}) a ORDER BY a.contact_id LIMIT %s",  # noqa: S608
            [*params, size],
        )
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return []
    contacts = {c.id: c for c in Contact.objects.filter(workspace=workspace, id__in=ids)}
    steps = definition["steps"]
    by_key = spec.step_by_key(definition)
    branch_hits: dict[str, set[int]] = {}
    arms: dict[str, dict[int, str]] = {}
    holdout = set()
    if definition.get("holdout_percent"):
        # the salt is the journey's, which a dry run of an unsaved journey does not have yet
        held = (
            stats.buckets("dry-run:holdout", ids)
            < definition["holdout_percent"] * stats.BUCKETS // 100
        )
        holdout = {cid for cid, h in zip(ids, held, strict=True) if h}
    out = []
    for cid in ids:
        contact = contacts[cid]
        path, messages, notes = [], [], []
        if cid in holdout:
            out.append(
                DryContact(
                    cid, contact.name or contact.nickname, [], [], ["对照组：不发送任何内容"]
                )
            )
            continue
        key = steps[0]["key"]
        while key != spec.EXIT:
            index, step = by_key[key]
            path.append(step.get("name") or f"{STEP_LABELS[step['type']]}（{key}）")
            if step["type"] == "branch":
                if key not in branch_hits:
                    rule = compile_rule(workspace=workspace, rule=step["rule"], now=now)
                    r = rule.filter(rule.contact_id.isin(ids))
                    branch_hits[key] = {row[0] for row in fetch(r)}
                key = step["yes"] if cid in branch_hits[key] else step["no"]
                continue
            if step["type"] == "split":
                if key not in arms:
                    chosen = stats.assign_variants(f"dry-run:{key}", ids, step["arms"])
                    arms[key] = dict(zip(ids, chosen, strict=True))
                arm = next(a for a in step["arms"] if a["key"] == arms[key][cid])
                notes.append(f"分流到 {arm['key']}")
                key = arm.get("next", spec.EXIT) if arm["key"] != spec.HOLDOUT_ARM else spec.EXIT
                continue
            if step["type"] in ("send", "webhook"):
                messages.append(_render_for(workspace, step, contact))
            elif step["type"] == "task":
                notes.append(
                    f"为负责员工创建任务：{rendering.render(step['title'], _values(contact))}"
                )
            elif step["type"] == "wait":
                notes.append("等待 " + _wait_text(step))
            if step["type"] == "exit":
                break
            key = spec.outgoing(steps, index)[0]
        out.append(DryContact(cid, contact.name or contact.nickname, path, messages, notes))
    return out


def _values(contact: Contact) -> dict[str, str]:
    return {
        "nickname": contact.nickname or contact.name,
        "name": contact.name or contact.nickname,
        "city": contact.city,
        "member_no": contact.member_no,
        "store": contact.store.name if contact.store_id else "",
    }


def _render_for(workspace: Workspace, step: dict, contact: Contact) -> dict[str, str]:
    template = MessageTemplate.objects.select_related("product").get(
        workspace=workspace, id=step["template_id"]
    )
    channel = ChannelConfig.objects.get(workspace=workspace, id=step["channel_id"])
    values = _values(contact)
    if template.product_id:
        values["product"] = template.product.name
    values.update(step.get("variables") or {})
    note = ""
    if channel.consent_channel:
        consent = (
            Consent.objects.filter(
                workspace=workspace, contact=contact, channel=channel.consent_channel
            )
            .values_list("status", flat=True)
            .first()
        )
        if consent == ConsentStatus.OPTED_OUT:
            note = "已退订：发送时会被拦截"
        elif channel.require_consent and consent != ConsentStatus.GRANTED:
            note = "未授权：发送时会被拦截"
    return {
        "channel": channel.name,
        "subject": rendering.render(template.subject, values),
        "body": rendering.render(template.body, values),
        "note": note,
    }


def _wait_text(step: dict) -> str:
    if "duration" in step:
        d = step["duration"]
        parts = [
            f"{d[u]}{label}"
            for u, label in (("days", "天"), ("hours", "小时"), ("minutes", "分钟"))
            if d.get(u)
        ]
        return "".join(parts)
    until = step["until"]
    days = "、".join("一二三四五六日"[d - 1] for d in until.get("weekdays", []))
    return f"到{('周' + days) if days else '每天'} {until['time']}"
