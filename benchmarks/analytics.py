"""Times the home dashboard (from the daily rollups), a 4-step funnel, a 12-week retention matrix
and the attribution table, each next to a hand-written SQL baseline on the same engine: the
configured database (PostgreSQL with DATABASE_URL, else SQLite in SIYU_DATA_DIR) and DuckDB over
a Parquet export of the same rows.

    .venv/bin/python benchmarks/analytics.py --contacts 100000 \\
        [--database-url postgres://postgres@127.0.0.1:5432/siyu_bench]

The data is the demo brand, built once per size and reused (``segments.workspace_for``: the same
workspace the segments benchmark uses); the rollups are backfilled when the workspace has none.
Every timing is the best of ``--repeat`` runs after one warm-up run, the Ibis side and the
hand-written side run alternately so both see the same load; the Ibis side includes
building and compiling the expression (a constant 50–150 ms on this machine, so on a small demo
the "SQL run only" rows say more about the query itself). The health snapshots the 15-minute job
writes are refreshed first, as the job would have. Targets: the dashboard under 300 ms; the others within
1.5x of the hand-written SQL. The dashboard's baseline is the raw-table path it replaced (the
ORM queries over contacts and orders), and the bare rollup query written by hand.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

if __name__ == "__main__":
    # --database-url must be in the environment before Django reads its settings.
    for i, arg in enumerate(sys.argv):
        if arg == "--database-url" and i + 1 < len(sys.argv):
            os.environ["DATABASE_URL"] = sys.argv[i + 1]
        elif arg.startswith("--database-url="):
            os.environ["DATABASE_URL"] = arg.split("=", 1)[1]

import ibis  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import DatabaseError, connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from segments import best, literal, paired, report, workspace_for  # noqa: E402 (runs django.setup())

from siyu.analytics import queries as dash  # noqa: E402
from siyu.analytics.attribution import (  # noqa: E402
    attribution,
    credited_expression,
    models_expression,
)
from siyu.analytics.explore import Scope  # noqa: E402
from siyu.analytics.funnels import counts_expression, funnel_spec  # noqa: E402
from siyu.analytics.models import DailyRollup  # noqa: E402
from siyu.analytics.retention import matrix_expression, retention_spec  # noqa: E402
from siyu.analytics.services import health_snapshot_refresh, rollups_backfill  # noqa: E402
from siyu.analytics.tables import fetch, parquet_export, to_sql, utc_cutoff  # noqa: E402
from siyu.commerce.models import Order  # noqa: E402
from siyu.contacts.models import Contact  # noqa: E402
from siyu.events.models import Event  # noqa: E402
from siyu.tenancy.models import Workspace  # noqa: E402

FUNNEL = ("page_view", "product_view", "add_to_cart")  # then an order
FUNNEL_DAYS = 7
WEEK = 7 * 86_400
ATTRIBUTION_DAYS = 30


def fen(value: Decimal) -> Decimal:
    return Decimal(value).quantize(Decimal("0.01"))


def rows(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def epoch(col: str, engine: str) -> str:
    if engine == "sqlite":
        return f"CAST(STRFTIME('%s', {col}) AS INTEGER)"
    return f"EXTRACT(EPOCH FROM {col})" if engine == "postgres" else f"epoch({col})"


# -- the dashboard -------------------------------------------------------------------------------


def raw_dashboard(ws: Workspace, today: date) -> object:
    """The raw-table path the home page used before the rollups (the same ORM queries)."""
    cur = dash.days_window(ws, today - timedelta(days=29), today)
    prev = dash.days_window(ws, today - timedelta(days=59), today - timedelta(days=30))
    return (
        dash.daily_series(workspace=ws, first_day=today - timedelta(days=89), last_day=today),
        dash.period_kpis(workspace=ws, window=cur),
        dash.period_kpis(workspace=ws, window=prev),
        dash.repeat_purchase(workspace=ws),
        dash.pool_size(workspace=ws),
    )


def hand_rollup_sql(ws: Workspace, today: date) -> str:
    first = today - timedelta(days=89)
    return (
        "SELECT day, source_channel, SUM(new_contacts), SUM(orders), SUM(gmv) - SUM(refunds) "
        f"FROM {DailyRollup._meta.db_table} WHERE workspace_id = {ws.id} "
        f"AND day >= '{first}' AND day <= '{today - timedelta(days=1)}' "
        "GROUP BY day, source_channel"
    )


# -- the funnel ----------------------------------------------------------------------------------


def hand_funnel_sql(ws: Workspace, lo: datetime, hi: datetime, engine: str) -> str:
    """Entry at the first step-0 event in the period; each later step is the earliest occurrence
    after the previous step's time and at most FUNNEL_DAYS after entry."""
    w, limit = ws.id, FUNNEL_DAYS * 86_400
    until = literal(hi + timedelta(days=FUNNEL_DAYS), engine)
    lo_, hi_ = literal(lo, engine), literal(hi, engine)
    e = lambda c: epoch(c, engine)  # noqa: E731
    steps = [
        f"s0 AS (SELECT e.contact_id, MIN(e.occurred_at) AS t0, MIN(e.occurred_at) AS at "
        f"FROM events_event e JOIN contacts_contact c ON c.id = e.contact_id "
        f"AND c.workspace_id = {w} WHERE e.workspace_id = {w} AND e.type = '{FUNNEL[0]}' "
        f"AND e.occurred_at >= {lo_} AND e.occurred_at < {hi_} GROUP BY e.contact_id)"
    ]
    for k, kind in enumerate(FUNNEL[1:], start=1):
        steps.append(
            f"s{k} AS (SELECT p.contact_id, p.t0, MIN(e.occurred_at) AS at FROM s{k - 1} p "
            f"JOIN events_event e ON e.contact_id = p.contact_id WHERE e.workspace_id = {w} "
            f"AND e.type = '{kind}' AND e.occurred_at >= {lo_} AND e.occurred_at < {until} "
            f"AND e.occurred_at > p.at AND {e('e.occurred_at')} - {e('p.t0')} <= {limit} "
            "GROUP BY p.contact_id, p.t0)"
        )
    n = len(FUNNEL)
    steps.append(
        f"s{n} AS (SELECT p.contact_id, MIN(o.paid_at) AS at FROM s{n - 1} p "
        f"JOIN commerce_order o ON o.contact_id = p.contact_id WHERE o.workspace_id = {w} "
        f"AND o.status <> 'refunded' AND o.paid_at >= {lo_} AND o.paid_at < {until} "
        f"AND o.paid_at > p.at AND {e('o.paid_at')} - {e('p.t0')} <= {limit} "
        "GROUP BY p.contact_id)"
    )
    counts = ", ".join(f"(SELECT COUNT(*) FROM s{k})" for k in range(n + 1))
    return f"WITH {', '.join(steps)} SELECT {counts}"


