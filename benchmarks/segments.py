"""Times representative segments and the layers refresh, each next to a hand-written SQL baseline
on the same engine: the configured database (PostgreSQL with DATABASE_URL, else SQLite in
SIYU_DATA_DIR) and DuckDB over a Parquet export of the same rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_bench SIYU_DATA_DIR=/tmp/bench \\
        .venv/bin/python benchmarks/segments.py --contacts 100000

The data is the demo brand (``siyu.demo.build_demo``), built once per size and reused (the
workspace slug names the size). Every timing is the best of ``--repeat`` runs after one warm-up
run. A segment is counted the way siyu runs a rule (``rule_sql``): its SQL is compiled through
Ibis on a rule's first call and kept, with the windows' cut-offs as parameters worked out from
each call's ``now``; the row under each segment adds that first compile (4-15 ms) for
reference. Target: the Ibis SQL within 1.5x of the hand-written SQL, and RFM + stages for 1M
contacts under 30 s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")

import django  # noqa: E402

django.setup()

import ibis  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from siyu.analytics.tables import parquet_export, to_sql, utc_cutoff  # noqa: E402
from siyu.audiences.layers import layers_expression, median_interval_expression  # noqa: E402
from siyu.audiences.layers_queries import layer_config_get  # noqa: E402
from siyu.audiences.layers_services import layers_refresh  # noqa: E402
from siyu.audiences.models import ContactLayer, ContactTag, Tag, TagGroup  # noqa: E402
from siyu.audiences.rules import compile_rule, rule_sql  # noqa: E402
from siyu.commerce.models import Order  # noqa: E402
from siyu.contacts.models import Consent, Contact, Identity  # noqa: E402
from siyu.demo import build_demo  # noqa: E402
from siyu.events.models import Event  # noqa: E402
from siyu.tenancy.models import Workspace  # noqa: E402
from siyu.tenancy.services import workspace_create  # noqa: E402


def best(run: Callable[[], object], repeat: int) -> tuple[float, object]:
    run()
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def paired(
    ibis_side: object, hand_side: object, repeat: int
) -> tuple[float, object, float, object]:
    """Best times of the Ibis side and the hand-written side, run alternately (after one warm-up
    each) so that both see the same load on a shared machine: (t_ibis, result, t_hand, result)."""
    r_i, r_h = ibis_side(), hand_side()
    t_i, t_h = [], []
    for k in range(repeat):
        for side, times in ((ibis_side, t_i), (hand_side, t_h))[:: 1 if k % 2 == 0 else -1]:
            started = time.perf_counter()
            result = side()
            times.append(time.perf_counter() - started)
            if side is ibis_side:
                r_i = result
            else:
                r_h = result
    return min(t_i), r_i, min(t_h), r_h


def db_scalar(sql: str, params: list | None = None) -> object:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def siyu_count(
    ws: Workspace, rule: dict, now: datetime, engine: str, run: Callable[[str, list], object]
) -> Callable[[], object]:
    """The count the way siyu runs a rule (``rule_sql``: a segment refresh, a preview, a
    journey's entry filter or branch): each call at a new ``now`` a microsecond later, so the
    kept SQL has its cut-offs worked out again, as on every real call."""
    calls = itertools.count(1)

    def side() -> object:
        at = now + timedelta(microseconds=next(calls))
        matches = rule_sql(workspace=ws, rule=rule, now=at, engine=engine)
        return run(f"SELECT COUNT(*) FROM ({matches.sql}) r", matches.params)

    return side


def compile_seconds(ws: Workspace, rule: dict, now: datetime, engine: str, repeat: int) -> float:
    """Building and compiling the rule's Ibis expression: what the first call for a rule pays."""
    seconds, _ = best(
        lambda: to_sql(compile_rule(workspace=ws, rule=rule, now=now), engine=engine), repeat
    )
    return seconds


def workspace_for(contacts: int, seed: int, slug: str | None) -> Workspace:
    """The named workspace (e.g. ``demo``, built by ``siyu demo --contacts 1000000``), else
    the benchmark's own, built once per size."""
    if slug is not None:
        ws = Workspace.objects.get(slug=slug)
        print(f"using workspace {slug}")
        return with_bench_tag(ws)
    slug = f"bench-segments-{contacts}-{seed}"
    ws = Workspace.objects.filter(slug=slug).first()
    if ws is not None:
        print(f"reusing workspace {slug}")
        return with_bench_tag(ws)
    ws = workspace_create(slug=slug, name="segments benchmark")
    print(f"building the demo brand with {contacts:,} contacts ...", flush=True)
    print(build_demo(workspace=ws, contacts=contacts, seed=seed), flush=True)
    return with_bench_tag(ws)


def with_bench_tag(ws: Workspace) -> Workspace:
    """Tags every seventh contact VIP (once) for the tag segment."""
    if Tag.objects.filter(workspace=ws, name="VIP", group__name="bench").exists():
        return ws
    with transaction.atomic():
        group = TagGroup.objects.create(workspace=ws, name="bench")
        tag = Tag.objects.create(workspace=ws, group=group, name="VIP")
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {ContactTag._meta.db_table} (workspace_id, contact_id, tag_id, source, created_at) "
                f"SELECT workspace_id, id, %s, 'manual', first_seen_at FROM {Contact._meta.db_table} "
                "WHERE workspace_id = %s AND id %% 7 = 0",
                [tag.id, ws.id],
            )
    return ws


