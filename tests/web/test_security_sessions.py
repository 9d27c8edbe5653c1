"""Issue 11, items 6 and 7: server-side sessions (a saved cookie dies with logout, a password change or a
deactivation, live views included) and an atomic login rate limit (per username and per client IP)."""

from __future__ import annotations

import json
import threading
from collections import Counter

from flask.testing import FlaskClient
from sqlalchemy import func, select
from web_helpers import PASSWORD, World, csrf_of, login

from areya import admin
from areya.db.models import AuditEvent, WebSession
from areya.webapp.security import LoginLimiter

COOKIE = "areya_session"


def _copy_cookie(world: World, client: FlaskClient) -> FlaskClient:
    """A second browser holding a copy of ``client``'s session cookie (what an attacker would have saved)."""
    saved = client.get_cookie(COOKIE)
    assert saved is not None
    thief = world.app.test_client()
    thief.set_cookie(COOKIE, saved.value)
    return thief


def test_saved_cookie_is_worthless_after_logout(world: World) -> None:
    client, csrf = login(world.app, "nurse")
    thief = _copy_cookie(world, client)
    ward = f"/wards/{world.ids['ward_id']}"
    assert thief.get(ward).status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 302
    assert thief.get(ward).status_code == 302  # to the login page
    api = thief.get(f"/api/patients/{world.ids['patient_id']}")
    assert api.status_code == 401 and "Alice" not in api.get_data(as_text=True)


def test_cookie_carries_no_password_hash_fragment(world: World) -> None:
    client, _ = login(world.app, "nurse")
    serializer = world.app.session_interface.get_signing_serializer(world.app)  # type: ignore[attr-defined]
    data = serializer.loads(client.get_cookie(COOKIE).value)
    assert set(data) <= {"sid", "_csrf", "_permanent", "_flashes"}, data
    assert "pwh" not in data and "uid" not in data


def test_password_change_and_deactivation_end_every_session(world: World) -> None:
    victim, _ = login(world.app, "victim")
    other_browser, _ = login(world.app, "victim")
    assert victim.get("/alerts").status_code == 200
    with world.session() as s:
        admin.set_password(s, "victim", "a-brand-new-passphrase-7")
        s.commit()
        assert (
            s.scalar(select(func.count()).select_from(WebSession).where(WebSession.user_id == world.ids["victim_id"]))
            == 0
        )
    assert victim.get("/alerts").status_code == 302
    assert other_browser.get("/alerts").status_code == 302
    again, _ = login(world.app, "victim", "a-brand-new-passphrase-7")
    with world.session() as s:
        admin.set_user_active(s, "victim", False)
        s.commit()
    assert again.get("/alerts").status_code == 302


def test_live_view_of_a_deactivated_user_stops(world: World) -> None:
    world.app.extensions["areya"].options.update(sse_max_s=20.0, sse_poll_s=0.2)
    client, _ = login(world.app, "victim")
    response = client.get(f"/events?ward={world.ids['ward_id']}", buffered=False)
    assert response.status_code == 200
    chunks = iter(response.response)
    buffer = ""
    while ": ready" not in buffer:
        buffer += next(chunks).decode()
    with world.session() as s:
        admin.set_user_active(s, "victim", False)
        s.commit()
    rest = "".join(chunk.decode() for chunk in chunks)  # the generator ends on its own
    response.close()
    assert "event: logout" in rest
    assert json.loads(rest.split("event: logout\ndata: ", 1)[1].split("\n", 1)[0])["reason"] == "session ended"


def test_logout_is_audited_and_deletes_the_session_row(world: World) -> None:
    client, csrf = login(world.app, "doctor")
    with world.session() as s:
        before = s.scalar(select(func.count()).select_from(WebSession))
    client.post("/logout", data={"csrf_token": csrf})
    with world.session() as s:
        assert s.scalar(select(func.count()).select_from(WebSession)) == before - 1
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "auth.logout")) == 1


