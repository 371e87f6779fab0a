"""The calendar and the written catalogue (stores, staff, products) that every generator step
indexes into with numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np

from siyu.commerce import queries as commerce_queries
from siyu.commerce import services as commerce_services
from siyu.commerce.schemas import ProductIn, StaffIn, StoreIn
from siyu.demo.catalogue import (
    BRAND,
    CITIES,
    GIVEN,
    OFF_SEASON,
    PRODUCTS,
    SURNAMES,
)
from siyu.tenancy.models import Workspace

DAY = 86_400
WEEK = 7 * DAY
TUESDAY = 1
STAFF_PER_STORE = 4  # 店长 + 3 导购; the manager comes first

# Relative traffic per local hour, 8:00–22:59: lunch and after-work peaks.
_HOURS = np.arange(8, 23)
_HOUR_WEIGHTS = np.array(
    [0.3, 0.5, 0.7, 1.0, 1.1, 0.8, 0.6, 0.6, 0.8, 1.1, 1.4, 1.5, 1.3, 0.9, 0.4]
)
_HOUR_P = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()


@dataclass(frozen=True)
class Clock:
    """Local days 0..days-1 end the day before ``today``; China keeps no daylight saving, so a
    local day is always 86,400 seconds from ``base``."""

    base: int
    days: int
    month: np.ndarray
    weekday: np.ndarray

    @classmethod
    def ending(cls, today: date, weeks: int, tz: ZoneInfo) -> Clock:
        first = today - timedelta(weeks=weeks)
        days = (today - first).days
        dates = [first + timedelta(days=d) for d in range(days)]
        return cls(
            base=int(datetime.combine(first, time(), tz).timestamp()),
            days=days,
            month=np.array([d.month for d in dates], dtype=np.int8),
            weekday=np.array([d.weekday() for d in dates], dtype=np.int8),
        )

    @property
    def end(self) -> int:
        return self.base + self.days * DAY

    def at(self, day: np.ndarray, tod: np.ndarray) -> np.ndarray:
        return self.base + day.astype(np.int64) * DAY + tod

    def day_of(self, epoch: np.ndarray) -> np.ndarray:
        return ((epoch - self.base) // DAY).astype(np.int64)

    def epoch_days(self, day: np.ndarray) -> np.ndarray:
        """Local day index as days since 1970-01-01 (for date columns)."""
        return (self.base + 8 * 3600) // DAY + day


def business_seconds(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds after local midnight, in opening hours with the day's peaks."""
    return rng.choice(_HOURS, n, p=_HOUR_P) * 3600 + rng.integers(0, 3600, n)


def chinese_names(rng: np.random.Generator, n: int) -> list[str]:
    surname = np.array(list(SURNAMES))[rng.integers(0, len(SURNAMES), n)]
    given = np.array(list(GIVEN))
    first = given[rng.integers(0, len(given), n)]
    second = np.where(rng.random(n) < 0.6, given[rng.integers(0, len(given), n)], "")
    return [
        a + b + c for a, b, c in zip(surname.tolist(), first.tolist(), second.tolist(), strict=True)
    ]


@dataclass(frozen=True)
class World:
    clock: Clock
    store_id: np.ndarray
    store_code: np.ndarray
    store_city: np.ndarray
    store_weight: np.ndarray
    staff_id: np.ndarray  # store s has staff s*STAFF_PER_STORE .. +STAFF_PER_STORE-1
    staff_code: np.ndarray
    product_id: np.ndarray
    sku: np.ndarray
    product_name: np.ndarray
    price_fen: np.ndarray
    category: np.ndarray
    weighed: np.ndarray
    launch_day: np.ndarray
    #: [month 1..12 → row, product] sampling weight: popularity in season, a trace outside.
    month_weight: np.ndarray

    @property
    def n_stores(self) -> int:
        return len(self.store_id)


def store_count(contacts: int) -> int:
    """About 250 stores at a million contacts, never fewer than one per city."""
    return int(np.clip(round(np.sqrt(contacts) / 4), len(CITIES), 400))