def segments(ws: Workspace, tag_id: int, now: datetime) -> list[tuple[str, dict, str]]:
    """(name, rule, the hand-written SQL counting the same contacts). ``{ts(days)}`` in the
    SQL is the cut-off ``days`` before ``now`` as the engine's literal."""
    w = ws.id
    city = db_scalar(
        f"SELECT city FROM contacts_contact WHERE workspace_id = {w} AND city <> '' "
        "GROUP BY city ORDER BY COUNT(*) DESC LIMIT 1"
    )
    return [
        (
            "4 conditions",
            {
                "all": [
                    {"field": "contact.city", "op": "eq", "value": city},
                    {"field": "contact.gender", "op": "eq", "value": "f"},
                    {"field": "contact.first_seen_at", "op": "within_days", "value": 365},
                    {"consent": {"channel": "sms", "status": "granted"}},
                ]
            },
            f"SELECT COUNT(*) FROM contacts_contact c WHERE c.workspace_id = {w} "
            f"AND c.city = '{city}' AND c.gender = 'f' AND c.first_seen_at >= {{ts365}} "
            f"AND EXISTS (SELECT 1 FROM contacts_consent s WHERE s.contact_id = c.id "
            f"AND s.workspace_id = {w} AND s.channel = 'sms' AND s.status = 'granted')",
        ),
        (
            "orders >= 2 in 90 days",
            {"orders": {"count": {"gte": 2}, "window_days": 90}},
            f"SELECT COUNT(*) FROM (SELECT o.contact_id FROM commerce_order o "
            f"WHERE o.workspace_id = {w} AND o.status <> 'refunded' AND o.paid_at >= {{ts90}} "
            f"GROUP BY o.contact_id HAVING COUNT(*) >= 2) x",
        ),
        (
            "net spend >= 500",
            {"orders": {"sum": {"gte": 500}}},
            f"SELECT COUNT(*) FROM (SELECT o.contact_id FROM commerce_order o "
            f"WHERE o.workspace_id = {w} AND o.status <> 'refunded' "
            f"GROUP BY o.contact_id HAVING SUM(o.amount - o.refunded_amount) >= 500) x",
        ),
        (
            "no product view in 30 days",
            {"event": {"type": "product_view", "max_count": 0, "window_days": 30}},
            f"SELECT COUNT(*) FROM contacts_contact c WHERE c.workspace_id = {w} "
            f"AND NOT EXISTS (SELECT 1 FROM events_event e WHERE e.contact_id = c.id "
            f"AND e.workspace_id = {w} AND e.type = 'product_view' AND e.occurred_at >= {{ts30}})",
        ),
        (
            "tag + sms consent",
            {"all": [{"tag": tag_id}, {"consent": {"channel": "sms", "status": "granted"}}]},
            f"SELECT COUNT(*) FROM contacts_contact c WHERE c.workspace_id = {w} "
            f"AND EXISTS (SELECT 1 FROM audiences_contacttag t WHERE t.contact_id = c.id "
            f"AND t.tag_id = {tag_id}) AND EXISTS (SELECT 1 FROM contacts_consent s "
            f"WHERE s.contact_id = c.id AND s.channel = 'sms' AND s.status = 'granted')",
        ),
        (
            "RFM class",
            {"rfm_class": ["important_value", "important_keep"]},
            f"SELECT COUNT(*) FROM audiences_contactlayer l WHERE l.workspace_id = {w} "
            f"AND l.rfm_class IN ('important_value', 'important_keep')",
        ),
    ]