# --------------------------------------------------------------------------- item 7: atomic login limit


def test_parallel_wrong_passwords_are_limited_atomically(world: World) -> None:
    """30 wrong-password logins for one user at once: exactly ``count`` are checked, the rest refused (429)."""
    count, _window = world.app.extensions["areya"].settings.login_rate_limit_pair
    threads = 30
    start = threading.Barrier(threads)
    results: list[int] = []
    lock = threading.Lock()

    def attempt() -> None:
        client = world.app.test_client()
        token = csrf_of(client)
        start.wait(timeout=60)
        status = client.post(
            "/login", data={"username": "doctor", "password": "wrong-password", "csrf_token": token}
        ).status_code
        with lock:
            results.append(status)

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=300)
    assert Counter(results) == Counter({401: count, 429: threads - count})
    with world.session() as s:
        failed = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "auth.login_failed"))
    assert failed == count


def test_limit_per_client_ip_across_usernames(world: World) -> None:
    limiter = LoginLimiter(2, 60, world.app.extensions["areya"].redis)
    ip_limit = limiter.max_ip_failures
    allowed = [limiter.reserve("10.1.1.1", f"user{i}") == 0 for i in range(ip_limit + 3)]
    assert allowed == [True] * ip_limit + [False] * 3  # one address, many usernames: refused after ip_limit
    assert limiter.reserve("10.1.1.2", "user0") == 0  # another address may still try user0 ...
    assert limiter.reserve("10.1.1.3", "user0") > 0  # ... until user0's own limit (2) is used up


def test_success_gives_its_reservation_back(world: World) -> None:
    for client_redis in (world.app.extensions["areya"].redis, None):
        limiter = LoginLimiter(2, 60, client_redis)
        for _ in range(10):  # right passwords never lock anybody out
            assert limiter.reserve("10.2.2.2", "nurse") == 0
            limiter.succeeded("10.2.2.2", "nurse")
        assert limiter.reserve("10.2.2.2", "nurse") == 0
        assert limiter.reserve("10.2.2.2", "nurse") == 0
        assert limiter.reserve("10.2.2.2", "nurse") > 0


def test_right_password_still_refused_once_limited(world: World) -> None:
    client = world.app.test_client()
    token = csrf_of(client)
    count, _ = world.app.extensions["areya"].settings.login_rate_limit_pair
    for _ in range(count):
        client.post("/login", data={"username": "nurse2", "password": "wrong-password", "csrf_token": token})
    ok = client.post("/login", data={"username": "nurse2", "password": PASSWORD, "csrf_token": token})
    assert ok.status_code == 429


def test_forwarded_for_honoured_only_from_configured_proxies(world: World) -> None:
    from web_helpers import make_world

    limiter = world.app.extensions["areya"].limiter

    def fail_from(app: object, forwarded: str) -> None:
        client = app.test_client()  # type: ignore[attr-defined]
        token = csrf_of(client)
        client.post(
            "/login",
            data={"username": "ghost", "password": "wrong-password", "csrf_token": token},
            headers={"X-Forwarded-For": forwarded},
        )

    fail_from(world.app, "203.0.113.7")  # not trusted: counted for the peer address
    assert limiter.retry_after("203.0.113.7", "nobody-else") == 0
    keys = [k.decode() for k in world.app.extensions["areya"].redis.keys("areya:web:login:ip:*")]
    assert keys == ["areya:web:login:ip:127.0.0.1"]
    settings = world.app.extensions["areya"].settings.replace(trusted_proxies=1)
    proxied = make_world(settings, world.ids, world.tokens, redis_client=world.app.extensions["areya"].redis)
    try:
        fail_from(proxied.app, "203.0.113.7")
    finally:
        proxied.engine.dispose()
    keys = sorted(k.decode() for k in world.app.extensions["areya"].redis.keys("areya:web:login:ip:*"))
    assert keys == ["areya:web:login:ip:127.0.0.1", "areya:web:login:ip:203.0.113.7"]
