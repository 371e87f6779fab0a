"""The ``siyu`` command: one entry point for operators and integrators.

Each command sets up Django only after ``--data-dir`` is known, because the data folder decides
where the embedded database and the generated secrets live."""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()


def _setup(data_dir: str | None) -> None:
    if data_dir:
        os.environ["SIYU_DATA_DIR"] = str(Path(data_dir).resolve())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    import django

    django.setup()


def _migrate() -> None:
    from django.core.management import call_command

    with console.status("Migrating the database…"):
        call_command("migrate", interactive=False, verbosity=0)


class RichProgress:
    """siyu.progress.Progress shown as a rich bar."""

    def __init__(self, progress: Progress):
        self._progress = progress
        self._task = None

    def start(self, label: str, total: int | None) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=self._progress.tasks[self._task].total or 0)
        self._task = self._progress.add_task(label, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def _refused(exc) -> click.ClickException:
    """A service's refusal as the command's error, naming the offending input when it has a path."""
    return click.ClickException(f"{exc.path}: {exc.message}" if exc.path else exc.message)


def _workspace(slug: str):
    from siyu.tenancy.models import Workspace

    ws = Workspace.objects.filter(slug=slug).first()
    if ws is None:
        raise click.ClickException(f"No workspace {slug!r}. Create one with `siyu init --slug {slug}`.")
    return ws


data_dir_option = click.option(
    "--data-dir", envvar="SIYU_DATA_DIR", default=None, help="Folder for the embedded database and secrets (default ./siyu-data)."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="siyu")
def main() -> None:
    """siyu 私域 — private-domain customer operations."""


@main.command()
@data_dir_option
@click.option("--slug", required=True, help="Short id of the brand, e.g. freshfruit.")
@click.option("--name", default=None, help="Display name of the brand.")
@click.option("--time-zone", default="Asia/Shanghai", show_default=True)
@click.option("--currency", default="CNY", show_default=True)
def init(data_dir: str | None, slug: str, name: str | None, time_zone: str, currency: str) -> None:
    """Create the database (if needed) and an empty workspace."""
    _setup(data_dir)
    _migrate()
    from siyu.errors import DomainError
    from siyu.tenancy import services

    try:
        ws = services.workspace_create(slug=slug, name=name or slug, time_zone=time_zone, currency=currency)
    except DomainError as exc:
        raise _refused(exc) from exc
    console.print(f"Workspace [bold]{ws.slug}[/] created ({ws.time_zone}, {ws.currency}).")
    console.print(f"Next: `siyu createuser NAME --workspace {ws.slug} --role owner`, then `siyu serve`.")


@main.command()
@data_dir_option
@click.argument("username")
@click.option("--workspace", "slug", required=True)
@click.option("--role", type=click.Choice(["owner", "operator", "analyst", "staff"]), default="operator", show_default=True)
@click.option("--staff-code", default=None, help="For role staff: the staff member (and so the store) this login is.")
@click.option("--password", default=None, help="Omit to be prompted; use --random-password to generate one.")
@click.option("--random-password", is_flag=True)
def createuser(data_dir, username, slug, role, staff_code, password, random_password) -> None:
    """Create a console login with a role in a workspace."""
    _setup(data_dir)
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from siyu.commerce import services as commerce_services
    from siyu.errors import DomainError
    from siyu.tenancy import services

    ws = _workspace(slug)
    if random_password:
        password = secrets.token_urlsafe(12)
    elif password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with transaction.atomic():
            user = get_user_model().objects.filter(username=username).first() or services.user_create(
                username=username, password=password
            )
            services.membership_set(workspace=ws, user=user, role=role)
            if staff_code:
                commerce_services.staff_link_user(workspace=ws, staff_code=staff_code, user=user)
    except DomainError as exc:
        raise _refused(exc) from exc
    console.print(f"User [bold]{username}[/] is {role} of {ws.slug}.")
    if random_password:
        console.print(f"Password: [bold]{password}[/]")


@main.group()
def apikey() -> None:
    """Manage API keys of a workspace."""


@apikey.command("create")
@data_dir_option
@click.option("--workspace", "slug", required=True)
@click.option("--name", default="cli", show_default=True)
def apikey_create(data_dir, slug, name) -> None:
    """Create a key; it is printed once and cannot be shown again."""
    _setup(data_dir)
    from siyu.tenancy import services

    key, raw = services.api_key_create(workspace=_workspace(slug), name=name)
    console.print(f"API key {key.name} ({key.prefix}) for {slug}. Store it now; it will not be shown again:")
    click.echo(raw)


@apikey.command("list")
@data_dir_option
@click.option("--workspace", "slug", required=True)
def apikey_list(data_dir, slug) -> None:
    """List keys (never the secret)."""
    _setup(data_dir)
    from siyu.tenancy import queries

    for key in queries.api_keys_list(workspace=_workspace(slug)):
        state = "revoked" if key.revoked_at else "active"
        click.echo(f"{key.id}\t{key.prefix}\t{key.name}\t{state}\tlast used {key.last_used_at or '-'}")


@apikey.command("revoke")
@data_dir_option
@click.option("--workspace", "slug", required=True)
@click.argument("key_id", type=int)
def apikey_revoke(data_dir, slug, key_id) -> None:
    """Revoke a key at once."""
    _setup(data_dir)
    from siyu.errors import DomainError
    from siyu.tenancy import services

    try:
        services.api_key_revoke(workspace=_workspace(slug), key_id=key_id)
    except DomainError as exc:
        raise _refused(exc) from exc
    console.print(f"Key {key_id} revoked.")


@main.group()
def channel() -> None:
    """Manage the channels messages go out through (SMS gateway, SMTP, webhook, console)."""


@channel.command("add")
@data_dir_option
@click.option("--workspace", "slug", required=True)
@click.option("--kind", required=True, help="console, webhook, email or sms.")
@click.option("--name", required=True)
@click.option("--settings", "settings_json", default="{}", show_default=True, help="The kind's settings as JSON (docs/messaging.md).")
@click.option("--consent-channel", default=None, help="Whose consent it needs; defaults to the kind's own.")
@click.option("--require-consent", is_flag=True, help="Send only to contacts who granted consent.")
@click.option("--rate", "rate_per_second", type=float, default=10.0, show_default=True, help="Messages per second at most.")
def channel_add(data_dir, slug, kind, name, settings_json, consent_channel, require_consent, rate_per_second) -> None:
    """Add a channel (audited, as in the console and the API)."""
    _setup(data_dir)
    from siyu.errors import DomainError
    from siyu.messaging import services

    try:
        settings = json.loads(settings_json)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"--settings is not valid JSON: {exc}") from exc
    if not isinstance(settings, dict):
        raise click.ClickException("--settings must be a JSON object")
    try:
        made = services.channel_create(
            workspace=_workspace(slug),
            kind=kind,
            name=name,
            settings=settings,
            consent_channel=consent_channel,
            require_consent=require_consent,
            rate_per_second=rate_per_second,
        )
    except DomainError as exc:
        raise _refused(exc) from exc
    console.print(f"Channel {made.id} ({made.kind}) {made.name} added to {slug}.")


