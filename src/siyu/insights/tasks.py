"""Background fitting: thin tasks that call the service with ids."""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django_tasks import task

from siyu.insights import services
from siyu.insights.models import ModelFit, ModelKind
from siyu.tenancy.models import Workspace


@task()
def run_model_fit(workspace_id: int, fit_id: int) -> str:
    workspace = Workspace.objects.get(id=workspace_id)
    fit = ModelFit.objects.get(workspace=workspace, id=fit_id)
    return services.model_fit_run(workspace=workspace, fit=fit).status


@task()
def refit_all_workspaces() -> int:
    """For a nightly schedule (cron: `siyu models fit --all`)."""
    count = 0
    for workspace in Workspace.objects.all():
        services.fit_workspace(workspace=workspace)
        count += 1
    return count


def model_fit_enqueue(*, workspace: Workspace, kind: str = ModelKind.BG_NBD) -> ModelFit:
    """Starts a fit and hands it to the worker once the fit row is committed, so the worker never
    looks for a row it cannot see yet (the console button and the API both start fits here)."""
    fit = services.model_fit_start(workspace=workspace, kind=kind)
    transaction.on_commit(partial(run_model_fit.enqueue, workspace.id, fit.id))
    return fit