def hand_layers_sql(ws: Workspace, now: datetime, median: float, engine: str) -> str:
    """The layers computation written by hand (defaults: quintiles over 365 days, loyal 4 orders
    in 365 days, dormant 2x / churned 4x the own rhythm, intent over 90 days), as a count."""
    epoch = "EXTRACT(EPOCH FROM {})" if engine == "postgres" else "epoch({})"
    if engine == "sqlite":
        epoch = "CAST(STRFTIME('%s', {}) AS REAL)"

    def ts(days: int) -> str:
        return literal(utc_cutoff(now - timedelta(days=days)), engine)

    n = literal(utc_cutoff(now), engine)
    e = epoch.format
    w = ws.id
    return f"""
WITH b AS (
  SELECT contact_id, COUNT(*) AS orders, MIN(paid_at) AS first_at, MAX(paid_at) AS last_at,
    COUNT(*) FILTER (WHERE paid_at >= {ts(365)}) AS frequency,
    SUM(amount - refunded_amount) FILTER (WHERE paid_at >= {ts(365)}) AS monetary,
    MAX(paid_at) FILTER (WHERE paid_at >= {ts(365)}) AS last_w
  FROM commerce_order WHERE workspace_id = {w} AND status <> 'refunded' AND paid_at <= {n}
  GROUP BY contact_id),
r AS (SELECT contact_id, frequency, monetary,
    CAST(FLOOR(({e(n)} - {e("last_w")}) / 86400) AS INTEGER) AS rd FROM b WHERE frequency > 0),
t AS (SELECT contact_id, rd, frequency, monetary,
    NTILE(5) OVER (ORDER BY rd DESC, contact_id) AS rt,
    NTILE(5) OVER (ORDER BY frequency, contact_id) AS ft,
    NTILE(5) OVER (ORDER BY monetary, contact_id) AS mt FROM r),
s AS (SELECT contact_id, MIN(rt) OVER (PARTITION BY rd) AS rs,
    MIN(ft) OVER (PARTITION BY frequency) AS fs, MIN(mt) OVER (PARTITION BY monetary) AS ms FROM t),
ev AS (SELECT contact_id,
    COUNT(*) FILTER (WHERE type IN ('product_view', 'add_to_cart', 'message_click', 'content_view')) AS i,
    COUNT(*) FILTER (WHERE type = 'custom' AND name = 'quote') AS q
  FROM events_event WHERE workspace_id = {w} AND occurred_at >= {ts(90)} AND occurred_at <= {n}
    AND type IN ('product_view', 'add_to_cart', 'message_click', 'content_view', 'custom')
  GROUP BY contact_id)
SELECT COUNT(*), COUNT(DISTINCT cls), COUNT(DISTINCT stage) FROM (
SELECT c.id,
  CASE WHEN s.rs IS NULL THEN '' ELSE
    (CASE WHEN s.ms >= 3 THEN 'important_' ELSE 'general_' END) ||
    (CASE WHEN s.rs >= 3 AND s.fs >= 3 THEN 'value' WHEN s.rs >= 3 THEN 'develop'
          WHEN s.fs >= 3 THEN 'keep' ELSE 'retain' END) END AS cls,
  CASE WHEN b.orders IS NULL THEN 'prospect'
    WHEN {e(n)} - {e("b.last_at")} > 4 * rh.v THEN 'churned'
    WHEN {e(n)} - {e("b.last_at")} > 2 * rh.v THEN 'dormant'
    WHEN b.orders >= 4 THEN 'loyal' WHEN b.orders >= 2 THEN 'repeat' ELSE 'new' END AS stage,
  CASE WHEN b.orders IS NOT NULL THEN 'closed' WHEN ev.q > 0 THEN 'quoted'
    WHEN ev.i >= 3 THEN 'interested' ELSE 'silent' END AS intent
FROM contacts_contact c
LEFT JOIN b ON b.contact_id = c.id
LEFT JOIN s ON s.contact_id = c.id
LEFT JOIN ev ON ev.contact_id = c.id
CROSS JOIN LATERAL (SELECT CASE WHEN b.orders >= 2
  THEN GREATEST(({e("b.last_at")} - {e("b.first_at")}) / (b.orders - 1), 86400)
  ELSE {max(median, 86400.0)} END AS v) rh
WHERE c.workspace_id = {w}) x
"""


