"""Writes for layers: the workspace's layer configuration and the refresh that rewrites every
contact's RFM class, lifecycle stage and intent layer.

A refresh is a handful of set statements in one transaction: the median purchase rhythm (one
small SELECT), then DELETE + INSERT … SELECT of ``layers_expression`` into ContactLayer, then
the month's snapshot copied from it. No row is built in Python, whatever the pool's size.
(Kept apart from ``services.py`` so tags and segments, edited by others, stay small.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, models, transaction
from django.utils import timezone

from siyu.analytics.tables import fetch, to_sql_fragment
from siyu.audiences.layers import layers_expression, median_interval_expression
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
    "recency_days",
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
    month: date
    computed_at: datetime
    median_interval_days: float | None


@transaction.atomic
def layers_refresh(
    *, workspace: Workspace, now: datetime | None = None, progress: Progress | None = None
) -> LayersRefreshed:
    """Recomputes every contact's layers as of ``now`` and records the stages as the snapshot of
    ``now``'s month (in the workspace's zone), replacing an earlier snapshot of the same month:
    a month's snapshot is its last refresh, so flows compare month ends."""
    now = now or timezone.now()
    progress = progress or NoProgress()
    config = layer_config_get(workspace=workspace)
    progress.start("RFM, lifecycle and intent layers", 3)
    [(median,)] = fetch(median_interval_expression(workspace=workspace, config=config, now=now))
    median = float(median) if median is not None else None
    progress.advance()
    expr = layers_expression(workspace=workspace, config=config, now=now, median_interval=median)
    layer, stamp = _q(ContactLayer), connection.ops.adapt_datetimefield_value(now)
    _execute(f"DELETE FROM {layer} WHERE workspace_id = %s", [workspace.id])  # noqa: S608 - table names from models
    columns = ", ".join(connection.ops.quote_name(c) for c in _COLUMNS)
    selected = ", ".join(f"l.{connection.ops.quote_name(c)}" for c in _COLUMNS)
    written = _execute(
        f"INSERT INTO {layer} (workspace_id, computed_at, {columns}) "  # noqa: S608
        f"SELECT %s, %s, {selected} FROM ({to_sql_fragment(expr)}) l",
        [workspace.id, stamp],
    )
    progress.advance()
    month = now.astimezone(ZoneInfo(workspace.time_zone)).date().replace(day=1)
    snapshot = _q(LayerSnapshot)
    _execute(
        f"DELETE FROM {snapshot} WHERE workspace_id = %s AND month = %s",  # noqa: S608
        [workspace.id, month],
    )
    _execute(
        f"INSERT INTO {snapshot} (workspace_id, month, contact_id, lifecycle_stage) "  # noqa: S608
        f"SELECT workspace_id, %s, contact_id, lifecycle_stage FROM {layer} WHERE workspace_id = %s",
        [month, workspace.id],
    )
    progress.advance()
    return LayersRefreshed(
        contacts=written,
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
    """Past months keep the survivor's stage; months it has no snapshot for take the merged
    contact's (the oldest id's when several were merged)."""
    taken = set(LayerSnapshot.objects.filter(contact=survivor).values_list("month", flat=True))
    keep, drop = [], []
    for row_id, month in (
        LayerSnapshot.objects.filter(workspace=workspace, contact_id__in=other_ids)
        .order_by("contact_id", "month")
        .values_list("id", "month")
    ):
        (drop if month in taken else keep).append(row_id)
        taken.add(month)
    LayerSnapshot.objects.filter(id__in=drop).delete()
    return LayerSnapshot.objects.filter(id__in=keep).update(contact=survivor)


MERGE_HANDLERS[ContactLayer] = _merge_layers
MERGE_HANDLERS[LayerSnapshot] = _merge_snapshots
