"""Live-view caps (issue 11, item 3): /events streams per user and per web process, 429 over the limit, a closed
or finished stream frees its slot; `areya web --gunicorn` keeps the cap below its threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis
from flask import Flask
from sqlalchemy import func, select
from web_helpers import World, http_login, login, make_world, wait_until
from werkzeug.serving import make_server

from areya.config import ConfigError, Settings
from areya.db.models import AuditEvent


@pytest.fixture
def capped(world: World, web_redis: redis.Redis) -> Iterator[World]:
    """The test hospital served with at most 3 live views per process and 2 per user."""
    settings = world.app.extensions["areya"].settings.replace(sse_max_streams=3, sse_max_per_user=2)
    w = make_world(settings, world.ids, world.tokens, redis_client=web_redis, sse_max_s=30.0)
    yield w
    w.engine.dispose()


def _open(app: Flask, client: object, ward_id: int) -> object:
    response = client.get(f"/events?ward={ward_id}", buffered=False)  # type: ignore[attr-defined]
    return response


def test_streams_are_capped_per_user_and_per_process_and_a_closed_one_frees_its_slot(capped: World) -> None:
    # (the test client runs every stream in this thread: they are closed in the reverse order of opening)
    app, ward = capped.app, capped.ids["ward_id"]
    slots = app.extensions["areya"].streams
    nurse, _ = login(app, "nurse")
    first, second = _open(app, nurse, ward), _open(app, nurse, ward)
    assert first.status_code == second.status_code == 200
    refused = _open(app, nurse, ward)  # a third view of the same user (same or another tab)
    assert refused.status_code == 429 and refused.headers["Retry-After"].isdigit()
    assert "too many live views open for this user (at most 2)" in refused.get_json()["error"]
    assert slots.open_streams() == 2  # a refused request holds no slot

    doctor, _ = login(app, "doctor")
    third = _open(app, doctor, ward)
    assert third.status_code == 200
    full = _open(app, doctor, ward)  # the doctor is under the per-user cap, but the process is full
    assert full.status_code == 429 and "maximum of 3 live views" in full.get_json()["error"]
    assert doctor.get("/alerts").status_code == 200  # pages are still served: the cap keeps threads for them

    third.close()
    assert slots.open_streams() == 2
    second.close()  # one of the nurse's tabs goes away
    assert slots.open_streams(capped.ids["user_nurse"]) == 1
    again = _open(app, nurse, ward)
    assert again.status_code == 200
    again.close()
    first.close()
    assert slots.open_streams() == 0
    with capped.session() as s:
        refusals = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "events.refused"))
    assert refusals == 2


def test_a_client_that_goes_away_frees_its_slot_on_a_real_server(
    capped: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from areya.webapp.views import events

    monkeypatch.setattr(events, "KEEPALIVE_S", 0.2)  # the server notices a gone client at its next write
    slots = capped.app.extensions["areya"].streams
    server = make_server("127.0.0.1", 0, capped.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    url = f"{base}/events?ward={capped.ids['ward_id']}"
    try:
        browser = http_login(base, "nurse")
        views = [browser.get(url, stream=True, timeout=30) for _ in range(2)]
        assert [v.status_code for v in views] == [200, 200]
        over = browser.get(url, timeout=30)
        assert over.status_code == 429 and "at most 2" in over.json()["error"]
        for view in views:
            view.close()  # the tabs are closed: connections dropped
        assert wait_until(lambda: slots.open_streams() == 0)
        back = browser.get(url, stream=True, timeout=30)
        assert back.status_code == 200
        back.close()
    finally:
        server.shutdown()
        thread.join(timeout=30)


def test_a_stream_that_ends_frees_its_slot(capped: World) -> None:
    app = capped.app
    app.extensions["areya"].options["sse_max_s"] = 0.3
    nurse, _ = login(app, "nurse")
    for _ in range(3):  # more streams, one after the other, than the per-user cap
        response = _open(app, nurse, capped.ids["ward_id"])
        assert response.status_code == 200
        assert b"ready" in b"".join(response.response)  # runs to its end (sse_max_s)
        response.close()
    assert app.extensions["areya"].streams.open_streams() == 0


def test_the_caps_are_settings(settings: Settings) -> None:
    assert (settings.sse_max_streams, settings.sse_max_per_user) == (24, 4)
    with pytest.raises(ConfigError, match="AREYA_SSE_MAX_PER_USER: must not exceed sse_max_streams"):
        settings.replace(sse_max_streams=4, sse_max_per_user=5)
    with pytest.raises(ConfigError, match="AREYA_SSE_MAX_STREAMS"):
        settings.replace(sse_max_streams=0)


def test_gunicorn_keeps_the_caps_below_its_threads(settings: Settings) -> None:
    from areya.cli.web import stream_caps_below

    assert stream_caps_below(settings, 32) == {}  # the defaults (24 of 32) leave 8 threads free
    lowered = stream_caps_below(settings, 4)  # `areya web --gunicorn --threads 4`: 3 views, 1 thread free
    assert lowered == {"AREYA_SSE_MAX_STREAMS": "3", "AREYA_SSE_MAX_PER_USER": "3"}
    assert stream_caps_below(settings.replace(sse_max_streams=10, sse_max_per_user=2), 12) == {
        "AREYA_SSE_MAX_STREAMS": "9",
        "AREYA_SSE_MAX_PER_USER": "2",
    }
