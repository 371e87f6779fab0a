"""The private-domain health score: seven documented sub-scores (0–100), each with its raw value
and its trend against the previous period, and their weighted mean, so an agency can compare
the brands it runs on one scale.

Each raw value is a share of the pool computed set-at-a-time by Ibis expressions on the raw
tables (distinct contacts cannot be summed from daily rollups). A raw value maps to its score
piecewise-linearly between the documented anchors in ``SUBSCORES``; a sub-score whose
denominator is zero is None with a reason and drops out of the composite, whose weights are then
re-normalised over the sub-scores that exist. docs/metrics.md lists the anchors and weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import ibis
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from ibis.expr.types import Table

from siyu.analytics import rollups
from siyu.analytics.queries import health_snapshot_get
from siyu.analytics.tables import fetch, table
from siyu.commerce.models import Order
from siyu.contacts.models import (
    Consent,
    ConsentChannel,
    ConsentStatus,
    Contact,
    Identity,
    IdentityKind,
)
from siyu.events.models import Event
from siyu.tenancy.models import Membership, Role, Workspace

#: Channels on which reaching a contact costs nothing per message.
FREE_CHANNELS = (ConsentChannel.WECOM, ConsentChannel.OFFICIAL_ACCOUNT, ConsentChannel.MINI_PROGRAM)
ACTIVE_DAYS = 30
#: Period lengths the 15-minute rollups job snapshots (the metrics page's presets), each for the
#: period ending today and for the one before it (the trend).
SNAPSHOT_PERIODS = (7, 30, 90)

HEALTH_REASONS: dict[str, Promise] = {
    "empty_pool": _("期初客户池为空。"),
    "no_contacts": _("客户池为空。"),
    "no_active": _("近 30 天没有活跃客户。"),
    "no_purchasers": _("期内没有购买客户。"),
    "no_new_contacts": _("期内没有新增客户。"),
    "no_scores": _("没有可计算的分项。"),
}


@dataclass(frozen=True)
class SubScoreDef:
    code: str
    name: Promise
    definition: Promise
    weight: int
    anchors: tuple[tuple[float, float], ...]  # (raw value, score), raw ascending


SUBSCORES: tuple[SubScoreDef, ...] = (
    SubScoreDef(
        "growth",
        _("用户池增长"),
        _("期内新增客户 ÷ 期初客户池"),
        15,
        ((0.0, 0.0), (0.02, 50.0), (0.05, 80.0), (0.10, 100.0)),
    ),
    SubScoreDef(
        "reachable",
        _("免费触达占比"),
        _("在企业微信、公众号或小程序已同意（或有企微好友身份）的客户 ÷ 客户池"),
        15,
        ((0.0, 0.0), (0.30, 50.0), (0.60, 80.0), (0.90, 100.0)),
    ),
    SubScoreDef(
        "active",
        _("活跃占比"),
        _("近 30 天有行为或订单的客户 ÷ 客户池"),
        15,
        ((0.0, 0.0), (0.10, 50.0), (0.25, 80.0), (0.50, 100.0)),
    ),
    SubScoreDef(
        "conversion",
        _("转化"),
        _("期内购买客户 ÷ 近 30 天活跃客户"),
        15,
        ((0.0, 0.0), (0.05, 50.0), (0.15, 80.0), (0.30, 100.0)),
    ),
    SubScoreDef(
        "repurchase",
        _("复购"),
        _("期内购买客户中累计下单 ≥ 2 次的占比"),
        15,
        ((0.0, 0.0), (0.20, 50.0), (0.35, 80.0), (0.60, 100.0)),
    ),
    SubScoreDef(
        "referral",
        _("推荐"),
        _("期内新增客户中由老客推荐的占比"),
        10,
        ((0.0, 0.0), (0.05, 50.0), (0.15, 80.0), (0.30, 100.0)),
    ),
    SubScoreDef(
        "opt_out",
        _("退订（反向）"),
        _("期内退订的客户 ÷ 客户池；越低越好"),
        15,
        ((0.0, 100.0), (0.005, 80.0), (0.02, 50.0), (0.05, 0.0)),
    ),
)


def score_of(raw: float, anchors: Sequence[tuple[float, float]]) -> float:
    """Piecewise-linear between anchors; flat beyond the first and last."""
    if raw <= anchors[0][0]:
        return anchors[0][1]
    for (x0, y0), (x1, y1) in zip(anchors, anchors[1:], strict=False):
        if raw <= x1:
            return y0 + (y1 - y0) * (raw - x0) / (x1 - x0)
    return anchors[-1][1]


@dataclass(frozen=True)
class SubScore:
    definition: SubScoreDef
    raw: float | None
    score: float | None
    reason: str | None
    previous_raw: float | None
    previous_score: float | None

    @property
    def trend(self) -> float | None:
        """Points gained (or lost) since the previous period."""
        if self.score is None or self.previous_score is None:
            return None
        return self.score - self.previous_score

    @property
    def why(self) -> str:
        return str(HEALTH_REASONS[self.reason]) if self.reason else ""


@dataclass(frozen=True)
class Health:
    workspace: Workspace
    start: date
    end: date
    subscores: list[SubScore]
    score: float | None
    previous_score: float | None
    as_of: datetime | None = None  # when read from a snapshot: when it was computed

    @property
    def trend(self) -> float | None:
        if self.score is None or self.previous_score is None:
            return None
        return self.score - self.previous_score


def _count(expr: Table) -> int:
    return int(fetch(expr.aggregate(n=expr.count()))[0][0] or 0)


def raw_counts(
    *, workspace: Workspace, start: date, end: date, store_id: int | None = None
) -> dict[str, int]:
    """The counts behind the sub-scores for local days ``start``..``end`` (a staff member's
    view narrows the pool to their store)."""
    span = rollups.day_range(workspace, start, start)
    t0, t1 = span.start, rollups.day_range(workspace, end, end).end
    active_from = rollups.day_range(
        workspace, end - timedelta(days=ACTIVE_DAYS - 1), end - timedelta(days=ACTIVE_DAYS - 1)
    ).start
    wid = workspace.id

    c = table(Contact)
    c = c.filter(c.workspace_id == wid)
    if store_id is not None:
        c = c.filter(c.store_id == store_id)
    pool_end = c.filter(c.first_seen_at < t1)
    new = c.filter(c.first_seen_at >= t0, c.first_seen_at < t1)

    k = table(Consent)
    granted = k.filter(
        k.workspace_id == wid,
        k.status == ConsentStatus.GRANTED.value,
        k.channel.isin([ch.value for ch in FREE_CHANNELS]),
    )
    i = table(Identity)
    wecom = i.filter(i.workspace_id == wid, i.kind == IdentityKind.WECOM_EXTERNAL_USERID.value)
    reachable_ids = ibis.union(
        granted.select(contact_id=granted.contact_id),
        wecom.select(contact_id=wecom.contact_id),
        distinct=True,
    )

    e = table(Event)
    e = e.filter(e.workspace_id == wid, e.occurred_at >= active_from, e.occurred_at < t1)
    o = table(Order)
    o_all = o.filter(o.workspace_id == wid, o.paid_at < t1)
    o_recent = o_all.filter(o_all.paid_at >= active_from)
    active_ids = ibis.union(
        e.select(contact_id=e.contact_id),
        o_recent.select(contact_id=o_recent.contact_id),
        distinct=True,
    )

    buyers = o_all.filter(o_all.paid_at >= t0).select(contact_id=o_all.contact_id).distinct()
    per_buyer = o_all.group_by("contact_id").aggregate(n=o_all.count())
    repeaters = buyers.join(per_buyer, "contact_id").filter(lambda t: t.n >= 2)

    opted = k.filter(
        k.workspace_id == wid,
        k.status == ConsentStatus.OPTED_OUT.value,
        k.updated_at >= t0,
        k.updated_at < t1,
    )
    opted_ids = opted.select(contact_id=opted.contact_id).distinct()

    def in_pool(ids: Table) -> Table:
        return pool_end.semi_join(ids, pool_end.id == ids.contact_id)

    return {
        "pool_start": _count(c.filter(c.first_seen_at < t0)),
        "pool_end": _count(pool_end),
        "new": _count(new),
        "referred_new": _count(new.filter(new.referred_by_id.notnull())),
        "reachable": _count(in_pool(reachable_ids)),
        "active": _count(in_pool(active_ids)),
        "purchasers": _count(in_pool(buyers)),
        "repeaters": _count(in_pool(repeaters)),
        "opt_outs": _count(in_pool(opted_ids)),
    }


def _raw(code: str, n: dict[str, int]) -> tuple[float | None, str | None]:
    num, den, reason = {
        "growth": ("new", "pool_start", "empty_pool"),
        "reachable": ("reachable", "pool_end", "no_contacts"),
        "active": ("active", "pool_end", "no_contacts"),
        "conversion": ("purchasers", "active", "no_active"),
        "repurchase": ("repeaters", "purchasers", "no_purchasers"),
        "referral": ("referred_new", "new", "no_new_contacts"),
        "opt_out": ("opt_outs", "pool_end", "no_contacts"),
    }[code]
    return (n[num] / n[den], None) if n[den] else (None, reason)


def _composite(scores: list[tuple[int, float | None]]) -> float | None:
    known = [(w, s) for w, s in scores if s is not None]
    weight = sum(w for w, _ in known)
    return sum(w * s for w, s in known) / weight if weight else None


def period_counts(
    *,
    workspace: Workspace,
    start: date,
    end: date,
    store_id: int | None = None,
    now: datetime | None = None,
) -> tuple[dict[str, int], datetime | None]:
    """``raw_counts`` for the period from its snapshot when there is a usable one (a whole
    workspace only; a store's view is small enough to count), else counted now. Also returns
    when the snapshot was computed (None: counted now)."""
    if store_id is None:
        snapshot = health_snapshot_get(
            workspace=workspace, day=end, days=(end - start).days + 1, now=now
        )
        if snapshot is not None:
            return {k: int(v) for k, v in snapshot.counts.items()}, snapshot.computed_at
    return raw_counts(workspace=workspace, start=start, end=end, store_id=store_id), None


def workspace_health(
    *,
    workspace: Workspace,
    start: date,
    end: date,
    store_id: int | None = None,
    now: datetime | None = None,
) -> Health:
    """Sub-scores for ``start``..``end`` and for the same number of days before."""
    days = (end - start).days + 1
    now_counts, as_of = period_counts(
        workspace=workspace, start=start, end=end, store_id=store_id, now=now
    )
    before, _at = period_counts(
        workspace=workspace,
        start=start - timedelta(days=days),
        end=start - timedelta(days=1),
        store_id=store_id,
        now=now,
    )
    subs = []
    for d in SUBSCORES:
        raw, reason = _raw(d.code, now_counts)
        praw, _r = _raw(d.code, before)
        subs.append(
            SubScore(
                definition=d,
                raw=raw,
                reason=reason,
                score=None if raw is None else round(score_of(raw, d.anchors), 1),
                previous_raw=praw,
                previous_score=None if praw is None else round(score_of(praw, d.anchors), 1),
            )
        )
    composite = _composite([(s.definition.weight, s.score) for s in subs])
    previous = _composite([(s.definition.weight, s.previous_score) for s in subs])
    return Health(
        workspace=workspace,
        start=start,
        end=end,
        subscores=subs,
        score=None if composite is None else round(composite, 1),
        previous_score=None if previous is None else round(previous, 1),
        as_of=as_of,
    )


def health_comparison(*, memberships: Sequence[Membership], start: date, end: date) -> list[Health]:
    """One health per workspace the user belongs to (an agency runs several brands), best
    first. A staff login sees only their store, which is no brand comparison, so it is left out."""
    rows = [
        workspace_health(workspace=m.workspace, start=start, end=end)
        for m in memberships
        if m.role != Role.STAFF
    ]
    return sorted(rows, key=lambda h: (h.score is None, -(h.score or 0), h.workspace.id))
