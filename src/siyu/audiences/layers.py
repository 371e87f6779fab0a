"""RFM classes, lifecycle stages and intent layers of every contact of a workspace, written as
Ibis expressions so the same computation runs on SQLite, PostgreSQL and DuckDB over Parquet.

The work is done by ``median_interval_expression`` (one row: the workspace's median purchase
rhythm, the yardstick for one-order buyers), ``scores_expression`` (the RFM scores, ranked on
the buyers' own rows) and ``layers_expression`` (one row per contact with every layer column),
which ``services.layers_refresh`` writes with one INSERT … SELECT. docs/layers.md states every rule with its reasons.

Time arithmetic is done on epoch seconds (``epoch_seconds`` compiles natively on every engine;
SQLite's date difference would compile to a Python function Django's connection lacks), and
``now`` is a literal compared in the same unit, so recency is exact to the second.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
from django.utils import translation
from ibis.expr.types import Column, NumericValue, Table

from siyu.analytics.tables import table, utc_cutoff
from siyu.audiences.models import (
    IntentLayer,
    LayerConfig,
    LifecycleStage,
    RFMClass,
    RFMMethod,
)
from siyu.commerce.models import Order, OrderStatus
from siyu.contacts.models import Contact
from siyu.events.models import Event, EventType
from siyu.tenancy.models import Workspace

DAY = 86_400
#: A score of at least this (of 5) is "high" with the quintile method.
HIGH_SCORE = 3
#: Interactions that show interest in a high-ticket purchase.
INTERACTIONS = (
    EventType.PRODUCT_VIEW,
    EventType.ADD_TO_CART,
    EventType.MESSAGE_CLICK,
    EventType.CONTENT_VIEW,
)
#: A ``custom`` event with this name, or with ``properties.stage`` equal to it, is a quote.
QUOTE = "quote"

#: (R high, F high, M high) -> class: the classic eight-way split.
RFM_CLASSES: dict[tuple[bool, bool, bool], RFMClass] = {
    (True, True, True): RFMClass.IMPORTANT_VALUE,
    (True, False, True): RFMClass.IMPORTANT_DEVELOP,
    (False, True, True): RFMClass.IMPORTANT_KEEP,
    (False, False, True): RFMClass.IMPORTANT_RETAIN,
    (True, True, False): RFMClass.GENERAL_VALUE,
    (True, False, False): RFMClass.GENERAL_DEVELOP,
    (False, True, False): RFMClass.GENERAL_KEEP,
    (False, False, False): RFMClass.GENERAL_RETAIN,
}


def aliases(choices: type[RFMClass | LifecycleStage | IntentLayer]) -> dict[str, str]:
    """Every accepted spelling (the code and the Chinese name) -> the stored code. The Chinese
    names are the untranslated labels, so a rule means the same in every interface language."""
    with translation.override(None):
        return {**{str(c.label): c.value for c in choices}, **{c.value: c.value for c in choices}}


def _epoch(col: Column) -> NumericValue:
    return col.epoch_seconds().cast("float64")


def _orders(workspace: Workspace, now: datetime) -> Table:
    """Orders that count: not fully refunded, paid by ``now``."""
    o = table(Order)
    return o.filter(
        o.workspace_id == workspace.id,
        o.status != OrderStatus.REFUNDED,
        o.paid_at <= utc_cutoff(now),
    )


def buyers_expression(*, workspace: Workspace, config: LayerConfig, now: datetime) -> Table:
    """One row per contact with an order: all-time count, first and last order, and the RFM
    window's count, net spend and last order, and the loyalty window's count (one scan). Both
    expressions below start from it; the refresh computes it once into a temporary table and
    hands that in as ``buyers``."""
    o = _orders(workspace, now)
    rfm_cut = utc_cutoff(now - timedelta(days=config.rfm_window_days))
    loyal_cut = utc_cutoff(now - timedelta(days=config.loyal_window_days))
    in_rfm = o.paid_at >= rfm_cut
    return o.group_by("contact_id").aggregate(
        orders=o.count(),
        first_at=o.paid_at.min(),
        last_at=o.paid_at.max(),
        frequency=o.count(where=in_rfm),
        monetary=(o.amount - o.refunded_amount).sum(where=in_rfm),
        last_in_window=o.paid_at.max(where=in_rfm),
        loyal_orders=o.count(where=o.paid_at >= loyal_cut),
    )


def _mean_interval(b: Table) -> NumericValue:
    """Seconds between a repeat buyer's orders on average: (last - first) / (orders - 1)."""
    return (_epoch(b.last_at) - _epoch(b.first_at)) / (b.orders - 1).cast("float64")