def ibis_funnel(spec: object, run: object) -> tuple:
    got = run(counts_expression(spec))
    return tuple(int(v) for v in got[0][1:]) if got else ()


# -- retention -----------------------------------------------------------------------------------


def hand_retention_sql(ws: Workspace, starts: list[datetime], cohorts: int, engine: str) -> str:
    """First-order weekly cohorts; retained in week k = another order in week k (in week 0 a
    second one). Shanghai has no daylight saving, so a week is 7 × 86,400 s."""
    w = ws.id
    s0 = int(utc_cutoff(starts[0]).timestamp())
    lo, hi = literal(utc_cutoff(starts[0]), engine), literal(utc_cutoff(starts[cohorts]), engine)
    end = literal(utc_cutoff(starts[-1]), engine)
    idx = lambda c: (  # noqa: E731
        f"CAST(FLOOR(({epoch(c, engine)} - {s0}) / {WEEK}) AS INTEGER)"
        if engine != "sqlite"
        else f"(({epoch(c, engine)} - {s0}) / {WEEK})"
    )
    return f"""
WITH o AS (SELECT contact_id, paid_at FROM commerce_order
           WHERE workspace_id = {w} AND status <> 'refunded'),
f AS (SELECT contact_id, MIN(paid_at) AS first_at FROM o GROUP BY contact_id),
c AS (SELECT f.contact_id, {idx("f.first_at")} AS cohort FROM f
      JOIN contacts_contact ct ON ct.id = f.contact_id AND ct.workspace_id = {w}
      WHERE f.first_at >= {lo} AND f.first_at < {hi}),
a AS (SELECT c.contact_id, c.cohort, {idx("o.paid_at")} AS period, COUNT(*) AS n
      FROM o JOIN c ON c.contact_id = o.contact_id
      WHERE o.paid_at >= {lo} AND o.paid_at < {end} GROUP BY 1, 2, 3)
SELECT cohort, period - cohort, COUNT(*) FROM a
WHERE period >= cohort AND n - CASE WHEN period = cohort THEN 1 ELSE 0 END > 0
GROUP BY 1, 2"""


