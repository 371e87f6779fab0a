"""Purchase histories for a slice of the pool: BG/NBD timing, Gamma-Gamma amounts, the Tuesday
member day, channels, seasonal baskets and a few refunds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from siyu import bulk
from siyu.commerce.models import Order, OrderItem, Refund
from siyu.demo import writer
from siyu.demo.catalogue import REFUND_REASONS
from siyu.demo.model import draw_order_values, simulate_repeat_purchases
from siyu.demo.parameters import DemoParameters
from siyu.demo.pool import Pool
from siyu.demo.world import DAY, STAFF_PER_STORE, TUESDAY, WEEK, World, business_seconds

CHANNELS = np.array(["store", "mini_program", "delivery", "third_party"])
STORE, MINI_PROGRAM, DELIVERY, THIRD_PARTY = range(4)
# Row per pool source (see pool.SOURCES), column per channel above.
_CHANNEL_MIX = np.array(
    [
        [0.62, 0.23, 0.12, 0.03],  # store_qr
        [0.15, 0.20, 0.65, 0.00],  # delivery_card
        [0.30, 0.50, 0.15, 0.05],  # official_account
        [0.30, 0.50, 0.15, 0.05],  # mini_program
        [0.20, 0.30, 0.15, 0.35],  # douyin
        [0.20, 0.30, 0.15, 0.35],  # xiaohongshu
        [0.55, 0.30, 0.12, 0.03],  # referral
    ]
).cumsum(axis=1)
#: The weighed remainder of a basket is never less than ¥3 when other goods are in it.
_MIN_WEIGHED_FEN = 300


@dataclass(frozen=True)
class Histories:
    """Orders of one slice, sorted by (contact, paid_at)."""

    contact: np.ndarray  # index into the pool
    paid_at: np.ndarray
    day: np.ndarray
    amount: np.ndarray  # fen paid


def purchase_times(
    *, pool: Pool, lo: int, hi: int, world: World, rng: np.random.Generator, params: DemoParameters
) -> Histories:
    """Every buyer's first purchase plus BG/NBD repeats. Some of a member's repeats move to the
    nearest Tuesday: the count of purchases is the model's, only their days change (by at most
    three, never before the first purchase, onto another purchase's day or past the window)."""
    clock = world.clock
    buyers = lo + np.flatnonzero(pool.buyer[lo:hi])
    first = pool.first_order[buyers]
    first_day = clock.day_of(first)
    first_tod = first - clock.at(first_day, np.zeros_like(first_day))
    repeats = simulate_repeat_purchases(rng, (clock.end - first) / WEEK, params)
    owner = repeats.owner
    day = np.minimum(
        clock.day_of(first[owner] + (repeats.t * WEEK).astype(np.int64)), clock.days - 1
    )
    shift = pool.member[buyers[owner]] & (rng.random(len(owner)) < params.member_day_shift)
    delta = (TUESDAY - clock.weekday[day] + 3) % 7 - 3
    moved = day + delta
    shift &= (delta != 0) & (moved > first_day[owner]) & (moved < clock.days)
    _, where, counts = np.unique(
        owner * clock.days + np.where(shift, moved, day), return_inverse=True, return_counts=True
    )
    shift &= counts[where] == 1
    day = np.where(shift, moved, day)
    tod = business_seconds(rng, len(owner))
    same_day = day == first_day[owner]
    tod = np.where(same_day, np.minimum(np.maximum(tod, first_tod[owner] + 300), DAY - 1), tod)
    who = np.concatenate([np.arange(len(buyers)), owner])
    days = np.concatenate([first_day, day])
    paid = np.concatenate([first, clock.at(day, tod)])
    order = np.lexsort((paid, who))
    who, days, paid = who[order], days[order], paid[order]
    _, values = draw_order_values(rng, len(buyers), who, params)
    amount = np.maximum(np.rint(values * 100).astype(np.int64), 100)
    return Histories(contact=buyers[who], paid_at=paid, day=days, amount=amount)