def build_world(
    *, workspace: Workspace, rng: np.random.Generator, contacts: int, clock: Clock, today: date
) -> World:
    """Writes stores, staff and products through the commerce services (they are few) and
    returns their ids as arrays."""
    n = store_count(contacts)
    weights = np.array([c.weight for c in CITIES])
    cities = np.concatenate(
        [
            np.arange(len(CITIES)),
            rng.choice(len(CITIES), n - len(CITIES), p=weights / weights.sum()),
        ]
    )
    cities.sort(kind="stable")
    stores, per_city = [], {}
    first_day = today - timedelta(days=clock.days)
    for k in cities.tolist():
        city = CITIES[k]
        i = per_city[k] = per_city.get(k, 0) + 1
        district = city.districts[(i - 1) % len(city.districts)]
        branch = "" if i <= len(city.districts) else f"{(i - 1) // len(city.districts) + 1}号"
        stores.append(
            StoreIn(
                code=f"{city.code}{i:03d}",
                name=f"{BRAND}·{city.name}{district}{branch}店",
                city=city.name,
                region=city.region,
                opened_at=first_day - timedelta(days=int(rng.integers(30, 2500))),
            )
        )
    commerce_services.stores_upsert(workspace=workspace, items=stores)
    names = chinese_names(rng, n * STAFF_PER_STORE)
    staff = [
        StaffIn(
            code=f"E{j + 1:05d}",
            name=names[j],
            store_code=stores[j // STAFF_PER_STORE].code,
            wecom_userid=f"ff_e{j + 1:05d}",
            is_manager=j % STAFF_PER_STORE == 0,
        )
        for j in range(n * STAFF_PER_STORE)
    ]
    commerce_services.staff_upsert(workspace=workspace, items=staff)
    products = [
        ProductIn(
            sku=p.sku,
            name=p.name,
            category=p.category,
            price=Decimal(p.price),
            cost=(Decimal(p.price) * Decimal(str(p.cost_ratio))).quantize(Decimal("0.01")),
            is_new=p.launched_days_ago <= 60,
            launch_date=today - timedelta(days=p.launched_days_ago),
            attributes={
                "season": list(p.season),
                "unit": "500g" if p.weighed else "份",
                "weighed": p.weighed,
            },
        )
        for p in PRODUCTS
    ]
    commerce_services.products_upsert(workspace=workspace, items=products)
    store_ids = commerce_queries.store_ids_by_code(
        workspace=workspace, codes=[s.code for s in stores]
    )
    staff_ids = commerce_queries.staff_ids_by_code(
        workspace=workspace, codes=[s.code for s in staff]
    )
    product_ids = commerce_queries.product_ids_by_sku(
        workspace=workspace, skus=[p.sku for p in PRODUCTS]
    )
    month_weight = np.array(
        [
            [p.popularity * (1.0 if m in p.season else OFF_SEASON) for p in PRODUCTS]
            for m in range(13)
        ]
    )
    return World(
        clock=clock,
        store_id=np.array([store_ids[s.code] for s in stores]),
        store_code=np.array([s.code for s in stores]),
        store_city=np.array([s.city for s in stores]),
        store_weight=rng.lognormal(0.0, 0.5, n),
        staff_id=np.array([staff_ids[s.code] for s in staff]),
        staff_code=np.array([s.code for s in staff]),
        product_id=np.array([product_ids[p.sku] for p in PRODUCTS]),
        sku=np.array([p.sku for p in PRODUCTS]),
        product_name=np.array([p.name for p in PRODUCTS]),
        price_fen=np.array([round(float(p.price) * 100) for p in PRODUCTS], dtype=np.int64),
        category=np.array([p.category for p in PRODUCTS]),
        weighed=np.array([p.weighed for p in PRODUCTS]),
        launch_day=np.array([clock.days - p.launched_days_ago for p in PRODUCTS]),
        month_weight=month_weight,
    )