# -- attribution ---------------------------------------------------------------------------------


def hand_attribution_sql(ws: Workspace, lo: datetime, hi: datetime, engine: str) -> str:
    """First touch = the contact's source channel; last touch = the channel of the latest event
    with a channel in the 30 days up to the order, else ``order:<order channel>``. One row per
    (model, value): orders and net revenue."""
    w, days = ws.id, ATTRIBUTION_DAYS * 86_400
    lo_, hi_ = literal(lo, engine), literal(hi, engine)
    touch_lo = literal(lo - timedelta(days=ATTRIBUTION_DAYS), engine)
    return f"""
WITH o AS (SELECT o.id, o.contact_id, o.paid_at, o.amount - o.refunded_amount AS revenue,
                  c.source_channel AS first, 'order:' || o.channel AS fallback
           FROM commerce_order o JOIN contacts_contact c ON c.id = o.contact_id
             AND c.workspace_id = {w}
           WHERE o.workspace_id = {w} AND o.status <> 'refunded'
             AND o.paid_at >= {lo_} AND o.paid_at < {hi_}),
t AS (SELECT o.id, e.channel, ROW_NUMBER() OVER (
        PARTITION BY o.id ORDER BY e.occurred_at DESC, e.id DESC) AS rn
      FROM o JOIN events_event e ON e.contact_id = o.contact_id
      WHERE e.workspace_id = {w} AND e.occurred_at >= {touch_lo} AND e.occurred_at < {hi_}
        AND e.channel <> '' AND e.occurred_at <= o.paid_at
        AND {epoch("o.paid_at", engine)} - {epoch("e.occurred_at", engine)} <= {days}),
x AS (SELECT o.revenue, o.first, COALESCE(t.channel, o.fallback) AS last
      FROM o LEFT JOIN t ON t.id = o.id AND t.rn = 1)
SELECT 'first', first, COUNT(*), SUM(revenue) FROM x GROUP BY first
UNION ALL
SELECT 'last', last, COUNT(*), SUM(revenue) FROM x GROUP BY last"""


def ibis_attribution(credited: object, run: object) -> dict:
    return {
        (model, value): (int(n), round(float(revenue or 0), 2))
        for model, value, n, revenue in run(models_expression(credited, 50))
    }


def hand_attribution(sql: str, run: object) -> dict:
    return {(m, v): (int(n), round(float(r or 0), 2)) for m, v, n, r in run(sql)}


def sql_only(
    name: str, exprs: list, run: object, engine: str, hand_side: object, repeat: int = 3
) -> tuple[str, float, float]:
    """The Ibis side without building and compiling: its SQL compiled once, then only run,
    alternately with the hand-written SQL."""
    sqls = [to_sql(e, engine="duckdb") if engine == "duckdb" else to_sql(e) for e in exprs]
    t, _r, t_hand, _h = paired(lambda: [run(sql) for sql in sqls], hand_side, repeat)
    return (f"  {name}: Ibis SQL run only", t, t_hand)


