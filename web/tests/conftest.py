"""Browser tests: Playwright (Python) driving Debian's chromium against the dashboard served on 127.0.0.1 with a
real SQLite database and an embedded Redis. Skipped when playwright or /usr/bin/chromium is missing (.ci/run
installs chromium; never `playwright install`: it downloads browsers)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("AREYA_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
PASSWORD = "browser-test-1"

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None  # type: ignore[assignment]

BROWSER_MISSING = (
    f"browser tests need playwright and {CHROMIUM}"
    if sync_playwright is None or not os.access(CHROMIUM, os.X_OK)
    else ""
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this folder's tests cleanly when the browser is missing (a module-level skip in a conftest that
    pytest loads at start-up would be an error, not a skip)."""
    if not BROWSER_MISSING:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.skip(reason=BROWSER_MISSING))


@dataclass
class LiveServer:
    url: str
    settings: Any
    engine: Any
    redis: Any
    ids: dict[str, int] = field(default_factory=dict)

    def session(self) -> Any:
        from areya.db.engine import create_session_factory

        return create_session_factory(self.engine)()


def _seed(engine: Any) -> dict[str, int]:
    """Ward ICU (3 beds, a camera with zones for beds 1-2, patients in beds 1-2, last-hour observations) and
    users nurse/doctor/admin; bed 3 stays free for the admin test."""
    from datetime import timedelta

    from areya import admin
    from areya.db.engine import create_session_factory
    from areya.db.models import LABELS7, Observation
    from areya.db.types import utcnow

    now = utcnow()
    with create_session_factory(engine)() as s:
        ward = admin.add_ward(s, "ICU")
        beds = [admin.add_bed(s, "ICU", label) for label in ("1", "2", "3")]
        cam = admin.add_camera(s, "ICU", "cam-1", "rtsp://viewer:s3cret@10.0.0.5/stream1", 2.0)
        admin.set_zone(s, "ICU/cam-1", "ICU/1", 0.0, 0.0, 0.33, 1.0)
        admin.set_zone(s, "ICU/cam-1", "ICU/2", 0.34, 0.0, 0.66, 1.0)
        p1 = admin.admit_patient(s, "MRN001", "Alice Example", "ICU/1", at=now - timedelta(hours=2))
        p2 = admin.admit_patient(s, "MRN002", "Bob Example", "ICU/2", at=now - timedelta(hours=2))
        for role in ("nurse", "doctor", "admin"):
            admin.add_user(s, role, role, PASSWORD, [] if role == "admin" else ["ICU"])
        pattern = {p1.id: ["sad", "sad", "angry", "relaxed"], p2.id: ["happy", "relaxed", "happy", "happy"]}
        bed_of = {p1.id: beds[0].id, p2.id: beds[1].id}
        for minute in range(55, 0, -1):
            for pid, labels in pattern.items():
                for k in range(2):
                    label = labels[(minute + k) % len(labels)]
                    probs = {lab: 0.06 for lab in ("angry", "happy", "relaxed", "sad")}
                    probs[label] = 0.82
                    s.add(
                        Observation(
                            patient_id=pid,
                            bed_id=bed_of[pid],
                            camera_id=cam.id,
                            captured_at=now - timedelta(minutes=minute, seconds=20 * k),
                            frame_id=f"seed-{pid}-{minute}-{k}",
                            face_index=0,
                            box_x=0.1,
                            box_y=0.2,
                            box_w=0.1,
                            box_h=0.1,
                            p_angry=probs["angry"],
                            p_happy=probs["happy"],
                            p_relaxed=probs["relaxed"],
                            p_sad=probs["sad"],
                            probs7=[1 / len(LABELS7)] * len(LABELS7),
                            label4=label,
                            label7={"relaxed": "neutral"}.get(label, label),
                            confidence4=0.82,
                            model_version="seed",
                        )
                    )
        s.commit()
        return {
            "ward_id": ward.id,
            "bed1": beds[0].id,
            "bed2": beds[1].id,
            "bed3": beds[2].id,
            "camera_id": cam.id,
            "patient1": p1.id,
            "patient2": p2.id,
        }


@contextlib.contextmanager
def serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: Callable[[Any], dict[str, Any]]
) -> Iterator[LiveServer]:
    """The dashboard on 127.0.0.1 over a fresh migrated SQLite database that ``seed(engine)`` fills, with an
    embedded Redis; stopped at the end."""
    from werkzeug.serving import make_server

    from areya.comms.redis_server import EmbeddedRedis
    from areya.config import load_settings
    from areya.db.engine import create_db_engine
    from areya.db.migrate import upgrade
    from areya.webapp import create_app

    for name in list(os.environ):
        if name.startswith("AREYA_") and not name.startswith("AREYA_TEST_"):
            monkeypatch.delenv(name)
    settings = load_settings(env={"AREYA_DATA_DIR": str(tmp_path / "var")})
    server_redis = EmbeddedRedis(tmp_path / "redis").start()
    client = server_redis.client(socket_timeout=10)
    engine = create_db_engine(settings)
    upgrade(settings, engine=engine)
    ids = seed(engine)
    app = create_app(settings, engine=engine, redis_client=client, sse_max_s=120.0, sse_poll_s=1.0)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="dashboard", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{httpd.server_port}", settings, engine, client, ids)
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        engine.dispose()
        client.close()
        server_redis.stop()


@pytest.fixture
def live_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    with serve(tmp_path, monkeypatch, _seed) as server:
        yield server


@pytest.fixture
def station(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """The dashboard over the central station's fixture: 24 beds in 3 wards, every state (tests/web/station_world.py);
    ``ids["password"]``: the users' password."""
    import sys

    for folder in (REPO / "tests", REPO / "tests" / "web"):  # the fixture the Flask-client tests use too
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    from station_world import seed_station

    def seed(engine: Any) -> dict[str, Any]:
        from areya.db.engine import create_session_factory
        from areya.db.types import utcnow

        with create_session_factory(engine)() as s:
            return {**seed_station(s, utcnow(), PASSWORD), "password": PASSWORD}

    with serve(tmp_path, monkeypatch, seed) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB")
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    context.close()
    csp = [e for e in errors if "Content Security Policy" in e]
    assert not csp, f"CSP violations: {csp}"
    # HTTP statuses (a refused login is a 401) are asserted by the tests themselves; script errors are not allowed
    assert not [e for e in errors if not e.startswith("Failed to load resource")], f"browser errors: {errors}"


@pytest.fixture
def shot() -> Any:
    """shot(page, name): a full-page screenshot to artifacts/screenshots/<name>.png (git-ignored)."""

    def take(page: Page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def login_as(live_server: LiveServer) -> Any:
    """login_as(page, username): log in through the form."""

    def do(page: Page, username: str) -> None:
        page.goto(live_server.url + "/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("domcontentloaded")

    return do