@channel.command("list")
@data_dir_option
@click.option("--workspace", "slug", required=True)
def channel_list(data_dir, slug) -> None:
    """List channels; secrets are shown masked."""
    _setup(data_dir)
    from siyu.messaging import queries, services

    for c in queries.channels_list(workspace=_workspace(slug)):
        state = "enabled" if c.enabled else "disabled"
        settings = json.dumps(services.settings_masked(c.settings), ensure_ascii=False)
        click.echo(f"{c.id}\t{c.kind}\t{c.name}\t{state}\t{c.rate_per_second}/s\t{settings}")


@main.command("import")
@data_dir_option
@click.argument("entity", type=click.Choice(["contacts", "orders", "events", "products", "stores", "staff", "spend"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workspace", "slug", required=True)
@click.option("--encoding", default=None, help="Force a file encoding (e.g. gbk); detected otherwise.")
def import_(data_dir, entity, file, slug, encoding) -> None:
    """Import a CSV or JSONL file. Good rows are kept; bad rows go to a rejects file beside it."""
    _setup(data_dir)
    from siyu.errors import DomainError
    from siyu.importing import run_import

    ws = _workspace(slug)
    try:
        with _progress_bar() as bar:
            report = run_import(workspace=ws, entity=entity, path=file, encoding=encoding, progress=RichProgress(bar))
    except DomainError as exc:
        raise _refused(exc) from exc
    console.print(report.summary())
    if report.rejected:
        sys.exit(1)


@main.command()
@data_dir_option
@click.option("--contacts", default=20000, show_default=True, help="Size of the demo pool (1000000 for the benchmark size).")
@click.option("--seed", default=7, show_default=True)
@click.option("--serve/--no-serve", default=True, help="Serve the console when the demo is built.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--rebuild", is_flag=True, help="Delete an existing demo workspace and build it again.")
@click.option("--worker/--no-worker", "with_worker", default=True,
              help="Run `siyu worker` beside the server (recomputes, model fits, journeys, schedules).")
def demo(data_dir, contacts, seed, serve, host, port, rebuild, with_worker) -> None:
    """Build the demo fruit-chain brand, create an owner login and open the console."""
    _setup(data_dir or "siyu-data")
    _migrate()
    from django.conf import settings

    from siyu.demo import build_demo
    from siyu.demo.showcase import prepare_showcase
    from siyu.tenancy import services
    from siyu.tenancy.models import Workspace

    existing = Workspace.objects.filter(slug="demo").first()
    if existing and rebuild:
        from siyu.demo.build import demo_delete

        with console.status("Deleting the old demo workspace…"):
            demo_delete(workspace=existing)
        existing = None
    if existing is None:
        ws = services.workspace_create(slug="demo", name="鲜果时光 FreshFruit (demo)")
        with _progress_bar() as bar:
            summary = build_demo(workspace=ws, contacts=contacts, seed=seed, progress=RichProgress(bar))
            showcase = prepare_showcase(workspace=ws, progress=RichProgress(bar))
        console.print(str(summary))
        console.print(f"Layers for {showcase.layered_contacts:,} contacts, CLV model {showcase.fit_status}, "
                      f"{showcase.segments} sample segments, a console channel and sample content.")
    else:
        ws = existing
        console.print("The demo workspace exists already (use --rebuild to build it again).")
    password = secrets.token_urlsafe(10)
    user = services.owner_login_reset(workspace=ws, username="demo", password=password)
    console.print(f"Data folder: {settings.DATA_DIR}")
    console.print(f"Console login: [bold]{user.username}[/] / [bold]{password}[/]")
    if serve:
        _serve(host, port, with_worker)


@main.command()
@data_dir_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--worker/--no-worker", "with_worker", default=False,
              help="Also run `siyu worker` beside the server, stopped with it (one machine, one command).")
def serve(data_dir, host, port, with_worker) -> None:
    """Serve the console and API (migrating first)."""
    _setup(data_dir)
    _migrate()
    _serve(host, port, with_worker)


def _serve(host: str, port: int, with_worker: bool) -> None:
    """Serves until Ctrl+C. With ``with_worker`` a `siyu worker` process runs beside it for as
    long: without one, whatever the console hands to the background (a layers recompute, a
    model fit, a journey's sends, the scheduled refreshes) waits for a worker that never comes."""
    import subprocess

    from django.conf import settings
    from django.core.management import call_command

    worker = None
    if with_worker:
        worker = subprocess.Popen(  # noqa: S603  (this interpreter, our own command)
            [sys.executable, "-m", "siyu.cli", "worker", "--data-dir", str(settings.DATA_DIR)],
            env=os.environ.copy(),
        )
        console.print(f"Worker: process {worker.pid} runs the background jobs beside the server.")
    console.print(f"Console: [bold]http://{host}:{port}/[/]  API docs: http://{host}:{port}/api/docs  (Ctrl+C stops)")
    try:
        # runserver is threaded and serves the packaged static files with --insecure; behind a
        # real web server use siyu.wsgi:application with gunicorn instead.
        call_command("runserver", f"{host}:{port}", use_reloader=False, insecure_serving=True, use_threading=True)
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()


@main.group()
def models() -> None:
    """Customer-value models (BG/NBD or Pareto/NBD with Gamma-Gamma): CLV, P(alive), churn risk."""


@models.command("fit")
@data_dir_option
@click.option("--workspace", "slug", default=None, help="Workspace to fit (omit with --all).")
@click.option("--all", "all_workspaces", is_flag=True, help="Fit every workspace (for a nightly cron).")
@click.option("--model", "kind", type=click.Choice(["bgnbd", "pareto_nbd"]), default=None,
              help="Model to fit; default: the one the workspace last used (BG/NBD at first).")
def models_fit(data_dir, slug, all_workspaces, kind) -> None:
    """Fit the models and score every buyer; prints the parameters and the holdout check."""
    _setup(data_dir)
    from siyu.insights import services
    from siyu.tenancy.models import Workspace

    if not slug and not all_workspaces:
        raise click.UsageError("Give --workspace SLUG or --all.")
    workspaces = list(Workspace.objects.all()) if all_workspaces else [_workspace(slug)]
    failed = 0
    for ws in workspaces:
        with _progress_bar() as bar:
            fit = services.fit_workspace(workspace=ws, kind=kind, progress=RichProgress(bar))
        if fit.status != "done":
            failed += 1
            console.print(f"[red]{ws.slug}: {fit.message}[/]")
            continue
        params = ", ".join(f"{k}={v:.4g}" for k, v in {**fit.transaction_params, **fit.spend_params}.items())
        console.print(f"{ws.slug}: {fit.get_kind_display()} fitted on {fit.customers} buyers "
                      f"({fit.repeat_buyers} repeat): {params}")
        check = fit.calibration
        if "error_pct" in check:
            console.print(f"  holdout {check['holdout_weeks']} weeks: predicted {check['total_predicted']} repeat "
                          f"purchases, actual {check['total_actual']} ({check['error_pct']:+.1f}%)")
    if failed:
        sys.exit(1)


@main.command()
@data_dir_option
@click.option("--queue", "queues", multiple=True, default=["default"], show_default=True)
@click.option("--batch", is_flag=True, help="Exit when the queue is empty (for cron and tests).")
@click.option("--scheduler/--no-scheduler", default=True, help="Also enqueue periodic jobs (segment refreshes, nightly model fits).")
def worker(data_dir, queues, batch, scheduler) -> None:
    """Run background work (django-tasks database backend). Several can run at once: periodic
    jobs are enqueued once whichever worker ticks first."""
    _setup(data_dir)
    _migrate()
    from django.core.management import call_command

    from siyu.scheduler.runner import run_scheduler_once, start_scheduler_thread

    if scheduler:
        if batch:
            run_scheduler_once()
        else:
            start_scheduler_thread()
    args = ["db_worker", "--queue-name", ",".join(queues)]
    if batch:
        args.append("--batch")
    call_command(*args)


@main.group()
def analytics() -> None:
    """Metrics: daily rollups behind the 指标 page."""


@analytics.command("backfill")
@data_dir_option
@click.option("--workspace", "slug", default=None, help="Workspace to rebuild (omit with --all).")
@click.option("--all", "all_workspaces", is_flag=True, help="Rebuild every workspace.")
def analytics_backfill(data_dir, slug, all_workspaces) -> None:
    """Rebuild the daily rollups from each workspace's first activity to today."""
    _setup(data_dir)
    _migrate()
    from siyu.analytics import services
    from siyu.tenancy.models import Workspace

    if not slug and not all_workspaces:
        raise click.UsageError("Give --workspace SLUG or --all.")
    workspaces = list(Workspace.objects.all()) if all_workspaces else [_workspace(slug)]
    for ws in workspaces:
        with _progress_bar() as bar:
            rows = services.rollups_backfill(workspace=ws, progress=RichProgress(bar))
        console.print(f"{ws.slug}: {rows} rollup rows")


if __name__ == "__main__":
    main()