def _pick(rng: np.random.Generator, month: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One product per order from ``weights[month]`` (a row per month)."""
    out = np.zeros(len(month), dtype=np.int64)
    for m in np.unique(month).tolist():
        sel = np.flatnonzero(month == m)
        cum = np.cumsum(weights[m])
        out[sel] = np.searchsorted(cum, rng.random(len(sel)) * cum[-1], side="right")
    return out


@dataclass(frozen=True)
class Written:
    orders: int
    items: int
    refunds: int


def write_orders(
    *,
    workspace_id: int,
    pool: Pool,
    hist: Histories,
    world: World,
    rng: np.random.Generator,
    params: DemoParameters,
    now: int,
    first_no: int,
) -> Written:
    clock = world.clock
    n = len(hist.contact)
    if n == 0:
        return Written(0, 0, 0)
    ids = np.asarray(bulk.reserve_ids(Order, n), dtype=np.int64)
    month, weekday = clock.month[hist.day], clock.weekday[hist.day]
    source = pool.source[hist.contact]
    channel = (rng.random(n)[:, None] > _CHANNEL_MIX[source]).sum(axis=1)
    home = pool.store[hist.contact]
    p_store = world.store_weight / world.store_weight.sum()
    store = np.where(rng.random(n) < 0.9, home, rng.choice(world.n_stores, n, p=p_store))
    owner = pool.owner[hist.contact]
    any_staff = store * STAFF_PER_STORE + rng.integers(0, STAFF_PER_STORE, n)
    u = rng.random(n)
    own = (owner >= 0) & (store == home)
    staff = np.select(
        [
            (channel == STORE) & own & (u < 0.8),
            channel == STORE,
            (channel == MINI_PROGRAM) & (owner >= 0) & (u < 0.4),
        ],
        [owner, any_staff, owner],
        -1,
    )
    platform = np.select(
        [channel == DELIVERY, channel == THIRD_PARTY],
        [
            np.where(rng.random(n) < 0.65, "meituan", "eleme"),
            np.where(rng.random(n) < 0.6, "douyin", "jd_daojia"),
        ],
        "",
    )

    amount = hist.amount
    member_day = pool.member[hist.contact] & (weekday == TUESDAY) & (channel != THIRD_PARTY)
    coupon = ~member_day & (rng.random(n) < 0.1) & (amount >= 2000)
    gross = amount.copy()
    keep = 1.0 - params.member_day_discount
    gross[member_day] = np.ceil(amount[member_day] / keep).astype(np.int64)
    gross[coupon] += np.where(amount[coupon] >= 6000, 1000, 500)
    discount = gross - amount

    refunded = np.zeros(n, dtype=np.int64)
    refund = rng.random(n) < params.refund_share
    full = rng.random(n) < 0.4
    part = np.maximum((amount * rng.uniform(0.1, 0.6, n)).astype(np.int64), 1)
    refunded[refund] = np.where(full, amount, part)[refund]
    status = np.where(
        refunded == 0, "paid", np.where(refunded >= amount, "refunded", "partially_refunded")
    )

    # Numbered by the build's running count: unique in the workspace, the same for a seed.
    order_no = [f"FF{i:011d}" for i in range(first_no, first_no + n)]
    writer.write(
        Order,
        {
            "id": writer.Col("int", ids),
            "workspace": writer.Col("int", np.full(n, workspace_id)),
            "order_no": writer.Col("text", order_no),
            "contact": writer.Col("int", pool.ref_id[hist.contact]),
            "channel": writer.Col("text", CHANNELS[channel]),
            "platform": writer.Col("text", platform),
            "store": writer.Col("int", world.store_id[store]),
            "staff": writer.Col("int", world.staff_id[np.maximum(staff, 0)], null=staff < 0),
            "paid_at": writer.Col("ts", hist.paid_at),
            "gross_amount": writer.Col("money", gross),
            "discount_amount": writer.Col("money", discount),
            "amount": writer.Col("money", amount),
            "refunded_amount": writer.Col("money", refunded),
            "status": writer.Col("text", status),
            "created_at": writer.Col("ts", np.full(n, now)),
        },
    )
    items = _write_items(
        workspace_id=workspace_id,
        order_ids=ids,
        gross=gross,
        month=month,
        day=hist.day,
        world=world,
        rng=rng,
        now=now,
    )
    k = np.flatnonzero(refund)
    at = np.minimum(
        hist.paid_at[k] + rng.integers(600, 2 * DAY, len(k)),
        np.maximum(clock.end - 1, hist.paid_at[k]),
    )
    refunds = writer.write(
        Refund,
        {
            "workspace": writer.Col("int", np.full(len(k), workspace_id)),
            "refund_no": writer.Col(
                "text", [f"RF{no[2:]}" for no in np.array(order_no)[k].tolist()]
            ),
            "order": writer.Col("int", ids[k]),
            "amount": writer.Col("money", refunded[k]),
            "refunded_at": writer.Col("ts", at),
            "reason": writer.Col(
                "text", np.array(REFUND_REASONS)[rng.integers(0, len(REFUND_REASONS), len(k))]
            ),
            "created_at": writer.Col("ts", np.full(len(k), now)),
        },
    )
    return Written(n, items, refunds)


def _write_items(
    *,
    workspace_id: int,
    order_ids: np.ndarray,
    gross: np.ndarray,
    month: np.ndarray,
    day: np.ndarray,
    world: World,
    rng: np.random.Generator,
    now: int,
) -> int:
    """A basket adds up to the gross amount exactly: perhaps a fixed-price item (果切, 礼盒, juice,
    boxed berries) that fits, then one or two weighed fruits priced per 500 g whose weighed
    amounts take the rest. Products sell mostly in season and never before launch."""
    n = len(order_ids)
    weighed = world.month_weight * world.weighed
    fixed = world.month_weight * ~world.weighed
    fallback = int(np.flatnonzero(world.sku == "FF-APPLE")[0])

    primary = _pick(rng, month, weighed)
    primary = np.where(world.launch_day[primary] <= day, primary, fallback)
    item = _pick(rng, month, fixed)
    qty = 1 + ((rng.random(n) < 0.2) & np.isin(world.category[item], ["果切", "果汁"]))
    fixed_amt = world.price_fen[item] * qty
    has_fixed = (
        (rng.random(n) < 0.35)
        & (world.launch_day[item] <= day)
        & (fixed_amt <= gross - _MIN_WEIGHED_FEN)
    )
    rest = gross - np.where(has_fixed, fixed_amt, 0)
    second = _pick(rng, month, weighed)
    second = np.where(world.launch_day[second] <= day, second, fallback)
    has_second = (rng.random(n) < 0.3) & (rest >= 1000) & (second != primary)
    second_amt = np.where(has_second, (rest * rng.uniform(0.3, 0.6, n)).astype(np.int64), 0)

    parts = [
        (
            np.arange(n),
            primary,
            np.ones(n, dtype=np.int64),
            world.price_fen[primary],
            rest - second_amt,
        ),
    ]
    k = np.flatnonzero(has_second)
    parts.append(
        (k, second[k], np.ones(len(k), dtype=np.int64), world.price_fen[second[k]], second_amt[k])
    )
    k = np.flatnonzero(has_fixed)
    parts.append((k, item[k], qty[k], world.price_fen[item[k]], fixed_amt[k]))
    order, product, quantity, unit, amount = (
        np.concatenate(col) for col in zip(*parts, strict=True)
    )
    m = len(order)
    return writer.write(
        OrderItem,
        {
            "workspace": writer.Col("int", np.full(m, workspace_id)),
            "order": writer.Col("int", order_ids[order]),
            "product": writer.Col("int", world.product_id[product]),
            "sku": writer.Col("text", world.sku[product]),
            "name": writer.Col("text", world.product_name[product]),
            "quantity": writer.Col("int", quantity),
            "unit_price": writer.Col("money", unit),
            "amount": writer.Col("money", amount),
        },
    )
