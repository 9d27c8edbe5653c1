"""``areya demo``: the whole system on one machine, from one command.

Embedded Redis, a SQLite file under ``data_dir`` (migrated), a demo ward (beds,
patients, bed zones, an admin / nurse / doctor whose passwords are generated once per
data dir and printed at every start: :mod:`areya.demo.passwords`), a camera (by
default the synthetic ward playing the story in ``areya/demo/story.toml`` with faces
from the demo face pack ``areya/demo/assets/faces.npz``; or ``--source``), then the
ingestor and the worker (and the alert scheduler and web dashboard when those
packages are installed), until Ctrl-C or ``--duration``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import secrets
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from areya.camera.facepack import BUILTIN_FACES
from areya.demo.passwords import demo_passwords, passwords_path

log = logging.getLogger(__name__)

DEMO_WARD = "Demo ward"
DEMO_CAMERA = "Demo camera"
DEMO_USERS = (("admin", "admin"), ("nurse", "nurse"), ("doctor", "doctor"))
Rect = tuple[float, float, float, float]


@dataclass
class DemoWard:
    ward_id: int
    camera_id: int
    bed_ids: list[int]
    patient_ids: dict[int, int]  # bed index -> patient id (occupied beds only)
    passwords: dict[str, str] = field(default_factory=dict)  # username -> password (new or reset)


def strip_zones(beds: int) -> list[tuple[int, Rect]]:
    """Zones for an unknown scene: the frame cut into ``beds`` vertical strips."""
    return [(i, (i / beds, 0.0, (i + 1) / beds, 1.0)) for i in range(beds)]


def create_demo_ward(
    session: Any,
    *,
    source_url: str,
    beds: int = 3,
    zones: list[tuple[int, Rect]] | None = None,
    occupied: list[bool] | None = None,
    sample_fps: float = 2.0,
    ward_name: str = DEMO_WARD,
    camera_name: str = DEMO_CAMERA,
    users: bool = True,
    passwords: dict[str, str] | None = None,
    patient_names: list[str] | None = None,
) -> DemoWard:
    """Create (or refresh) the demo ward in ``session`` (the caller commits).

    Beds ``Bed 1..N``, a patient in each occupied bed (all by default), the camera with ``source_url``, a zone per
    bed (``zones``: (bed index, normalized rect); default vertical strips), and the demo users with new passwords.
    Running it again reuses what exists: the camera's URL is updated; the users get ``passwords`` (username ->
    password; a user whose password already is that one is left alone, so their sessions stay) or, without
    ``passwords``, new random ones.  ``patient_names``: names of newly admitted patients, bed by bed.
    """
    from sqlalchemy import select  # noqa: PLC0415

    from areya import admin  # noqa: PLC0415
    from areya.db.models import Bed, Camera, Ward  # noqa: PLC0415

    occupied = occupied if occupied is not None else [True] * beds
    if len(occupied) != beds:
        raise ValueError(f"occupied has {len(occupied)} entries for {beds} beds")
    zones = zones if zones is not None else strip_zones(beds)
    ward = session.scalar(select(Ward).where(Ward.name == ward_name)) or admin.add_ward(session, ward_name)
    bed_ids: list[int] = []
    patient_ids: dict[int, int] = {}
    for i in range(beds):
        label = f"Bed {i + 1}"
        bed = session.scalar(select(Bed).where(Bed.ward_id == ward.id, Bed.label == label))
        if bed is None:
            bed = admin.add_bed(session, ward_name, label)
        bed_ids.append(bed.id)
        occupant = admin.bed_occupant(session, bed)
        if occupant is None and occupied[i]:
            mrn = f"DEMO-{ward.id}-{i + 1}-{secrets.token_hex(2)}"
            name = patient_names[i] if patient_names and i < len(patient_names) else f"Demo patient {i + 1}"
            occupant = admin.admit_patient(session, mrn, name, f"{ward_name}/{label}")
        if occupant is not None and occupied[i]:
            patient_ids[i] = occupant.id
    camera = session.scalar(select(Camera).where(Camera.ward_id == ward.id, Camera.name == camera_name))
    ref = f"{ward_name}/{camera_name}"
    if camera is None:
        camera = admin.add_camera(session, ward_name, camera_name, source_url, sample_fps)
    else:
        camera = admin.update_camera(session, ref, source_url=source_url, sample_fps=sample_fps)
        admin.set_camera_enabled(session, ref, True)
    for existing in list(camera.zones):
        session.delete(existing)
    session.flush()
    for index, (x0, y0, x1, y1) in zones:
        admin.set_zone(session, ref, f"{ward_name}/Bed {index + 1}", x0, y0, x1, y1)
    given = passwords or {}
    chosen: dict[str, str] = {}
    if users:
        from areya.admin.users import verify_password  # noqa: PLC0415

        for username, role in DEMO_USERS:
            password = given.get(username) or secrets.token_urlsafe(12)
            try:
                user = admin.get_user(session, username)
                if not verify_password(user.password_hash, password):
                    admin.set_password(session, username, password)
            except admin.NotFound:
                admin.add_user(session, username, role, password, wards=[ward_name] if role != "admin" else [])
            chosen[username] = password
    return DemoWard(ward.id, camera.id, bed_ids, patient_ids, chosen)


# --------------------------------------------------------------------------- running everything


def synthetic_url(beds: int, faces: str | None = None, seed: int = 0, segment_s: float = 10.0) -> str:
    """The synthetic ward with ``beds`` beds cycling through the emotions (``faces``: a folder or ``builtin``)."""
    url = f"synthetic:beds={beds},seed={seed},segment={segment_s:g}"
    if faces:
        url += f",faces={_faces_option(faces)}"
    return url


def story_url(story_path: Path, faces: str | None = None, seed: int = 0) -> str:
    """The synthetic ward playing a story file (faces: the demo pack unless ``faces`` names a folder)."""
    url = f"synthetic:story={story_path.resolve()},seed={seed}"
    if faces:
        url += f",faces={_faces_option(faces)}"
    return url


def _faces_option(faces: str) -> str:
    from areya.camera.facepack import BUILTIN_FACES  # noqa: PLC0415

    return BUILTIN_FACES if faces == BUILTIN_FACES else str(Path(faces).resolve())


def demo_source_url(source: str) -> str:
    """A ``--source`` as a camera URL; video files are looped so the demo keeps running."""
    from areya.source_url import source_kind  # noqa: PLC0415

    if source_kind(source) != "file":
        return source
    if source.startswith("file:"):
        return source if "loop=" in source else source + ("&" if "?" in source else "?") + "loop=1"
    path = Path(source).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    return f"file://{path}?loop=1"


def _optional(module: str, attr: str) -> Callable[..., Any] | None:
    """An optional component's entry point, if that package is installed (scheduler, web app)."""
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


