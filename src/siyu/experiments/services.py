"""Writes of experiments: create one on a segment, start it (assigning every current member in
one bulk insert), assign contacts who arrive later, and finish it.

Assignment is deterministic (``stats.assign_variant``), so assigning a contact twice, by start
or by ``experiment_assign``, can only ever give the same variant; the unique constraint on
(experiment, contact) makes re-assignment a no-op, even against a concurrent writer.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu import bulk
from siyu.audiences import queries as audiences_queries
from siyu.contacts import queries as contacts_queries
from siyu.errors import DomainError, NotFound, ValidationFailed
from siyu.experiments import stats
from siyu.experiments.models import (
    Experiment,
    ExperimentAssignment,
    ExperimentGoal,
    ExperimentStatus,
)
from siyu.tenancy.models import Workspace

MIN_VARIANTS, MAX_VARIANTS = 2, 5
MAX_WINDOW_DAYS = 365
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _invalid(message: str, path: str) -> ValidationFailed:
    return ValidationFailed("invalid_experiment", message, path=path)


def validate_variants(variants: Any) -> list[dict[str, Any]]:
    """The variants as stored (``key``, ``weight`` only), or a ``ValidationFailed`` whose path
    names the offending part (``variants`` for the list as a whole)."""
    if not isinstance(variants, list) or not MIN_VARIANTS <= len(variants) <= MAX_VARIANTS:
        raise _invalid(
            _("实验需要 %(min)s 到 %(max)s 个版本。") % {"min": MIN_VARIANTS, "max": MAX_VARIANTS},
            "variants",
        )
    clean = []
    for i, item in enumerate(variants):
        key = item.get("key") if isinstance(item, dict) else None
        weight = item.get("weight") if isinstance(item, dict) else None
        if not isinstance(key, str) or not _KEY.match(key):
            raise _invalid(
                _("版本标识须为 1–32 个字母、数字、下划线或连字符。"), f"variants.{i}.key"
            )
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 99:
            raise _invalid(_("权重须为 1 到 99 的整数（百分比）。"), f"variants.{i}.weight")
        clean.append({"key": key, "weight": weight})
    keys = [v["key"] for v in clean]
    if len(set(keys)) != len(keys):
        raise _invalid(_("版本标识不能重复。"), "variants")
    total = sum(v["weight"] for v in clean)
    if total != 100:
        raise _invalid(
            _("各版本权重之和须为 100，现在是 %(total)s。") % {"total": total}, "variants"
        )
    return clean


@transaction.atomic
def experiment_create(
    *,
    workspace: Workspace,
    name: str,
    segment_id: int,
    variants: Any,
    window_days: int = 14,
    goal: str = ExperimentGoal.ORDER,
) -> Experiment:
    """A draft experiment. An unknown segment and another workspace's segment are refused alike,
    so that an id never tells whether it exists elsewhere."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise _invalid(_("请填写实验名称（最多 100 个字）。"), "name")
    if Experiment.objects.filter(workspace=workspace, name=name).exists():
        raise _invalid(_("已有同名实验。"), "name")
    try:
        segment = audiences_queries.segment_get(workspace=workspace, segment_id=segment_id)
    except NotFound:
        raise _invalid(_("人群不存在。"), "segment_id") from None
    clean = validate_variants(variants)
    if (
        isinstance(window_days, bool)
        or not isinstance(window_days, int)
        or not (1 <= window_days <= MAX_WINDOW_DAYS)
    ):
        raise _invalid(
            _("转化窗口须为 1 到 %(max)s 天。") % {"max": MAX_WINDOW_DAYS}, "window_days"
        )
    if goal not in ExperimentGoal.values:
        raise _invalid(_("不支持的实验目标。"), "goal")
    return Experiment.objects.create(
        workspace=workspace,
        name=name,
        segment=segment,
        variants=clean,
        salt=secrets.token_hex(8),
        window_days=window_days,
        goal=goal,
    )


def _locked(workspace: Workspace, experiment: Experiment) -> Experiment:
    """The experiment row, locked: concurrent starts and assignments queue behind each other."""
    locked = (
        Experiment.objects.select_for_update().filter(workspace=workspace, id=experiment.id).first()
    )
    if locked is None:
        raise NotFound("not_found", _("实验不存在。"))
    return locked


def _assign(experiment: Experiment, contact_ids: Sequence[int], now: datetime) -> int:
    """Inserts the assignments of those of ``contact_ids`` not yet assigned; returns how many."""
    known = set(
        ExperimentAssignment.objects.filter(
            workspace_id=experiment.workspace_id, experiment=experiment
        ).values_list("contact_id", flat=True)
    )
    fresh = sorted(set(contact_ids) - known)
    if not fresh:
        return 0
    keys = stats.assign_variants(experiment.salt, fresh, experiment.variants)
    window_ends = now + timedelta(days=experiment.window_days)
    rows = [
        (experiment.workspace_id, experiment.id, cid, key, now, window_ends)
        for cid, key in zip(fresh, keys, strict=True)
    ]
    columns = (
        "workspace_id",
        "experiment_id",
        "contact_id",
        "variant",
        "assigned_at",
        "window_ends_at",
    )
    return bulk.insert(ExperimentAssignment, columns, rows, unique=("experiment_id", "contact_id"))


@transaction.atomic
def experiment_start(
    *, workspace: Workspace, experiment: Experiment, now: datetime | None = None
) -> int:
    """Starts the experiment and assigns every current member of its segment; returns how many
    were newly assigned. Starting a running experiment again assigns only members who joined
    the segment since, each exactly once."""
    now = now or timezone.now()
    experiment = _locked(workspace, experiment)
    if experiment.status == ExperimentStatus.FINISHED:
        raise DomainError("experiment_finished", _("实验已结束，不能再开始。"), http_status=409)
    if experiment.segment_id is None:
        raise DomainError("no_segment", _("实验的人群已被删除。"), http_status=409)
    members = list(
        audiences_queries.segment_members(
            workspace=workspace, segment=experiment.segment
        ).values_list("id", flat=True)
    )
    if experiment.status == ExperimentStatus.DRAFT:
        experiment.status = ExperimentStatus.RUNNING
        experiment.start_at = now
        experiment.save(update_fields=["status", "start_at"])
    return _assign(experiment, members, now)


@transaction.atomic
def experiment_assign(
    *,
    workspace: Workspace,
    experiment: Experiment,
    contact_ids: Sequence[int],
    now: datetime | None = None,
) -> int:
    """Assigns contacts who reach a running experiment later (journeys, new members); ids of
    other workspaces are ignored. Returns how many were newly assigned."""
    experiment = _locked(workspace, experiment)
    if experiment.status != ExperimentStatus.RUNNING:
        raise DomainError("experiment_not_running", _("实验未在进行中。"), http_status=409)
    ids = list(
        contacts_queries.contacts_visible(workspace=workspace)
        .filter(id__in=list(contact_ids))
        .values_list("id", flat=True)
    )
    return _assign(experiment, ids, now or timezone.now())


@transaction.atomic
def experiment_finish(
    *, workspace: Workspace, experiment: Experiment, now: datetime | None = None
) -> Experiment:
    """Ends the experiment: orders paid from now on no longer count, whatever the window."""
    experiment = _locked(workspace, experiment)
    if experiment.status != ExperimentStatus.RUNNING:
        raise DomainError("experiment_not_running", _("实验未在进行中。"), http_status=409)
    experiment.status = ExperimentStatus.FINISHED
    experiment.end_at = now or timezone.now()
    experiment.save(update_fields=["status", "end_at"])
    return experiment
