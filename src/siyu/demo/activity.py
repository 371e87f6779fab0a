"""Behavioural events for a slice of the pool: browsing, carts, messages, coupons, groups,
content with a reading time, and the invites behind referrals."""

from __future__ import annotations

import json

import numpy as np

from siyu.demo import writer
from siyu.demo.catalogue import PRODUCTS
from siyu.demo.parameters import DemoParameters
from siyu.demo.pool import REFERRAL, Pool
from siyu.demo.world import DAY, World
from siyu.events.models import Event


def _props(**values: object) -> str:
    return json.dumps(values, ensure_ascii=False)


_SKUS = [_props(sku=p.sku) for p in PRODUCTS]
_TYPES = (
    # type, share, channel, properties to choose from
    (
        "page_view",
        0.22,
        "mini_program",
        [_props(page=p) for p in ("home", "category", "member", "cart", "coupon_center")],
    ),
    ("product_view", 0.20, "mini_program", _SKUS),
    ("add_to_cart", 0.09, "mini_program", _SKUS),
    (
        "content_view",
        0.10,
        "official_account",
        [
            _props(content_id=f"A{i:03d}", title=t)
            for i, t in enumerate(
                (
                    "车厘子怎么挑",
                    "荔枝保鲜小妙招",
                    "周二会员日攻略",
                    "当季水果日历",
                    "榴莲开箱",
                    "草莓季来了",
                )
            )
        ],
    ),
    (
        "message_read",
        0.12,
        "wecom",
        [_props(message=m) for m in ("周二会员日·全场88折", "今日到店新品", "社群接龙·阳光玫瑰")],
    ),
    (
        "message_click",
        0.05,
        "wecom",
        [_props(message=m) for m in ("周二会员日·全场88折", "今日到店新品", "社群接龙·阳光玫瑰")],
    ),
    (
        "coupon_claim",
        0.06,
        "mini_program",
        [_props(coupon=c) for c in ("会员日满59减10", "满49减5", "新人首单立减8元")],
    ),
    (
        "coupon_redeem",
        0.03,
        "store",
        [_props(coupon=c) for c in ("会员日满59减10", "满49减5", "新人首单立减8元")],
    ),
    ("share", 0.05, "mini_program", _SKUS),
    ("join_group", 0.05, "wecom", None),
    ("leave_group", 0.01, "wecom", None),
    (
        "search",
        0.02,
        "mini_program",
        [_props(q=q) for q in ("车厘子", "榴莲", "果切", "礼盒", "草莓", "芒果")],
    ),
)
_TYPE_P = np.array([t[1] for t in _TYPES])


def write_events(
    *,
    workspace_id: int,
    pool: Pool,
    lo: int,
    hi: int,
    orders_per_contact: np.ndarray,
    world: World,
    rng: np.random.Generator,
    params: DemoParameters,
    now: int,
    first_no: int,
) -> int:
    """Each contact's events spread over their time in the pool, more for those who buy more;
    group events name the contact's store group."""
    clock = world.clock
    sl = slice(lo, hi)
    count = rng.poisson(params.events_base + params.events_per_order * orders_per_contact)
    who = lo + np.repeat(np.arange(hi - lo), count)
    seen = pool.first_seen[who]
    seen_day = clock.day_of(seen)
    day = seen_day + (rng.random(len(who)) * (clock.days - seen_day)).astype(np.int64)
    tod = rng.integers(7 * 3600, DAY, len(who))
    at = np.maximum(clock.at(day, tod), seen + rng.integers(60, 3600, len(who)))
    at = np.minimum(at, clock.end - 1)
    kind = rng.choice(len(_TYPES), len(who), p=_TYPE_P)
    props = np.empty(len(who), dtype=object)
    groups = np.array(
        [_props(group=f"{code}福利群") for code in world.store_code.tolist()], dtype=object
    )
    for t, (_, _, _, options) in enumerate(_TYPES):
        sel = np.flatnonzero(kind == t)
        if options is None:
            props[sel] = groups[pool.store[who[sel]]]
        else:
            props[sel] = np.array(options, dtype=object)[rng.integers(0, len(options), len(sel))]
    duration = np.clip(rng.lognormal(3.6, 0.9, len(who)), 1, 1800).astype(np.int64)
    is_content = np.array([t[0] for t in _TYPES])[kind] == "content_view"

    # The referrer's invite, shortly before the friend arrived.
    invited = lo + np.flatnonzero((pool.source[sl] == REFERRAL) & (pool.referrer[sl] >= 0))
    inviter = pool.referrer[invited]
    invite_at = np.maximum(
        pool.first_seen[invited] - rng.integers(600, 2 * DAY, len(invited)),
        pool.first_seen[inviter] + 60,
    )
    invite_at = np.minimum(invite_at, pool.first_seen[invited])

    contact = np.concatenate([pool.ref_id[who], pool.ref_id[inviter]])
    n = len(contact)
    types = np.concatenate(
        [np.array([t[0] for t in _TYPES])[kind], np.full(len(invited), "invite")]
    )
    channels = np.concatenate(
        [np.array([t[2] for t in _TYPES])[kind], np.full(len(invited), "mini_program")]
    )
    properties = np.concatenate(
        [
            props,
            np.array(
                [
                    _props(campaign="老带新·邀请有礼", invitee_id=int(i))
                    for i in pool.ref_id[invited]
                ],
                dtype=object,
            ),
        ]
    )
    return writer.write(
        Event,
        {
            "workspace": writer.Col("int", np.full(n, workspace_id)),
            "event_id": writer.Col("text", [f"ev{i:012d}" for i in range(first_no, first_no + n)]),
            "contact": writer.Col("int", contact),
            "type": writer.Col("text", types),
            "name": writer.Col("text", np.full(n, "")),
            "channel": writer.Col("text", channels),
            "occurred_at": writer.Col("ts", np.concatenate([at, invite_at])),
            "duration_seconds": writer.Col(
                "int",
                np.concatenate([duration, np.zeros(len(invited), dtype=np.int64)]),
                null=np.concatenate([~is_content, np.ones(len(invited), dtype=bool)]),
            ),
            "properties": writer.Col("text", properties),
            "received_at": writer.Col("ts", np.full(n, now)),
        },
    )