@dataclass
class DemoRun:
    """What :func:`run_demo` started (stop with :meth:`stop`)."""

    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    stoppers: list[Callable[[], None]] = field(default_factory=list)
    url: str | None = None

    def stop(self) -> None:
        self.stop_event.set()
        for stop in reversed(self.stoppers):
            with contextlib.suppress(Exception):
                stop()
        for thread in self.threads:
            thread.join(timeout=10)


def run_demo(
    settings: Any,
    *,
    source: str | None = None,
    faces: str | None = None,
    beds: int | None = None,
    story: str | Path | None = None,
    duration: float | None = None,
    seed: int = 0,
    classifier: Any = None,
    detector: Any = None,
    web: bool = True,
    scheduler: bool = True,
    reset_passwords: bool = False,
    control: DemoRun | None = None,
    echo: Callable[[str], None] = print,
    port: int | None = None,
) -> DemoWard:
    """Set everything up and run until Ctrl-C / SIGTERM or ``duration`` seconds; then stop it all in order.

    Camera: ``source``; else the synthetic ward playing ``story`` (default: the shipped story) unless ``beds`` is
    given without a story (then each bed cycles through the emotions).  Faces: ``faces`` folder, else the pack.
    ``control``: a :class:`DemoRun` the caller keeps, to stop the demo from another thread (``control.stop_event``)
    and to read the dashboard URL once it is up.  ``port``: the dashboard's port (default: ``web_port``); a port
    in use is a :class:`DemoError` before anything starts.  The dashboard may add video-file cameras under
    ``camera_media_dir``, by default ``<data_dir>/media`` in the demo.
    """
    from areya.camera.service import IngestService  # noqa: PLC0415
    from areya.camera.url_policy import CameraUrlPolicy  # noqa: PLC0415
    from areya.comms.redis_server import (  # noqa: PLC0415
        EmbeddedRedis,
        connect,
        is_embedded_url,
        stop_owned_servers,
    )
    from areya.db.engine import create_db_engine, create_session_factory, session_scope  # noqa: PLC0415
    from areya.db.migrate import upgrade  # noqa: PLC0415
    from areya.source_url import mask_source_url  # noqa: PLC0415
    from areya.worker import build_worker  # noqa: PLC0415

    settings = demo_settings(settings, port)
    if web:
        check_port_free(settings.web_host, settings.web_port)
    server = None
    if is_embedded_url(settings.redis_url):
        server = EmbeddedRedis(settings.redis_dir).start()
        echo(f"redis: embedded redis-server at {server.url}")
    run = control if control is not None else DemoRun()
    engine = create_db_engine(settings)
    try:
        upgrade(settings, engine=engine)
        echo(f"database: {settings.database_url} (migrated)")
        ward_story = None
        if source:
            url, beds = demo_source_url(source), beds or 3
        elif beds is None or story is not None:
            from areya.camera.story import load_story  # noqa: PLC0415

            ward_story = load_story(story)
            beds = len(ward_story.beds)
            url = story_url(ward_story.path or Path(str(story)), faces, seed)
        else:
            url = synthetic_url(beds, faces or BUILTIN_FACES, seed)
        zones = None
        if url.startswith("synthetic:"):
            zones = _synthetic_zones(url)
        elif source and beds != 1:
            echo(f"camera: {beds} beds as vertical strips of the image (adjust with `areya zone set`)")
        factory = create_session_factory(engine)
        passwords = demo_passwords(settings.data_dir, tuple(u for u, _ in DEMO_USERS), reset=reset_passwords)
        with session_scope(factory) as session:
            demo = create_demo_ward(
                session,
                source_url=url,
                beds=beds,
                zones=zones,
                sample_fps=settings.default_sample_fps,
                passwords=passwords,
                patient_names=[b.patient for b in ward_story.beds] if ward_story else None,
            )
            if ward_story is not None and ward_story.alerts:
                _demo_rule_override(session, settings, demo.ward_id, ward_story.alerts)
        echo(f"ward: {DEMO_WARD!r} with {beds} bed(s), camera {demo.camera_id}: {mask_source_url(url)}")
        if ward_story is not None:
            for line in describe_story(ward_story):
                echo(line)
        for username, password in demo.passwords.items():
            echo(f"user: {username:<7} password: {password}")
        echo(f"camera files: the dashboard may add video files under {settings.camera_media_dir}")
        echo(
            f"users: passwords kept in {passwords_path(settings.data_dir)} (0600); "
            "`areya demo --reset-passwords` makes new ones"
        )

        if classifier is None:
            classifier = _demo_classifier(settings, echo)
        client = connect(settings)
        ingest = IngestService(
            client,
            stream=settings.frame_stream,
            maxlen=settings.stream_maxlen,
            jpeg_quality=settings.jpeg_quality,
            snapshot_ttl_s=settings.snapshot_ttl_s,
            session_factory=factory,
            url_policy=CameraUrlPolicy.from_settings(settings),
        )
        worker = build_worker(settings, client=client, engine=engine, classifier=classifier, detector=detector)
        worker.warm_up()
        echo(f"worker: {worker.name} (model {worker.classifier.model_version})")
        _start(run, "ingest", ingest.run, ingest.stop)
        _start(run, "worker", worker.run, worker.stop)
        for wanted, name, starter in (
            (scheduler, "scheduler", lambda: _start_scheduler(run, settings, echo)),
            (web, "web", lambda: _start_web(run, settings, client, echo)),
        ):
            if not wanted:
                continue
            try:
                starter()
            except Exception as exc:  # noqa: BLE001 - an optional component must not take the demo down
                log.debug("%s failed to start", name, exc_info=True)
                echo(f"{name}: failed to start ({type(exc).__name__}: {exc}); the pipeline keeps running")
        _wait(run, duration)
    finally:
        run.stop()
        engine.dispose()
        stop_owned_servers()  # this process's leases (connect); a server it adopted stays for its other users
        if server is not None and server.owned:
            server.stop()
            echo("redis: stopped")
    return demo


