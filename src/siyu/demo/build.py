"""Builds the 鲜果时光 demo brand into a workspace: a fruit chain whose customers arrive through
store channel QR codes, delivery cards, the Official Account, the mini program, Douyin and
Xiaohongshu imports and referrals, and buy by a repeat-buying process with known parameters."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from django.db import transaction

from siyu import bulk
from siyu.commerce.models import Order, OrderItem, Refund
from siyu.contacts.models import Consent, Contact, Identity
from siyu.contacts.schemas import ContactIn
from siyu.contacts.services import contacts_upsert
from siyu.demo import writer
from siyu.demo.activity import write_events
from siyu.demo.catalogue import PRODUCTS
from siyu.demo.fastload import keys_and_indexes_deferred, workspace_rows_delete
from siyu.demo.orders import purchase_times, write_orders
from siyu.demo.parameters import DEMO_PARAMETERS
from siyu.demo.pool import (
    DOUYIN,
    STORE_QR,
    XIAOHONGSHU,
    Pool,
    draw_pool,
    identity_value,
    write_contacts,
)
from siyu.demo.world import STAFF_PER_STORE, Clock, World, build_world
from siyu.errors import ValidationFailed
from siyu.events.models import Event
from siyu.progress import NoProgress, Progress
from siyu.tenancy.models import Workspace

#: Contacts generated and written together: bounds memory at the million-contact size.
CHUNK = 50_000
MAX_MERGE_PAIRS = 300
#: The tables the pool is written into, whose keys and indexes wait for the end of the load.
LOADED = (Contact, Identity, Consent, Order, OrderItem, Refund, Event)


@dataclass
class DemoSummary:
    contacts: int
    identities: int
    consents: int
    stores: int
    staff: int
    products: int
    orders: int
    order_items: int
    refunds: int
    events: int
    merges: int
    seconds: float
    parameters: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return (
            f"Demo brand built in {self.seconds:.1f} s: {self.contacts:,} contacts ({self.merges:,} merged across "
            f"channels), {self.orders:,} orders with {self.order_items:,} items and {self.refunds:,} refunds, "
            f"{self.events:,} events; {self.stores} stores, {self.staff} staff, {self.products} products."
        )


def build_demo(
    *,
    workspace: Workspace,
    contacts: int = 20000,
    seed: int = 7,
    progress: Progress | None = None,
    today: date | None = None,
) -> DemoSummary:
    """Fills an empty workspace in one transaction. The same seed and ``today`` give the same
    contacts, orders and events (only ciphertexts and database ids differ)."""
    if contacts < 1:
        raise ValidationFailed(
            "invalid_size", "The demo needs at least one contact.", path="contacts"
        )
    progress = progress or NoProgress()
    started = time.perf_counter()
    params = DEMO_PARAMETERS
    tz = ZoneInfo(workspace.time_zone)
    today = today or datetime.now(tz).date()
    clock = Clock.ending(today, params.window_weeks, tz)
    now = int(time.time())

    def rng(*keys: int) -> np.random.Generator:
        return np.random.default_rng([seed, *keys])

    totals = dict.fromkeys(("identities", "orders", "order_items", "refunds", "events"), 0)
    with transaction.atomic(), writer.large_cache():
        progress.start("Stores, staff and products", 1)
        world = build_world(
            workspace=workspace, rng=rng(0), contacts=contacts, clock=clock, today=today
        )
        progress.advance(1)
        pool = draw_pool(
            rng(1), contacts, world, np.asarray(bulk.reserve_ids(Contact, contacts), dtype=np.int64)
        )
        pairs = pick_merge_pairs(pool, rng(3), min(MAX_MERGE_PAIRS, contacts // 60))
        progress.start("Contacts known on two channels, merged", len(pairs))
        early = np.unique(pairs)
        totals["identities"] += write_contacts(
            workspace_id=workspace.id,
            pool=pool,
            idx=early,
            world=world,
            rng=rng(4),
            seed=seed,
            now=now,
        )
        merges = merge_pairs(workspace=workspace, pool=pool, pairs=pairs, seed=seed)
        progress.advance(len(pairs))
        progress.start("Contacts, orders and events", contacts)
        with keys_and_indexes_deferred(LOADED):
            _write_pool(
                workspace_id=workspace.id,
                pool=pool,
                early=early,
                world=world,
                rng=rng,
                seed=seed,
                now=now,
                totals=totals,
                progress=progress,
            )
            progress.start("Indexes and foreign keys", None)
        # A merge folds the two contacts' consents into one set.
        consents = Consent.objects.filter(workspace=workspace).count()
    return DemoSummary(
        contacts=contacts - merges,
        consents=consents,
        stores=world.n_stores,
        staff=world.n_stores * STAFF_PER_STORE,
        products=len(PRODUCTS),
        merges=merges,
        seconds=round(time.perf_counter() - started, 2),
        parameters={
            **params.as_dict(),
            "seed": seed,
            "today": today.isoformat(),
            "time_unit": "week",
            "window_start": (today - timedelta(weeks=params.window_weeks)).isoformat(),
        },
        **totals,
    )


def _write_pool(
    *,
    workspace_id: int,
    pool: Pool,
    early: np.ndarray,
    world: World,
    rng: Callable[..., np.random.Generator],
    seed: int,
    now: int,
    totals: dict[str, int],
    progress: Progress,
) -> None:
    """The pool chunk by chunk: contacts with their identities and consents, their purchase
    histories and their events. ``early`` (the merged contacts) are written already."""
    params = DEMO_PARAMETERS
    contacts = len(pool)
    for chunk, lo in enumerate(range(0, contacts, CHUNK)):
        hi = min(contacts, lo + CHUNK)
        r = rng(2, chunk)
        idx = np.setdiff1d(np.arange(lo, hi), early, assume_unique=True)
        totals["identities"] += write_contacts(
            workspace_id=workspace_id,
            pool=pool,
            idx=idx,
            world=world,
            rng=r,
            seed=seed,
            now=now,
        )
        hist = purchase_times(pool=pool, lo=lo, hi=hi, world=world, rng=r, params=params)
        written = write_orders(
            workspace_id=workspace_id,
            pool=pool,
            hist=hist,
            world=world,
            rng=r,
            params=params,
            now=now,
            first_no=totals["orders"] + 1,
        )
        totals["events"] += write_events(
            workspace_id=workspace_id,
            pool=pool,
            lo=lo,
            hi=hi,
            orders_per_contact=np.bincount(hist.contact - lo, minlength=hi - lo),
            world=world,
            rng=r,
            params=params,
            now=now,
            first_no=totals["events"] + 1,
        )
        totals["orders"] += written.orders
        totals["order_items"] += written.items
        totals["refunds"] += written.refunds
        progress.advance(hi - lo)


@transaction.atomic
def demo_delete(*, workspace: Workspace) -> None:
    """Deletes a demo workspace and everything in it (``siyu demo --rebuild``): every table's
    rows in one statement instead of Django's cascade, which at the benchmark size walks tens of
    millions of rows a few hundred ids at a time."""
    workspace_rows_delete(workspace_id=workspace.id)
    workspace.delete()


def pick_merge_pairs(pool: Pool, rng: np.random.Generator, pairs: int) -> np.ndarray:
    """(import, shopper) pool indices: a Douyin or Xiaohongshu import who never bought, and a
    store customer with a phone. Imports who never bought keep every survivor's purchases one
    BG/NBD history."""
    imports = np.flatnonzero(
        np.isin(pool.source, [DOUYIN, XIAOHONGSHU]) & ~pool.buyer & ~pool.has_phone
    )
    shoppers = np.flatnonzero((pool.source == STORE_QR) & pool.buyer & pool.has_phone)
    k = min(pairs, len(imports), len(shoppers))
    return np.column_stack(
        [np.sort(rng.choice(imports, k, replace=False)), rng.choice(shoppers, k, replace=False)]
    )


def merge_pairs(*, workspace: Workspace, pool: Pool, pairs: np.ndarray, seed: int) -> int:
    """The store contact sends both ids, as if the import gave their phone number at the till,
    and OneID merges the two through contacts_upsert. It runs before the bulk of the pool is
    written, while the identity lookups are cheap; later rows point at the survivors."""
    if len(pairs) == 0:
        return 0
    kinds = np.where(pool.source[pairs[:, 0]] == DOUYIN, "douyin_id", "xiaohongshu_id")
    items = [
        ContactIn(
            identities=[
                {"kind": kind, "value": identity_value(kind, i, seed)},
                {"kind": "phone", "value": identity_value("phone", j, seed)},
            ],
            source_channel="store_qr",
        )
        for kind, i, j in zip(
            kinds.tolist(), pairs[:, 0].tolist(), pairs[:, 1].tolist(), strict=True
        )
    ]
    merged = 0
    for result in contacts_upsert(workspace=workspace, items=items):
        gone = np.array(result.merged_ids, dtype=np.int64) - pool.id[0]
        pool.ref_id[gone] = result.contact.id
        merged += len(gone)
    return merged
