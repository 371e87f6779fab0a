"""Writes for layers: the workspace's layer configuration and the refresh that rewrites every
contact's RFM class, lifecycle stage and intent layer.

A refresh is a handful of set statements in one transaction: the buyers' aggregates and then
the layers computed into working tables (``CREATE … TABLE … AS``, which PostgreSQL may run in
parallel), the median purchase rhythm between them, then the difference between the new
layers and the stored ones written (DELETE the contacts that are gone, UPDATE the rows that
changed, INSERT the new contacts), with the month's stage snapshot, which keeps changes only. No
row is built in Python, whatever the pool's size, and a daily refresh writes only what moved.
(Kept apart from ``services.py`` so tags and segments, edited by others, stay small.)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import ibis
from django.db import connection, models, transaction
from django.utils import timezone

from siyu.analytics.tables import fetch, to_sql_fragment
from siyu.audiences.layers import (
    buyers_expression,
    intent_expression,
    layers_expression,
    median_interval_expression,
    scores_expression,
)
from siyu.audiences.layers_queries import layer_config_get
from siyu.audiences.models import ContactLayer, LayerConfig, LayerSnapshot, RFMMethod
from siyu.contacts.models import Contact
from siyu.contacts.services import MERGE_HANDLERS
from siyu.errors import ValidationFailed
from siyu.progress import NoProgress, Progress
from siyu.tenancy.models import Workspace
from siyu.tenancy.services import audit_record

MAX_DAYS = 3650
_WHOLE = {
    # field: (least value, most value)
    "rfm_window_days": (1, MAX_DAYS),
    "rfm_recency_days": (0, MAX_DAYS),
    "rfm_frequency": (0, 1_000_000),
    "loyal_orders": (1, 1_000_000),
    "loyal_window_days": (1, MAX_DAYS),
    "default_interval_days": (1, MAX_DAYS),
    "intent_window_days": (1, MAX_DAYS),
    "intent_min_interactions": (1, 1_000_000),
}
_DECIMAL = {"rfm_monetary", "dormant_factor", "churned_factor"}
_NULLABLE = {"rfm_recency_days", "rfm_frequency", "rfm_monetary"}
_THRESHOLDS = ("rfm_recency_days", "rfm_frequency", "rfm_monetary")
#: Columns ``layers_expression`` yields, in the order they are inserted.
_COLUMNS = (
    "contact_id",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_class",
    "last_order_at",
    "interval_days",
    "lifecycle_stage",
    "intent_layer",
)


def _q(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _scalar(sql: str, params: list[Any]) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _execute(sql: str, params: list[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# --- configuration ------------------------------------------------------------------------------


def _whole(name: str, value: Any) -> int | None:
    if value is None and name in _NULLABLE:
        return None
    low, high = _WHOLE[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationFailed("invalid", f"{name} must be a whole number", path=name)
    if not low <= value <= high:
        raise ValidationFailed("invalid", f"{name} must be from {low} to {high}", path=name)
    return value


def _decimal(name: str, value: Any) -> Decimal | None:
    if value is None and name in _NULLABLE:
        return None
    try:
        number = (
            Decimal(str(value))
            if isinstance(value, int | float | str | Decimal) and not isinstance(value, bool)
            else None
        )
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValidationFailed("invalid", f"{name} must be a number", path=name)
    if name == "rfm_monetary":
        if number < 0:
            raise ValidationFailed("invalid", "rfm_monetary must be at least 0", path=name)
        return number.quantize(Decimal("0.01"))
    if not Decimal("0") < number <= Decimal("100"):
        raise ValidationFailed("invalid", f"{name} must be above 0 and at most 100", path=name)
    return number.quantize(Decimal("0.01"))


@transaction.atomic
def layer_config_update(
    *, workspace: Workspace, values: Mapping[str, Any], actor: Any = None
) -> LayerConfig:
    """Changes the given settings (others keep their value); applies from the next refresh.
    The threshold method needs all three thresholds; a contact is dormant before churned."""
    config = layer_config_get(workspace=workspace)
    for name, value in values.items():
        if name == "rfm_method":
            if value not in RFMMethod.values:
                raise ValidationFailed(
                    "invalid",
                    f"unknown method '{value}': expected one of {', '.join(RFMMethod.values)}",
                    path=name,
                )
            config.rfm_method = value
        elif name in _WHOLE:
            setattr(config, name, _whole(name, value))
        elif name in _DECIMAL:
            setattr(config, name, _decimal(name, value))
        else:
            raise ValidationFailed("invalid", f"unknown setting '{name}'", path=name)
    if config.rfm_method == RFMMethod.THRESHOLD:
        for name in _THRESHOLDS:
            if getattr(config, name) is None:
                raise ValidationFailed("invalid", f"the threshold method needs {name}", path=name)
    if Decimal(config.churned_factor) <= Decimal(config.dormant_factor):
        raise ValidationFailed(
            "invalid", "churned_factor must be larger than dormant_factor", path="churned_factor"
        )
    config.save()
    audit_record(
        workspace=workspace,
        action="layers.config",
        actor_user=actor,
        target=config,
        data={k: str(v) if v is not None else None for k, v in values.items()},
    )
    return config


# --- refresh ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayersRefreshed:
    contacts: int
    #: Contacts whose stored layers this refresh wrote (new, changed or gone).
    changed: int
    month: date
    computed_at: datetime
    median_interval_days: float | None


#: Temporary tables of one refresh (per connection, dropped before the refresh returns).
_BUYERS, _INTENT, _SCORES, _NEW, _DIFF = "buyers", "intent", "scores", "new", "diff"


def _staging_name(workspace: Workspace, part: str) -> str:
    """The working table of one step of ``workspace``'s refresh.

    On PostgreSQL the working tables are UNLOGGED tables, not TEMP ones: no parallel worker can
    read a temporary table (its pages live in the leader's memory), so every statement joining
    one ran in a single process. Created and dropped inside the refresh's transaction, they
    are never seen by another session and vanish with a rollback; the workspace in the name
    keeps refreshes of different workspaces from waiting on each other."""
    if connection.vendor == "postgresql":
        return f"siyu_layer_{part}_w{workspace.id}"
    return f"siyu_layer_{part}"


def _create_staging(name: str, select: str) -> None:
    kind = "UNLOGGED" if connection.vendor == "postgresql" else "TEMP"
    _execute(f"CREATE {kind} TABLE {connection.ops.quote_name(name)} AS {select}", [])


def _stage(name: str, expr: ibis.Table) -> ibis.Table:
    """``expr`` computed once into the working table ``name``, returned as a table to build
    on. CREATE TABLE … AS may run in parallel workers on PostgreSQL, INSERT … SELECT never
    does; the table's statistics let the planner size the joins on it."""
    _create_staging(name, to_sql_fragment(expr))
    _execute(f"ANALYZE {connection.ops.quote_name(name)}", [])
    return ibis.table(expr.schema(), name=name)


@contextmanager
def _memory_for_sorts() -> Iterator[None]:
    """The RFM scores sort the buyers six times and the aggregates hash a million groups: with
    PostgreSQL's default 4 MB of work memory all of that spills to disk. Raised for this
    transaction only, and put back after."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('work_mem')")
        (before,) = cursor.fetchone()
        cursor.execute("SELECT set_config('work_mem', %s, true)", [_WORK_MEM])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('work_mem', %s, true)", [before])


_WORK_MEM = "256MB"


def _locked_config(workspace: Workspace) -> LayerConfig:
    """The workspace's configuration row, saved with the defaults if it was not, and locked:
    refreshes of one workspace run one after the other."""
    config = layer_config_get(workspace=workspace)
    if config.pk is None:
        config.save()
    return LayerConfig.objects.select_for_update().get(pk=config.pk)


def _differs(left: str, right: str) -> str:
    """SQL true when any layer column of the two rows differs (NULLs equal)."""
    columns = [connection.ops.quote_name(c) for c in _COLUMNS if c != "contact_id"]
    if connection.vendor == "postgresql":
        return (
            f"({', '.join(f'{left}.{c}' for c in columns)}) IS DISTINCT FROM "
            f"({', '.join(f'{right}.{c}' for c in columns)})"
        )
    return "(" + " OR ".join(f"{left}.{c} IS NOT {right}.{c}" for c in columns) + ")"


def _write_difference(
    workspace: Workspace, now: datetime, month: date, new: str, contacts: int
) -> int:
    """Brings the stage snapshot and then the ContactLayer rows from what they hold to the
    working table ``new``; returns how many contacts' rows were written.

    One join of the new layers with the stored ones finds the rows that differ (``diff``,
    with each contact's stored stage, NULL for a contact not layered before); the writes then
    touch only those, found by the unique contact index. The snapshot keeps changes only
    (see LayerSnapshot), so only a contact whose stage moved since the last refresh can need
    its row for this month rewritten: dropped, then written again when the stage differs from
    its stage at the previous month's end. Contacts that are gone leave the history too."""
    layer, snapshot = _q(ContactLayer), _q(LayerSnapshot)
    stamp = connection.ops.adapt_datetimefield_value(now)
    ws = workspace.id
    quote = connection.ops.quote_name
    stage = quote("lifecycle_stage")
    selected = ", ".join(f"l.{quote(c)}" for c in _COLUMNS)
    columns = ", ".join(quote(c) for c in _COLUMNS)
    if not _scalar(
        f"SELECT CASE WHEN EXISTS (SELECT 1 FROM {layer} WHERE workspace_id = %s) "  # noqa: S608
        f"OR EXISTS (SELECT 1 FROM {snapshot} WHERE workspace_id = %s) THEN 1 ELSE 0 END",
        [ws, ws],
    ):
        # The workspace's first refresh: every row is new and there is no history to compare
        # with, so the new layers are written as they are, without the difference worked out.
        _execute(
            f"INSERT INTO {snapshot} (workspace_id, month, contact_id, lifecycle_stage) "  # noqa: S608
            f"SELECT %s, %s, l.contact_id, l.{stage} FROM {new} l ORDER BY l.contact_id",
            [ws, month],
        )
        return _execute(
            f"INSERT INTO {layer} (workspace_id, changed_at, {columns}) "  # noqa: S608
            f"SELECT %s, %s, {selected} FROM {new} l ORDER BY l.contact_id",
            [ws, stamp],
        )
    diff = _staging_name(workspace, _DIFF)
    _create_staging(
        diff,
        f"SELECT {selected}, o.{stage} AS old_stage, "  # noqa: S608
        f"o.contact_id IS NULL AS is_new, CAST(NULL AS VARCHAR(16)) AS before_stage FROM {new} l "
        f"LEFT JOIN {layer} o ON o.contact_id = l.contact_id "
        f"WHERE o.contact_id IS NULL OR {_differs('o', 'l')}",
    )
    # Contacts that are gone (deleted outside the ORM's cascade): stored rows without a new
    # one. Counted first, as they are nearly always none and finding them scans the pool.
    stored = _scalar(f"SELECT COUNT(*) FROM {layer} WHERE workspace_id = %s", [ws])  # noqa: S608
    entrants = _scalar(f"SELECT COUNT(*) FROM {diff} WHERE is_new", [])  # noqa: S608
    written = 0
    if stored > contacts - entrants:
        gone = (
            f"SELECT o.contact_id FROM {layer} o WHERE o.workspace_id = %s "  # noqa: S608
            f"AND NOT EXISTS (SELECT 1 FROM {new} l WHERE l.contact_id = o.contact_id)"
        )
        _execute(
            f"DELETE FROM {snapshot} WHERE workspace_id = %s AND contact_id IN ({gone})",  # noqa: S608
            [ws, ws],
        )
        written += _execute(
            f"DELETE FROM {layer} WHERE workspace_id = %s AND contact_id IN ({gone})",  # noqa: S608
            [ws, ws],
        )
    moved = f"(l.is_new OR l.old_stage <> l.{stage})"
    _execute(
        f"DELETE FROM {snapshot} WHERE workspace_id = %s AND month = %s "  # noqa: S608
        f"AND contact_id IN (SELECT l.contact_id FROM {diff} l WHERE {moved})",
        [ws, month],
    )
    # The stage at the previous month's end is looked up in a statement of its own: read by
    # the INSERT that fills the same table, a snapshot table that was empty when the statement
    # was planned is scanned whole for every row, and the first refresh of a million contacts
    # never ends. Without history before this month there is nothing to look up.
    if _scalar(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {snapshot} WHERE workspace_id = %s "  # noqa: S608
        "AND month < %s LIMIT 1) x",
        [ws, month],
    ):
        _execute(
            f"UPDATE {diff} SET before_stage = (SELECT s.lifecycle_stage FROM {snapshot} s "  # noqa: S608
            f"WHERE s.contact_id = {diff}.contact_id AND s.month < %s "
            f"ORDER BY s.month DESC LIMIT 1) WHERE is_new OR old_stage <> {stage}",
            [month],
        )
    distinct = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    _execute(
        f"INSERT INTO {snapshot} (workspace_id, month, contact_id, lifecycle_stage) "  # noqa: S608
        f"SELECT %s, %s, l.contact_id, l.{stage} FROM {diff} l WHERE {moved} "
        f"AND l.{stage} {distinct} l.before_stage ORDER BY l.contact_id",
        [ws, month],
    )
    values = [c for c in _COLUMNS if c != "contact_id"]
    assignments = ", ".join(f"{quote(c)} = l.{quote(c)}" for c in values)
    written += _execute(
        f"UPDATE {layer} SET {assignments}, changed_at = %s FROM {diff} l "  # noqa: S608
        f"WHERE NOT l.is_new AND {layer}.contact_id = l.contact_id",
        [stamp],
    )
    written += _execute(
        f"INSERT INTO {layer} (workspace_id, changed_at, {columns}) "  # noqa: S608
        f"SELECT %s, %s, {selected} FROM {diff} l WHERE l.is_new ORDER BY l.contact_id",
        [ws, stamp],
    )
    _execute(f"DROP TABLE {diff}", [])
    return written


@transaction.atomic
def layers_refresh(
    *, workspace: Workspace, now: datetime | None = None, progress: Progress | None = None
) -> LayersRefreshed:
    """Recomputes every contact's layers as of ``now`` and records the stages as the snapshot of
    ``now``'s month (in the workspace's zone), replacing an earlier refresh's in the same month:
    a month's snapshot is its last refresh, so flows compare month ends.

    The buyers' aggregates are computed once into a working table, which the median rhythm,
    the RFM scores (ranked on the buyers' own rows, into a working table too) and the layers
    read; the layers go into another working table, and only the contacts whose layers
    differ from the stored ones are written."""
    now = now or timezone.now()
    progress = progress or NoProgress()
    config = _locked_config(workspace)
    zone = ZoneInfo(workspace.time_zone)
    month = now.astimezone(zone).date().replace(day=1)
    progress.start("RFM, lifecycle and intent layers", 3)
    names = {part: _staging_name(workspace, part) for part in (_BUYERS, _INTENT, _SCORES, _NEW)}
    with _memory_for_sorts():
        buyers = _stage(
            names[_BUYERS], buyers_expression(workspace=workspace, config=config, now=now)
        )
        # Apart, so that the scan of the events does not wait on the buyers' aggregates.
        intent = _stage(
            names[_INTENT], intent_expression(workspace=workspace, config=config, now=now)
        )
        [(median,)] = fetch(
            median_interval_expression(workspace=workspace, config=config, now=now, buyers=buyers)
        )
        median = float(median) if median is not None else None
        scores = _stage(names[_SCORES], scores_expression(buyers=buyers, now=now))
        progress.advance()
        _stage(
            names[_NEW],
            layers_expression(
                workspace=workspace,
                config=config,
                now=now,
                median_interval=median,
                buyers=buyers,
                intent=intent,
                scores=scores,
            ),
        )
        _execute(f"DROP TABLE {names[_BUYERS]}", [])
        _execute(f"DROP TABLE {names[_INTENT]}", [])
        _execute(f"DROP TABLE {names[_SCORES]}", [])
        contacts = _scalar(f"SELECT COUNT(*) FROM {names[_NEW]}", [])  # noqa: S608
        progress.advance()
        changed = _write_difference(workspace, now, month, names[_NEW], contacts)
        _execute(f"DROP TABLE {names[_NEW]}", [])
    months = sorted({*config.snapshot_months, month.isoformat()})
    LayerConfig.objects.filter(pk=config.pk).update(refreshed_at=now, snapshot_months=months)
    progress.advance()
    return LayersRefreshed(
        contacts=contacts,
        changed=changed,
        month=month,
        computed_at=now,
        median_interval_days=median / 86_400 if median is not None else None,
    )


# --- merges -------------------------------------------------------------------------------------


def _merge_layers(workspace: Workspace, survivor: Contact, other_ids: list[int]) -> int:
    """The merged contacts' layers are dropped; the survivor's are recomputed at the next
    refresh from the orders and events it now holds."""
    deleted, _ = ContactLayer.objects.filter(workspace=workspace, contact_id__in=other_ids).delete()
    return deleted


def _merge_snapshots(workspace: Workspace, survivor: Contact, other_ids: list[int]) -> int:
    """The survivor keeps its own stage history. The snapshot holds changes only, so rows of
    two contacts interleaved would make a history neither had; the merged contacts' rows go,
    unless the survivor has none, when it takes the oldest merged contact's history. The next
    refresh writes this month's stage from everything the survivor now holds."""
    others = LayerSnapshot.objects.filter(workspace=workspace, contact_id__in=other_ids)
    if LayerSnapshot.objects.filter(workspace=workspace, contact=survivor).exists():
        others.delete()
        return 0
    heir = others.order_by("contact_id").values_list("contact_id", flat=True).first()
    if heir is None:
        return 0
    others.exclude(contact_id=heir).delete()
    return others.filter(contact_id=heir).update(contact=survivor)


MERGE_HANDLERS[ContactLayer] = _merge_layers
MERGE_HANDLERS[LayerSnapshot] = _merge_snapshots