class DemoError(ValueError):
    """The demo cannot start as asked (e.g. ``--faces DIR`` lacks faces the story shows); one line for the user."""


def demo_settings(settings: Any, port: int | None) -> Any:
    """The demo's settings: ``port`` for the dashboard when given, and ``camera_media_dir`` (where the dashboard
    may add video-file cameras) ``<data_dir>/media`` when not set, created."""
    changes: dict[str, Any] = {}
    if port is not None:
        changes["web_port"] = port
    if not settings.camera_media_dir:
        media = Path(settings.data_dir) / "media"
        media.mkdir(parents=True, exist_ok=True)
        changes["camera_media_dir"] = str(media)
    return settings.replace(**changes) if changes else settings


def check_port_free(host: str, port: int) -> None:
    """:class:`DemoError` when the dashboard's address is taken (another demo or dashboard running), said before
    the model loads, not after it."""
    import socket  # noqa: PLC0415

    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise DemoError(f"dashboard address {host}:{port}: {exc.strerror or exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the dashboard's server: only a listener counts
        try:
            probe.bind(address)
        except OSError:
            raise DemoError(
                f"port {port} on {host} is in use (another areya demo or dashboard?): stop it, or choose another "
                "port with `areya demo --port N`"
            ) from None


def _synthetic_zones(url: str) -> list[tuple[int, Rect]]:
    """The synthetic ward's bed zones, once its faces are known to cover every emotion its scenario shows (else
    :class:`DemoError` now, not a camera retrying forever in the background)."""
    from areya.camera.synthetic import ward_from_uri  # noqa: PLC0415

    try:
        ward = ward_from_uri(url)
        needed = {seg.emotion for seg in ward.scenario.segments if seg.emotion} if ward.scenario else set()
        missing = sorted(e for e in needed if not ward.library.files.get(e))
    except ValueError as exc:
        raise DemoError(str(exc)) from None
    if missing and (ward.library.faces_dir is not None or ward.library.pack is not None):
        where = ward.library.faces_dir or "the demo face pack"
        raise DemoError(
            f"no {', '.join(missing)} faces in {where} (the story shows them; FER layout: <dir>/<class>/*.png)"
        )
    return ward.zones()


def describe_story(story: Any) -> list[str]:
    """One line per bed: its patient and phases; one for the demo-tuned alert settings."""
    from areya.emotion.schemes import FER_TO_AREYA4  # noqa: PLC0415

    lines = []
    for index, bed in enumerate(story.beds, start=1):
        phases = ", then ".join(
            f"{FER_TO_AREYA4.get(p.emotion or '', p.emotion or 'empty')}" + (f" from {p.at:g} s" if p.at else "")
            for p in bed.phases
        )
        lines.append(f"story: Bed {index} {bed.patient}: {phases}")
    if story.alerts:
        lines.append(
            "story: demo ward alert settings (rule override): " + ", ".join(f"{k}={v}" for k, v in story.alerts.items())
        )
    return lines


def _demo_rule_override(session: Any, settings: Any, ward_id: int, values: dict[str, Any]) -> None:
    from areya.alerts.overrides import set_rule_override  # noqa: PLC0415
    from areya.alerts.rules import RuleParams  # noqa: PLC0415

    set_rule_override(session, values, ward_id=ward_id, base=RuleParams.from_settings(settings))


def _demo_classifier(settings: Any, echo: Callable[[str], None]) -> Any:
    from areya.worker import load_classifier  # noqa: PLC0415

    try:
        return load_classifier(settings)
    except FileNotFoundError as exc:
        from areya.emotion.inference import EmotionClassifier  # noqa: PLC0415

        echo(
            f"WARNING: {exc}; the demo runs an UNTRAINED network: its emotions are meaningless "
            "(train one with `areya train`)"
        )
        return EmotionClassifier.untrained()


def _start(run: DemoRun, name: str, target: Callable[[], Any], stop: Callable[[], None]) -> None:
    thread = threading.Thread(target=target, name=name, daemon=True)
    run.threads.append(thread)
    run.stoppers.append(stop)
    thread.start()


def _start_scheduler(run: DemoRun, settings: Any, echo: Callable[[str], None]) -> None:
    start = _optional("areya.alerts.scheduler", "start_scheduler")
    if start is None:
        echo("scheduler: not installed (areya.alerts.scheduler.start_scheduler missing): skipped")
        return
    handle = start(settings)
    stop = getattr(handle, "shutdown", None) or getattr(handle, "stop", None)
    if stop is not None:
        run.stoppers.append(stop)
    echo("scheduler: running")


def _start_web(run: DemoRun, settings: Any, client: Any, echo: Callable[[str], None]) -> None:
    create_app = _optional("areya.webapp", "create_app")
    if create_app is None:
        echo("web: not installed (areya.webapp.create_app missing): skipped")
        return
    from werkzeug.serving import make_server  # noqa: PLC0415

    try:
        app = create_app(settings, redis_client=client)
    except TypeError:
        app = create_app(settings)
    from areya.webapp.serving import QuietRequestHandler  # noqa: PLC0415

    server = make_server(
        settings.web_host, settings.web_port, app, threaded=True, request_handler=QuietRequestHandler
    )  # no Werkzeug/Python versions in the Server header
    _start(run, "web", server.serve_forever, server.shutdown)
    run.url = f"http://{settings.web_host}:{server.server_port}/"
    echo(f"dashboard: {run.url}")


def _wait(run: DemoRun, duration: float | None) -> None:
    """Block until Ctrl-C, SIGTERM, ``duration`` or a component thread dying."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: run.stop_event.set())
    deadline = time.monotonic() + duration if duration else None
    try:
        while not run.stop_event.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            if any(not t.is_alive() for t in run.threads):
                log.error(
                    "a demo component stopped unexpectedly: %s", [t.name for t in run.threads if not t.is_alive()]
                )
                break
            run.stop_event.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
