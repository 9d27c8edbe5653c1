"""``areya ingest``, ``areya worker``, ``areya demo`` and pipeline inspection commands (heavy imports inside)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

import click

from areya.cli.context import get_context


def _logging(level: str, *, quiet: tuple[str, ...] = ()) -> None:
    from areya.logsetup import setup_logging

    setup_logging(level, quiet=quiet)


def _existing_redis(settings: object) -> object:
    """A client for the configured Redis without starting an embedded one (inspection commands)."""
    from areya.comms.redis_server import RedisServerError, connect

    try:
        return connect(settings, start_embedded=False)
    except RedisServerError as exc:
        raise click.ClickException(str(exc)) from None


def _on_signals(stop: Callable[[], None]) -> None:
    """SIGTERM and SIGINT stop the service cleanly (second Ctrl-C: default behaviour)."""

    def handler(signum: int, _frame: object) -> None:
        click.echo(f"\n{signal.Signals(signum).name}: stopping...", err=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        stop()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


@click.command("ingest")
@click.option("--camera", "camera_ids", type=int, multiple=True, help="Only this camera id (repeatable).")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Stop after SECONDS.")
@click.option(
    "--until-end",
    "until_end",
    is_flag=True,
    help="Exit once every camera is a video file that has ended (not looped): for scripts processing a "
    "recording. Exit code 1 if a video file could not be opened or read. Not for services: a restart "
    "would read the files again.",
)
def ingest(camera_ids: tuple[int, ...], duration: float | None, until_end: bool) -> None:
    """Read every enabled camera (or --camera ID) and append sampled frames to the Redis stream.

    Runs until stopped (SIGTERM, Ctrl-C or --duration), picking up camera changes from the database.
    With --until-end it exits once every camera it reads is a video file that played to its end (not looped:
    file:///path?loop=1 loops; live cameras and the synthetic ward never end); a video file that is missing or
    unreadable then ends in error (health 'error', exit code 1) instead of being retried.
    """
    from areya.camera.service import IngestService, load_cameras
    from areya.camera.url_policy import CameraUrlPolicy
    from areya.comms.redis_server import connect, stop_owned_servers

    app = get_context()
    settings = app.settings
    _logging(settings.log_level)
    if camera_ids:  # before connecting: an id that names no camera is the caller's mistake, not an idle ingestor
        missing = sorted(set(camera_ids) - {c.camera_id for c in load_cameras(app.session_factory(), list(camera_ids))})
        if missing:
            raise click.ClickException(f"unknown camera id {', '.join(map(str, missing))}")
    elif until_end and not load_cameras(app.session_factory()):  # nothing would ever end: say so, do not wait
        raise click.ClickException(
            "no enabled cameras to read (--until-end needs at least one): add one with "
            "'areya camera add' or enable one with 'areya camera enable WARD/CAMERA'; a video file plays once it "
            "has a bed zone ('areya zone set')"
        )
    client = connect(settings, socket_connect_timeout=2, socket_timeout=5)
    service = IngestService(
        client,
        stream=settings.frame_stream,
        maxlen=settings.stream_maxlen,
        jpeg_quality=settings.jpeg_quality,
        snapshot_ttl_s=settings.snapshot_ttl_s,
        session_factory=app.session_factory(),
        camera_ids=list(camera_ids) or None,
        url_policy=CameraUrlPolicy.from_settings(settings),
    )
    _on_signals(service.stop_event.set)
    try:
        service.run(duration=duration, until_ended=until_end)
    finally:
        stop_owned_servers()
    published = sum(r.published for r in service.readers.values())
    failed = service.files_ended_in_error()
    ended = ""
    if until_end and service.all_files_ended():
        ended = f" (every video file ended, {len(failed)} in error)" if failed else " (every video file ended)"
    click.echo(f"ingest stopped{ended}: {len(service.readers)} camera(s), {published} frame(s) published")
    for camera_id, error in sorted(failed.items()):
        click.echo(f"error: {service.readers[camera_id].camera.label} (id {camera_id}): {error}", err=True)
    if failed:
        raise SystemExit(1)


@click.command("worker")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Stop after SECONDS.")
@click.option("--detector", help="Face detector (default: the 'detector' setting).")
@click.option(
    "--detector-option",
    "detector_options",
    multiple=True,
    metavar="NAME=VALUE",
    help="Detector option, e.g. tiles=2 (repeatable; overrides the 'detector_options' setting).",
)
@click.option("--batch-size", type=click.IntRange(1, 1024), help="Frames per batch (default: worker_batch_size).")
@click.option("--consumer", help="Consumer name in the group (default: host-pid-random).")
def worker(
    duration: float | None,
    detector: str | None,
    detector_options: tuple[str, ...],
    batch_size: int | None,
    consumer: str | None,
) -> None:
    """Process frames from the stream into observations (run several for more throughput)."""
    from areya.cli.predict import cli_detector_options
    from areya.comms.redis_server import connect, stop_owned_servers
    from areya.detectors import settings_options
    from areya.worker import build_worker

    app = get_context()
    settings = app.settings
    if batch_size:
        settings = settings.replace(worker_batch_size=batch_size)
    _logging(settings.log_level)
    overrides = cli_detector_options(detector_options)
    try:
        settings_options(settings, detector, overrides)  # a bad name, option or value: before connecting
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        w = build_worker(
            settings,
            client=connect(settings),
            engine=app.engine,
            consumer=consumer,
            detector_name=detector,
            detector_options=overrides,
        )
    except FileNotFoundError as exc:
        raise click.ClickException(f"{exc} (train one with `areya train`, or set AREYA_EMOTION_MODEL)") from None
    except (ValueError, RuntimeError) as exc:  # a detector that cannot be made (model file missing, ...)
        raise click.ClickException(str(exc)) from None
    _on_signals(w.stop)
    timer = threading.Timer(duration, w.stop) if duration else None
    if timer:
        timer.daemon = True
        timer.start()
    w.warm_up()
    detector_name = getattr(w.detector, "name", settings.detector)
    click.echo(
        f"worker {w.name}: model {w.classifier.model_version}, detector {detector_name}, "
        f"batch {settings.worker_batch_size} frames / {settings.worker_batch_ms} ms"
    )
    try:
        w.run()
    finally:
        stop_owned_servers()
    processed = sum(v for k, v in w.metrics.totals.items() if k.startswith("areya_frames_processed_total"))
    click.echo(f"worker {w.name} stopped after {w.batches} batch(es), {int(processed)} frame(s)")


@click.command("demo")
@click.option(
    "--source",
    help="Camera source: file path, file:///path?loop=1, rtsp://..., http://..., device:N "
    "(default: the synthetic ward camera playing the demo story).",
)
@click.option(
    "--story",
    type=click.Path(exists=True, dir_okay=False),
    help="Story file (TOML) for the synthetic "
    "ward: beds, each patient's emotions over time, demo alert settings (default: areya/demo/story.toml).",
)
@click.option(
    "--faces",
    type=click.Path(exists=True, file_okay=False),
    help="Class-folder tree of face images "
    "(FER-2013 layout) for the synthetic camera (default: the demo face pack shipped with Areya).",
)
@click.option(
    "--beds",
    type=click.IntRange(1, 12),
    default=None,
    help="Beds in the demo ward: each cycles through the emotions instead of the story.",
)
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Stop after SECONDS.")
@click.option("--seed", type=int, default=0, show_default=True, help="Synthetic scenario seed.")
@click.option("--web/--no-web", default=True, show_default=True, help="Start the dashboard (if installed).")
@click.option("--scheduler/--no-scheduler", default=True, show_default=True, help="Start the alert scheduler.")
@click.option(
    "--reset-passwords",
    is_flag=True,
    help="New passwords for the demo users (else the ones kept in <data_dir>/demo-passwords.json).",
)
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Dashboard port (default: web_port).")
def demo(
    source: str | None,
    story: str | None,
    faces: str | None,
    beds: int | None,
    duration: float | None,
    seed: int,
    web: bool,
    scheduler: bool,
    reset_passwords: bool,
    port: int | None,
) -> None:
    """Everything on this machine: embedded Redis, SQLite, a demo ward and camera, ingest, worker, dashboard."""
    from areya.camera.story import StoryError
    from areya.demo import DemoError, run_demo

    app = get_context()
    _logging(app.settings.log_level, quiet=("werkzeug",))  # a line per dashboard request otherwise
    if source and (story or faces):
        raise click.UsageError("--story and --faces are for the synthetic camera, not --source")
    try:
        run_demo(
            app.settings,
            source=source,
            story=story,
            faces=faces,
            beds=beds,
            duration=duration,
            seed=seed,
            web=web,
            scheduler=scheduler,
            reset_passwords=reset_passwords,
            echo=click.echo,
            port=port,
        )
    except (FileNotFoundError, StoryError, DemoError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("demo stopped")


@click.command("synthetic-video")
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=30, show_default=True)
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=5, show_default=True)
@click.option("--beds", type=click.IntRange(1, 12), default=3, show_default=True)
@click.option(
    "--faces",
    type=click.Path(exists=True, file_okay=False),
    help="FER-layout face folders (default: the demo face pack).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--segment",
    type=click.FloatRange(min=0, min_open=True),
    default=10,
    show_default=True,
    help="Seconds each bed keeps one emotion.",
)
def synthetic_video(
    output: str, seconds: float, fps: float, beds: int, faces: str | None, seed: int, segment: float
) -> None:
    """Write the synthetic ward camera to a video file (.avi: MJPG, else mp4v) and print its ground truth."""
    from areya.camera.facepack import BUILTIN_FACES
    from areya.camera.synthetic import SyntheticWard

    folder = Path(output).expanduser().resolve().parent
    if not folder.is_dir():  # checked here: OpenCV's own writer prints a native stack of warnings first
        raise click.ClickException(f"cannot write video {output}: folder {folder} does not exist")
    try:
        ward = SyntheticWard(
            beds=beds, faces_dir=faces or BUILTIN_FACES, seed=seed, segment_s=segment, duration=max(seconds, segment)
        )
        n = ward.write_video(output, seconds, fps)
    except (OSError, ValueError) as exc:  # no faces in --faces, an unwritable file: one line, not a traceback
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {n} frames to {output}")
    assert ward.scenario is not None
    for seg in ward.scenario.segments:
        if seg.start < seconds:
            end = min(seg.end, seconds)
            click.echo(f"bed {seg.bed + 1}: {seg.start:6.1f}s - {end:6.1f}s  {seg.emotion or '(empty)'}")


@click.command("pipeline-metrics")
def pipeline_metrics() -> None:
    """Print the pipeline's Prometheus metrics (what the dashboard serves at /metrics)."""
    from areya.metrics import render_metrics

    settings = get_context().settings
    click.echo(render_metrics(_existing_redis(settings), settings), nl=False)  # type: ignore[arg-type]


@click.command("deadletters")
@click.option("--count", type=click.IntRange(1, 10_000), default=20, show_default=True)
def deadletters(count: int) -> None:
    """Show the latest frames the workers rejected, with their reasons."""
    from areya.worker.consumer import read_dead_letters

    settings = get_context().settings
    rows = read_dead_letters(_existing_redis(settings), settings.dead_letter_stream, count)  # type: ignore[arg-type]
    if not rows:
        click.echo("no dead letters")
    for row in rows:
        click.echo(
            f"{row['id']}  camera={row.get('f_cam', '?')}  deliveries={row.get('deliveries')}  "
            f"reason: {row.get('reason')}"
        )
