"""Concurrent logins while the pipeline writes at full rate (issue 11, item 4): a real threaded server on loopback
over the test hospital's database, 40 simultaneous logins (right and wrong passwords, some rate-limited) while
another thread inserts observations as fast as it can -> no 5xx, and every attempt is in the audit log.

(`bench/bench_web_concurrency.py` prints the same run's figures at a chosen scale.)"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from web_helpers import CSRF_RE, PASSWORD, World
from werkzeug.serving import make_server

from areya.db.models import AuditEvent
from areya.db.types import utcnow
from areya.worker.store import write_observations

pytestmark = pytest.mark.postgres

GOOD = ("nurse", "doctor", "admin", "nurse2")  # right passwords
THREADS = 40
AUDIT = {302: "auth.login", 401: "auth.login_failed", 429: "auth.login_rate_limited"}


def observation_rows(world: World, n: int) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {
            "patient_id": world.ids["patient_id"],
            "bed_id": world.ids["bed_id"],
            "camera_id": world.ids["camera_id"],
            "captured_at": now,
            "frame_id": f"load-{uuid.uuid4().hex}",
            "face_index": 0,
            "box_x": 0.1,
            "box_y": 0.1,
            "box_w": 0.2,
            "box_h": 0.2,
            "p_angry": 0.1,
            "p_happy": 0.1,
            "p_relaxed": 0.7,
            "p_sad": 0.1,
            "probs7": [1 / 7] * 7,
            "label4": "relaxed",
            "label7": "neutral",
            "confidence4": 0.7,
            "model_version": "load-test",
        }
        for _ in range(n)
    ]


def attempt(base: str, username: str, password: str, start: threading.Barrier) -> int:
    browser = requests.Session()
    page = browser.get(f"{base}/login", timeout=120)
    match = CSRF_RE.search(page.text)
    assert match, page.status_code
    start.wait(timeout=120)
    answer = browser.post(
        f"{base}/login",
        data={"username": username, "password": password, "csrf_token": match.group(1)},
        allow_redirects=False,
        timeout=300,
    )
    return answer.status_code


def test_concurrent_logins_while_observations_are_written_are_all_answered_and_audited(world: World) -> None:
    stop = threading.Event()
    written: list[int] = []
    writer_errors: list[BaseException] = []

    def pipeline() -> None:  # the worker's write path, at full rate
        try:
            while not stop.is_set():
                written.append(write_observations(world.engine, observation_rows(world, 16)))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            writer_errors.append(exc)

    server = make_server("127.0.0.1", 0, world.app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{server.server_port}"
    # right passwords for four users (five each: attempts are counted while their password is checked, so no more
    # than login_rate_limit of one user's may be in flight at once); wrong ones for a fifth (its 6th failure
    # onwards is rate-limited) and strangers
    plans = [
        (GOOD[(i // 2) % len(GOOD)], PASSWORD)
        if i % 2 == 0
        else (("victim", "wrong-password") if i % 4 == 1 else (f"nobody{i}", "wrong-password"))
        for i in range(THREADS)
    ]
    start = threading.Barrier(THREADS)
    results: list[int | BaseException] = [0] * THREADS

    def run(i: int) -> None:
        try:
            results[i] = attempt(base, *plans[i], start)
        except BaseException as exc:  # noqa: BLE001
            results[i] = exc

    writer = threading.Thread(target=pipeline, daemon=True)
    writer.start()
    clients = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    try:
        for t in clients:
            t.start()
        for t in clients:
            t.join(timeout=600)
    finally:
        stop.set()
        writer.join(timeout=60)
        server.shutdown()
        serving.join(timeout=30)

    assert not [r for r in results if isinstance(r, BaseException)], results
    statuses = Counter(results)
    assert not [code for code in statuses if int(code) >= 500], statuses  # type: ignore[call-overload]
    assert set(statuses) <= set(AUDIT), statuses
    assert statuses[302] == THREADS // 2  # every right password got in
    assert not writer_errors, writer_errors
    assert sum(written) > 0  # the pipeline kept writing throughout
    with world.session() as s:
        audited = Counter(
            dict(
                s.execute(
                    select(AuditEvent.action, func.count())
                    .where(AuditEvent.action.in_(AUDIT.values()))
                    .group_by(AuditEvent.action)
                ).all()
            )
        )
    assert audited == Counter({AUDIT[code]: n for code, n in statuses.items()})  # every attempt, exactly once


def test_a_write_transaction_takes_the_write_lock_when_it_begins(engine: Any, db_backend: str) -> None:
    """What makes the above work on SQLite: begin_write -> BEGIN IMMEDIATE (waits its turn instead of failing)."""
    if db_backend != "sqlite":
        pytest.skip("BEGIN IMMEDIATE is SQLite's")
    from sqlalchemy import event

    from areya.db.engine import begin_write, create_session_factory, in_write_transaction

    begins: list[str] = []
    event.listen(
        engine,
        "before_cursor_execute",
        lambda _c, _cur, sql, *_a: begins.append(sql) if sql.startswith("BEGIN") else None,
    )
    factory = create_session_factory(engine)
    with factory() as session:
        session.execute(select(func.count()).select_from(AuditEvent))  # a view's reads: deferred
        assert not in_write_transaction(session)
        begin_write(session)  # ends the read, begins a write transaction
        assert in_write_transaction(session)
        session.commit()
    assert begins == ["BEGIN", "BEGIN IMMEDIATE"]


def test_the_error_handler_rolls_back_the_failed_transaction(world: World) -> None:
    """A request whose write fails (here a duplicate username; under load "database is locked") gets the error page,
    and the handler rolls its session back: what runs after it in the request (an after-request audit hook) can
    still use the session instead of failing with PendingRollbackError."""
    from flask import request
    from web_helpers import login

    from areya.db.models import User
    from areya.webapp.security import roles
    from areya.webapp.services import db

    app = world.app
    users_seen_after_the_error: list[int] = []

    @app.route("/test-failing-write")
    @roles("admin")
    def failing_write() -> str:
        db().add(User(username="nurse", role="nurse", password_hash="x"))  # the username is taken
        db().flush()
        return "unreachable"

    @app.after_request
    def audit_like_hook(response: Any) -> Any:
        if request.path == "/test-failing-write":
            users_seen_after_the_error.append(db().scalar(select(func.count()).select_from(User)) or 0)
        return response

    client, _ = login(app, "admin")
    answer = client.get("/test-failing-write")
    assert answer.status_code == 500 and "internal error" in answer.get_data(as_text=True)
    assert users_seen_after_the_error and users_seen_after_the_error[0] > 0