def median_interval_expression(
    *, workspace: Workspace, config: LayerConfig, now: datetime, buyers: Table | None = None
) -> Table:
    """One row, ``median`` in seconds: the median of the repeat buyers' mean intervals (NULL
    when nobody bought twice). Row numbers instead of a MEDIAN aggregate, which SQLite lacks."""
    b = (
        buyers
        if buyers is not None
        else buyers_expression(workspace=workspace, config=config, now=now)
    )
    b = b.filter(b.orders >= 2).select(interval=_mean_interval(b))
    ranked = b.mutate(rn=ibis.row_number().over(order_by=b.interval), n=b.interval.count().over())
    middle = ranked.filter((ranked.rn == (ranked.n - 1) // 2) | (ranked.rn == ranked.n // 2))
    return middle.aggregate(median=middle.interval.mean())


def _now_epoch(now: datetime) -> NumericValue:
    return _epoch(ibis.literal(utc_cutoff(now)))


def _quintile(t: Table, value: Column, size: NumericValue, *, descending: bool = False) -> Column:
    """The score 1-5: NTILE(5) among the window's buyers ordered by ``value``, equal values
    taking the lowest tile among them so ties never land in different classes. NTILE gives the
    first ``size % 5`` tiles one row more than the others; the tile of a run of equal values is
    the tile of its first row, whose position is RANK() - 1. So one sort per score, where NTILE
    and then a minimum over the equal values would sort twice."""
    order = ibis.desc(value) if descending else value
    at = ibis.rank().over(order_by=order)  # 0-based position of the run
    per = size // 5
    extra = size % 5
    big = extra * (per + 1)
    return ibis.ifelse(at < big, at // (per + 1), extra + (at - big) // ibis.greatest(per, 1)) + 1


def scores_expression(*, buyers: Table, now: datetime) -> Table:
    """Per buyer with an order in the RFM window: recency in whole days and the three quintile
    scores. Ranked on the buyers' own few columns: ranking the joined contact rows carried
    every column through three sorts of the whole pool (5-6 s of the refresh at 1M)."""
    b = buyers.filter(buyers.frequency > 0)
    b = b.select(
        "contact_id",
        "frequency",
        "monetary",
        recency_days=((_now_epoch(now) - _epoch(b.last_in_window)) / DAY).floor().cast("int64"),
        size=b.contact_id.count().over(),
    )
    return b.select(
        "contact_id",
        "recency_days",
        r_score=_quintile(b, b.recency_days, b.size, descending=True),
        f_score=_quintile(b, b.frequency, b.size),
        m_score=_quintile(b, b.monetary, b.size),
    )


def _rfm_class(j: Table, config: LayerConfig) -> Column:
    """The class of every contact row (joined with its scores); '' without an order in the
    window."""
    if config.rfm_method == RFMMethod.THRESHOLD:
        high = (
            j.recency_days <= config.rfm_recency_days,
            j.frequency >= config.rfm_frequency,
            j.monetary >= config.rfm_monetary,
        )
    else:
        high = (j.r_score >= HIGH_SCORE, j.f_score >= HIGH_SCORE, j.m_score >= HIGH_SCORE)
    r, f, m = high
    in_window = j.r_score.notnull()
    return ibis.cases(
        *[
            (ibis.and_(in_window, r if rh else ~r, f if fh else ~f, m if mh else ~m), code.value)
            for (rh, fh, mh), code in RFM_CLASSES.items()
        ],
        else_="",
    )


def intent_expression(*, workspace: Workspace, config: LayerConfig, now: datetime) -> Table:
    """Per contact with interactions or quotes in the intent window: how many of each."""
    e = table(Event)
    cut = utc_cutoff(now - timedelta(days=config.intent_window_days))
    e = e.filter(
        e.workspace_id == workspace.id,
        e.type.isin([*INTERACTIONS, EventType.CUSTOM]),
        e.occurred_at >= cut,
        e.occurred_at <= utc_cutoff(now),
    )
    quote = (e.type == EventType.CUSTOM) & (
        (e.name == QUOTE) | (e.properties["stage"].str == QUOTE)
    )
    return e.group_by("contact_id").aggregate(
        interactions=e.count(where=e.type.isin(list(INTERACTIONS))),
        quotes=e.count(where=quote),
    )


def layers_expression(
    *,
    workspace: Workspace,
    config: LayerConfig,
    now: datetime,
    median_interval: float | None,
    buyers: Table | None = None,
    intent: Table | None = None,
    scores: Table | None = None,
) -> Table:
    """One row per contact of the workspace with every ContactLayer column but the workspace and
    the time stamp (recency is not stored: ``ContactLayer.recency_days_as_of``). ``median_interval`` (seconds, from ``median_interval_expression``) is the
    rhythm of one-order buyers; without one, the configured default interval is used."""
    if buyers is None:
        buyers = buyers_expression(workspace=workspace, config=config, now=now)
    if intent is None:
        intent = intent_expression(workspace=workspace, config=config, now=now)
    if scores is None:
        scores = scores_expression(buyers=buyers, now=now)
    c = table(Contact)
    c = c.filter(c.workspace_id == workspace.id).select(contact_id=c.id)
    j = c.left_join(buyers, "contact_id").drop("contact_id_right")
    j = j.left_join(intent, "contact_id").drop("contact_id_right")
    j = j.left_join(scores, "contact_id").drop("contact_id_right")
    one_order_rhythm = (
        median_interval if median_interval is not None else config.default_interval_days * DAY
    )
    own = _mean_interval(j)
    rhythm = ibis.greatest(
        ibis.ifelse(j.orders >= 2, own, ibis.literal(float(one_order_rhythm))), float(DAY)
    )
    since = _now_epoch(now) - _epoch(j.last_at)
    stage = ibis.cases(
        (j.orders.isnull(), LifecycleStage.PROSPECT.value),
        (since > rhythm * float(config.churned_factor), LifecycleStage.CHURNED.value),
        (since > rhythm * float(config.dormant_factor), LifecycleStage.DORMANT.value),
        (j.loyal_orders >= config.loyal_orders, LifecycleStage.LOYAL.value),
        (j.orders >= 2, LifecycleStage.REPEAT.value),
        else_=LifecycleStage.NEW.value,
    )
    intent_layer = ibis.cases(
        (j.orders.notnull(), IntentLayer.CLOSED.value),
        (j.quotes > 0, IntentLayer.QUOTED.value),
        (j.interactions >= config.intent_min_interactions, IntentLayer.INTERESTED.value),
        else_=IntentLayer.SILENT.value,
    )
    return j.select(
        contact_id=j.contact_id,
        frequency=j.frequency.coalesce(0),
        monetary=j.monetary.coalesce(0),
        r_score=j.r_score,
        f_score=j.f_score,
        m_score=j.m_score,
        rfm_class=_rfm_class(j, config),
        last_order_at=j.last_at,
        interval_days=ibis.ifelse(j.orders >= 2, own / DAY, ibis.null("float64")),
        lifecycle_stage=stage,
        intent_layer=intent_layer,
    )