# -- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", help="PostgreSQL URL (else DATABASE_URL or SQLite)")
    parser.add_argument("--no-duckdb", action="store_true")
    parser.add_argument(
        "--parquet-dir",
        help="reuse the Parquet files already in this folder (e.g. the segments benchmark's "
        "export of the same workspace); the tables missing there are exported into it",
    )
    parser.add_argument(
        "--workspace", help="slug of an existing workspace, e.g. demo (from `siyu demo`)"
    )
    args = parser.parse_args()
    call_command("migrate", interactive=False, verbosity=0)
    ws = workspace_for(args.contacts, args.seed, args.workspace)
    engine = {"postgresql": "postgres", "sqlite": "sqlite"}[connection.vendor]
    with connection.cursor() as cursor:
        # Fresh bulk loads have no planner statistics: without them PostgreSQL plans the rollup
        # INSERT … SELECT as if the tables were empty (nested loops, ~25 s per 31-day chunk).
        cursor.execute("ANALYZE")
    # Rollup rows exist only for days with activity: a quiet today has none.
    last = dash.rollups_last_day(workspace=ws)
    if last is None or last < dash.workspace_today(ws) - timedelta(days=1):
        started = time.perf_counter()
        written = rollups_backfill(workspace=ws)
        print(f"rollups backfill: {written:,} rows in {time.perf_counter() - started:.1f} s")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    # The 15-minute job also snapshots the health counts and the dashboard's distinct counts.
    if dash.health_snapshot_get(workspace=ws, day=dash.workspace_today(ws), days=30) is None:
        started = time.perf_counter()
        health_snapshot_refresh(workspace=ws)
        print(f"health snapshots (the 15-minute job): {time.perf_counter() - started:.1f} s")
    counts = {m.__name__: m.objects.filter(workspace=ws).count() for m in (Contact, Order, Event)}
    print(f"{engine}: " + ", ".join(f"{v:,} {k.lower()}s" for k, v in counts.items()))

    now = timezone.now()
    today = dash.workspace_today(ws, now)
    scope = Scope(ws)
    table_rows: list[tuple[str, float, float | None]] = []

    # Dashboard: the page's numbers from the rollups, against the raw path and the bare SQL.
    t_dash, board = best(lambda: dash.home_dashboard(workspace=ws, today=today), args.repeat)
    t_raw, raw = best(lambda: raw_dashboard(ws, today), args.repeat)
    t_hand, _ = best(lambda: rows(hand_rollup_sql(ws, today)), args.repeat)
    series, cur, prev = raw[0], raw[1], raw[2]
    # SQLite sums decimals as floats on the raw path (838037.209999999): compare to the fen.
    assert board.series.days == series.days
    assert board.series.new_contacts_by_channel == series.new_contacts_by_channel
    assert board.series.orders == series.orders
    assert list(map(fen, board.series.revenue)) == list(map(fen, series.revenue))
    for got, want in ((board.current, cur), (board.previous, prev)):
        assert replace(got, revenue=fen(got.revenue)) == replace(want, revenue=fen(want.revenue))
    assert board.rollups_through is not None, "the dashboard did not read the rollups"
    assert board.snapshot_at is not None, "the dashboard did not read the snapshots"
    table_rows.append(("dashboard (rollups) vs raw-table path", t_dash, t_raw))
    table_rows.append(("  rollup 90-day query alone (hand SQL)", t_hand, None))

    # Funnel: the last 30 days, 4 steps within 7 days.
    f_start, f_end = today - timedelta(days=29), today
    spec = funnel_spec(
        scope=scope,
        steps=[{"event": t} for t in FUNNEL] + [{"order": {}}],
        window_days=FUNNEL_DAYS,
        start=f_start,
        end=f_end,
    )
    window = dash.days_window(ws, f_start, f_end)
    lo, hi = utc_cutoff(window.start), utc_cutoff(window.end)
    f_sql = hand_funnel_sql(ws, lo, hi, engine)

    def f_hand() -> tuple:
        return tuple(rows(f_sql)[0])

    try:
        t_i, n_i, t_h, n_h = paired(lambda: ibis_funnel(spec, fetch), f_hand, args.repeat)
    except DatabaseError as exc:  # reported, not hidden: SQLite's parser rejects deep nesting
        t_h, n_h = best(f_hand, args.repeat)
        print(f"funnel (Ibis) failed on {engine}: {exc}")
        table_rows.append((f"funnel 4 steps {list(n_h)} IBIS FAILED", float("nan"), t_h))
    else:
        assert n_i == n_h, (n_i, n_h)
        table_rows.append((f"funnel 4 steps {list(n_i)}", t_i, t_h))
        table_rows.append(sql_only("funnel", [counts_expression(spec)], rows, engine, f_hand))

    # Retention: 12 weekly first-order cohorts, repurchase.
    monday = today - timedelta(days=today.weekday())
    r_spec = retention_spec(scope=scope, start=monday - timedelta(weeks=11), end=today, now=now)
    r_sql = hand_retention_sql(ws, r_spec.starts, r_spec.cohorts, engine)
    t_i, m_i, t_h, m_h = paired(
        lambda: sorted(fetch(matrix_expression(r_spec))), lambda: sorted(rows(r_sql)), args.repeat
    )
    assert [tuple(map(int, r)) for r in m_i] == [tuple(map(int, r)) for r in m_h], "retention"
    table_rows.append((f"retention 12 weeks [{len(m_i)} cells]", t_i, t_h))
    table_rows.append(
        sql_only("retention", [matrix_expression(r_spec)], rows, engine, lambda: rows(r_sql))
    )

    # Attribution: first/last touch by channel over the last 30 days.
    a_window = dash.days_window(ws, today - timedelta(days=ATTRIBUTION_DAYS - 1), today)
    a_lo, a_hi = utc_cutoff(a_window.start), utc_cutoff(a_window.end)
    a_sql = hand_attribution_sql(ws, a_lo, a_hi, engine)
    t_i, a_i, t_h, a_h = paired(
        lambda: ibis_attribution(credited_expression(scope, a_window, "channel"), fetch),
        lambda: hand_attribution(a_sql, rows),
        args.repeat,
    )
    assert a_i == a_h, (a_i, a_h)
    t_page, _ = best(lambda: attribution(scope, a_window, "channel", 10), args.repeat)
    orders_n = sum(n for (m, _v), (n, _r) in a_i.items() if m == "first")
    table_rows.append((f"attribution first+last [{orders_n:,} orders]", t_i, t_h))
    credited = credited_expression(scope, a_window, "channel")
    a_exprs = [models_expression(credited, 50)]
    table_rows.append(sql_only("attribution", a_exprs, rows, engine, lambda: rows(a_sql)))
    table_rows.append(("  attribution() as the page calls it", t_page, None))
    report(engine, table_rows)
    t = next(r for r in table_rows if r[0].startswith("dashboard"))[1]
    print(f"dashboard target < 0.300 s: {'met' if t < 0.3 else 'MISSED'} ({t:.3f} s)")

    if args.no_duckdb:
        return
    directory = Path(args.parquet_dir or tempfile.mkdtemp(prefix="siyu-bench-analytics-"))
    needed = [Contact, Order, Event, DailyRollup]
    missing = [m for m in needed if not (directory / f"{m._meta.db_table}.parquet").exists()]
    started = time.perf_counter()
    parquet_export(models_=missing, directory=directory, workspace_id=ws.id)
    print(
        f"\nParquet export of {', '.join(m.__name__ for m in missing) or 'nothing'}: "
        f"{time.perf_counter() - started:.1f} s ({directory})"
    )
    con = ibis.duckdb.connect()
    for model in needed:
        path = directory / f"{model._meta.db_table}.parquet"
        con.raw_sql(f"CREATE TABLE {path.stem} AS SELECT * FROM read_parquet('{path}')")
    raw_con = con.con

    def duck_rows(sql: str) -> list[tuple]:
        return raw_con.execute(sql).fetchall()

    def duck(expr: ibis.Expr) -> list[tuple]:
        return duck_rows(to_sql(expr, engine="duckdb"))

    table_rows = []
    t_h, _ = best(lambda: duck_rows(hand_rollup_sql(ws, today)), args.repeat)
    table_rows.append(("rollup 90-day query (hand SQL)", t_h, None))
    d_funnel = hand_funnel_sql(ws, lo, hi, "duckdb")
    t_i, n_i, t_h, n_h = paired(
        lambda: ibis_funnel(spec, duck), lambda: tuple(duck_rows(d_funnel)[0]), args.repeat
    )
    assert n_i == n_h, (n_i, n_h)
    table_rows.append((f"funnel 4 steps {list(n_i)}", t_i, t_h))
    table_rows.append(
        sql_only(
            "funnel", [counts_expression(spec)], duck_rows, "duckdb", lambda: duck_rows(d_funnel)
        )
    )
    r_sql = hand_retention_sql(ws, r_spec.starts, r_spec.cohorts, "duckdb")
    t_i, m_i, t_h, m_h = paired(
        lambda: sorted(duck(matrix_expression(r_spec))),
        lambda: sorted(duck_rows(r_sql)),
        args.repeat,
    )
    assert [tuple(map(int, r)) for r in m_i] == [tuple(map(int, r)) for r in m_h], "retention"
    table_rows.append((f"retention 12 weeks [{len(m_i)} cells]", t_i, t_h))
    table_rows.append(
        sql_only(
            "retention", [matrix_expression(r_spec)], duck_rows, "duckdb", lambda: duck_rows(r_sql)
        )
    )
    a_sql = hand_attribution_sql(ws, a_lo, a_hi, "duckdb")
    t_i, a_i, t_h, a_h = paired(
        lambda: ibis_attribution(credited_expression(scope, a_window, "channel"), duck),
        lambda: hand_attribution(a_sql, duck_rows),
        args.repeat,
    )
    assert a_i == a_h, (a_i, a_h)
    table_rows.append(("attribution first+last", t_i, t_h))
    table_rows.append(
        sql_only("attribution", a_exprs, duck_rows, "duckdb", lambda: duck_rows(a_sql))
    )
    report("duckdb (tables loaded from Parquet)", table_rows)


if __name__ == "__main__":
    main()