def literal(moment: datetime, engine: str) -> str:
    if engine == "postgres":
        return f"TIMESTAMPTZ '{moment.isoformat()}'"
    if engine == "duckdb":
        return f"TIMESTAMPTZ '{moment.isoformat()}'"
    return f"'{moment.strftime('%Y-%m-%d %H:%M:%S')}'"


def fill(sql: str, now: datetime, engine: str) -> str:
    for days in (30, 90, 365):
        sql = sql.replace(f"{{ts{days}}}", literal(utc_cutoff(now - timedelta(days=days)), engine))
    return sql


def db_timings(
    ws: Workspace,
    tag_id: int,
    now: datetime,
    engine: str,
    config: object,
    median: float,
    first_s: float,
    refresh_s: float,
    args: argparse.Namespace,
) -> None:
    def ibis_layers() -> object:
        e = layers_expression(workspace=ws, config=config, now=now, median_interval=median)
        return db_scalar(to_sql(e.aggregate(n=e.count())))

    hand = hand_layers_sql(ws, now, median, engine)
    if engine == "sqlite":
        hand = hand.replace("GREATEST(", "MAX(").replace("CROSS JOIN LATERAL", "LEFT JOIN")
    rows: list[tuple[str, float, float | None]] = []
    print(
        f"\n{engine}: layers_refresh (buyers + median + layers + the changed rows written, "
        f"snapshot included): {refresh_s:.2f} s a day after the previous refresh "
        f"(which took {first_s:.2f} s); target < 30 s for 1M contacts on PostgreSQL"
    )
    t_ibis, _ = best(ibis_layers, args.repeat)
    t_med, _ = best(
        lambda: db_scalar(to_sql(median_interval_expression(workspace=ws, config=config, now=now))),
        args.repeat,
    )
    t_hand = None
    if engine == "postgres":
        t_hand, _ = best(lambda: db_scalar(hand), args.repeat)
    rows.append(("layers SELECT", t_ibis, t_hand))
    rows.append(("median rhythm", t_med, None))
    for name, rule, sql in segments(ws, tag_id, now):
        hand_sql = fill(sql, now, engine)
        t_i, n_i, t_h, n_h = paired(
            siyu_count(ws, rule, now, engine, db_scalar),
            lambda s=hand_sql: db_scalar(s),
            args.repeat,
        )
        assert n_i == n_h, (name, n_i, n_h)
        rows.append((f"{name} [{n_i:,}]", t_i, t_h))
        first = compile_seconds(ws, rule, now, engine, args.repeat) + t_i
        rows.append(("  a rule's first call (+ Ibis compile)", first, t_h))
        if args.explain:
            with connection.cursor() as cursor:
                plan = "EXPLAIN ANALYZE " if engine == "postgres" else "EXPLAIN QUERY PLAN "
                cursor.execute(
                    plan + to_sql(compile_rule(workspace=ws, rule=rule, now=now).count())
                )
                print(f"-- {name}\n" + "\n".join(str(r[-1]) for r in cursor.fetchall()))
    report(engine, rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-duckdb", action="store_true")
    parser.add_argument(
        "--only-duckdb",
        action="store_true",
        help="skip the database timings (the layers of an earlier run are exported as they are)",
    )
    parser.add_argument(
        "--workspace", help="an existing workspace to measure (e.g. demo) instead of building one"
    )
    parser.add_argument("--explain", action="store_true", help="print the Ibis SQL's plan")
    parser.add_argument(
        "--parquet-dir",
        help="reuse an earlier run's Parquet export of this workspace (the layers are exported "
        "again); default a new temporary folder",
    )
    args = parser.parse_args()
    call_command("migrate", interactive=False, verbosity=0)
    ws = workspace_for(args.contacts, args.seed, args.workspace)
    tag_id = Tag.objects.get(workspace=ws, name="VIP", group__name="bench").id
    if not args.only_duckdb:
        with connection.cursor() as cursor:
            # Fresh bulk loads have no planner statistics; autovacuum would gather them later.
            cursor.execute("ANALYZE")
    now = timezone.now()
    engine = {"postgresql": "postgres", "sqlite": "sqlite"}[connection.vendor]
    counts = {m.__name__: m.objects.filter(workspace=ws).count() for m in (Contact, Order, Event)}
    print(f"{engine}: " + ", ".join(f"{v:,} {k.lower()}s" for k, v in counts.items()))

    config = layer_config_get(workspace=ws)
    if args.only_duckdb:
        median = float(
            db_scalar(to_sql(median_interval_expression(workspace=ws, config=config, now=now)))
        )
    else:
        # Yesterday's refresh (the first one on a new database writes every row), then today's:
        # the daily refresh, which recomputes everything and writes what a day changed.
        started = time.perf_counter()
        before = layers_refresh(workspace=ws, now=now - timedelta(days=1))
        first_s = time.perf_counter() - started
        started = time.perf_counter()  # timed once: a second run would have nothing to write
        done = layers_refresh(workspace=ws, now=now)
        refresh_s = time.perf_counter() - started
        median = done.median_interval_days * 86_400
        print(
            f"layers_refresh a day earlier: {first_s:.2f} s, {before.changed:,} rows written; "
            f"today's: {refresh_s:.2f} s, {done.changed:,} rows written"
        )
    expr = layers_expression(workspace=ws, config=config, now=now, median_interval=median)
    if not args.only_duckdb:
        db_timings(ws, tag_id, now, engine, config, median, first_s, refresh_s, args)

    if args.no_duckdb:
        return
    directory = Path(args.parquet_dir or tempfile.mkdtemp(prefix="siyu-bench-"))
    needed = [Contact, Identity, Consent, ContactTag, Order, Event, ContactLayer]
    # The layers change with every refresh; the rest is reused from --parquet-dir when there.
    missing = [
        m
        for m in needed
        if m is ContactLayer or not (directory / f"{m._meta.db_table}.parquet").exists()
    ]
    started = time.perf_counter()
    parquet_export(models_=missing, directory=directory, workspace_id=ws.id)
    print(
        f"\nParquet export of {', '.join(m.__name__ for m in missing)}: "
        f"{time.perf_counter() - started:.1f} s ({directory})"
    )
    con = ibis.duckdb.connect()
    for model in needed:
        path = directory / f"{model._meta.db_table}.parquet"
        con.raw_sql(f"CREATE TABLE {path.stem} AS SELECT * FROM read_parquet('{path}')")
    raw = con.con

    def duck(sql: str, params: list | None = None) -> object:
        return raw.execute(sql, params).fetchone()[0]

    rows = []
    t_i, _ = best(
        lambda: duck(to_sql(expr.aggregate(n=expr.count()), engine="duckdb")), args.repeat
    )
    t_h, _ = best(lambda: duck(hand_layers_sql(ws, now, median, "duckdb")), args.repeat)
    rows.append(("layers SELECT", t_i, t_h))
    for name, rule, sql in segments(ws, tag_id, now):
        hand_sql = fill(sql, now, "duckdb")
        t_i, n_i, t_h, n_h = paired(
            siyu_count(ws, rule, now, "duckdb", duck), lambda s=hand_sql: duck(s), args.repeat
        )
        assert n_i == n_h, (name, n_i, n_h)
        rows.append((f"{name} [{n_i:,}]", t_i, t_h))
        first = compile_seconds(ws, rule, now, "duckdb", args.repeat) + t_i
        rows.append(("  a rule's first call (+ Ibis compile)", first, t_h))
    report("duckdb (tables loaded from Parquet)", rows)


def report(engine: str, rows: list[tuple[str, float, float | None]]) -> None:
    print(f"\n{engine:<44} {'ibis':>8} {'hand':>8} {'ratio':>6}")
    for name, t_i, t_h in rows:
        hand = f"{t_h:8.3f}" if t_h is not None else f"{'-':>8}"
        ratio = f"{t_i / t_h:6.2f}" if t_h else f"{'-':>6}"
        print(f"{name:<44} {t_i:8.3f} {hand} {ratio}")


if __name__ == "__main__":
    main()
