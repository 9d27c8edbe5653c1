"""``areya health SERVICE`` (container / pod probes) and ``areya sync-cameras FILE`` (cameras from a secret)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from areya.cli.context import CliContext, get_context

if TYPE_CHECKING:
    from areya.config import Settings
    from areya.deploy.health import Probe


@click.command("health")
@click.argument("service", type=click.Choice(["deps", "web", "worker", "ingest", "scheduler"]), default="deps")
@click.option("--url", help="web: the URL to fetch (default: http://<web_host>:<web_port>/login).")
@click.option(
    "--max-idle",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="worker: seconds a worker of this host may go without reading the stream.",
)
@click.option(
    "--max-age",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="ingest: seconds since the freshest camera health record.",
)
@click.option(
    "--camera",
    "camera_ids",
    type=int,
    multiple=True,
    help="ingest: the cameras this ingestor reads (default: every enabled camera).",
)
def health(service: str, url: str | None, max_idle: float, max_age: float, camera_ids: tuple[int, ...]) -> None:
    """Probe a running SERVICE from its host/container: prints one line, exit 0 if healthy, 1 if not.

    deps: database reachable and migrated, Redis answering.  web: the dashboard answers.  worker / ingest /
    scheduler: the service's own traces in Redis are fresh (see areya/deploy/health.py).
    """
    from areya.deploy import health as probes

    app = get_context()
    settings = app.settings
    if service == "web":
        host = settings.web_host if settings.web_host not in ("0.0.0.0", "::", "") else "127.0.0.1"  # noqa: S104
        result = probes.check_web(url or f"http://{host}:{settings.web_port}/login")
    else:
        result = _probe_with_redis(service, settings, app, max_idle, max_age, camera_ids)
    click.echo(result.line(service))
    if not result.ok:
        raise SystemExit(1)


def _probe_with_redis(
    service: str, settings: Settings, app: CliContext, max_idle: float, max_age: float, camera_ids: tuple[int, ...]
) -> Probe:
    from areya.comms.redis_server import RedisServerError, connect
    from areya.deploy import health as probes

    try:
        client = connect(settings, start_embedded=False, socket_timeout=5, socket_connect_timeout=3)
    except RedisServerError as exc:
        return probes.Probe(False, str(exc))
    redis_probe = probes.check_redis(client)
    if not redis_probe.ok:
        return redis_probe
    if service == "deps":
        db_probe = probes.check_database(settings)
        return probes.Probe(db_probe.ok, f"{db_probe.detail}; {redis_probe.detail}")
    if service == "worker":
        from areya.metrics import WORKER_GROUP

        return probes.check_worker(client, settings.frame_stream, WORKER_GROUP, max_idle_s=max_idle)
    if service == "scheduler":
        return probes.check_scheduler(client, lock_ttl_s=settings.lock_ttl_s)
    ids = list(camera_ids)
    if not ids:
        try:
            ids = probes.enabled_camera_ids(app.session_factory())
        except Exception as exc:  # noqa: BLE001
            return probes.Probe(False, f"cannot list cameras: {type(exc).__name__}: {exc}")
    return probes.check_ingest(client, ids, max_age_s=max_age)


@click.command("sync-cameras")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
def sync_cameras_cmd(file: str, dry_run: bool) -> None:
    """Add or update the cameras listed in FILE (TOML [[camera]] tables: ward, name, url, fps, enabled).

    Meant for a secret mounted into a one-shot job: URLs go from the secret into the database, never to the
    output (cameras not in FILE are left alone).  One transaction: a bad entry changes nothing.
    """
    from areya.audit import Actor
    from areya.camera.url_policy import CameraUrlPolicy
    from areya.deploy.cameras import read_camera_file, sync_cameras

    specs = read_camera_file(file)
    app = get_context()
    factory = app.session_factory()
    session = factory()  # one transaction: committed, or rolled back on --dry-run / any error
    try:
        report = sync_cameras(
            session,
            specs,
            default_fps=app.settings.default_sample_fps,
            actor=Actor.cli(),
            url_policy=CameraUrlPolicy.from_settings(app.settings),
        )
        if dry_run:
            session.rollback()
        else:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    for ref, what in report:
        click.echo(f"{ref}: {what}")
    changed = sum(1 for _, what in report if what != "unchanged")
    note = " (dry run: nothing written)" if dry_run else ""
    click.echo(f"{len(specs)} camera(s) in {file}: {changed} change(s){note}")
