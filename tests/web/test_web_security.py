"""Dashboard security: every route x every role (+ anonymous), ward scoping, CSRF, cookies, headers, login limits."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlalchemy import func, select
from web_helpers import DEFAULT_IDS, PASSWORD, ROLES, World, csrf_of, login

from areya.db.models import AuditEvent

N, D, A = "nurse", "doctor", "admin"
CLINICAL = {N, D, A}
PUBLIC = "public"

# endpoint -> roles allowed (every endpoint of the app must be listed: a new route without an entry fails the test)
EXPECTED: dict[str, set[str] | str] = {
    "auth.login": PUBLIC,
    "auth.logout": CLINICAL,
    "auth.index": CLINICAL,
    "ward.wards": CLINICAL,
    "ward.station": CLINICAL,
    "ward.ward_view": CLINICAL,
    "alerts.inbox": CLINICAL,
    "alerts.history": CLINICAL,
    "alerts.detail": CLINICAL,
    "alerts.acknowledge": CLINICAL,  # acknowledge_roles default: nurses and doctors (admins: camera alerts)
    "alerts.resolve": CLINICAL,  # tried on a camera alert: any clinical role (patient alerts: resolve_roles)
    "alerts.snooze": {N, D},
    "patients.patient_page": CLINICAL,
    "patients.snooze": {N, D},
    "patients.bedside_role": {A},
    "admin.index": {A},
    "admin.wards": {A},
    "admin.add_beds": {A},
    "admin.remove_ward": {A},
    "admin.remove_bed": {A},
    "admin.patients": {A},
    "admin.move": {A},
    "admin.discharge": {A},
    "admin.cameras": {A},
    "admin.camera_edit": {A},
    "admin.camera_test": {A},
    "admin.camera_snapshot": {A},
    "admin.camera_delete": {A},
    "admin.zones": {A},
    "admin.zones_save": {A},
    "admin.users": {A},
    "admin.user_wards": {A},
    "admin.user_active": {A},
    "admin.user_password": {A},
    "admin.user_email": {A},
    "admin.user_role": {A},
    "account.account": CLINICAL,
    "account.token_create": CLINICAL,  # a user's own token only
    "account.token_revoke": CLINICAL,  # tried on another user's token: 404
    "admin.token_revoke": {A},
    "admin.rules": {A},
    "admin.rules_save": {A},
    "admin.audit_log": {A},
    "ops.ops": {A},
    "ops.metrics": {A},
    "events.stream": CLINICAL,
    "api.openapi": PUBLIC,
    "api.me": CLINICAL,
    "api.wards": CLINICAL,
    "api.ward_tiles": CLINICAL,
    "api.alerts": CLINICAL,
    "api.alert": CLINICAL,
    "api.acknowledge": CLINICAL,
    "api.resolve": CLINICAL,
    "api.patient": CLINICAL,
    "api.timeline": CLINICAL,
    "api.snooze": {N, D},
    "fhir.metadata": PUBLIC,  # FHIR clients read the CapabilityStatement before they authenticate
    "fhir.patient_read": CLINICAL,
    "fhir.patient_search": CLINICAL,
    "fhir.encounter_read": CLINICAL,
    "fhir.encounter_search": CLINICAL,
    "fhir.location_read": CLINICAL,
    "fhir.observation_search": CLINICAL,
    "fhir.flag_read": CLINICAL,
    "fhir.flag_search": CLINICAL,
}

# URL parameter values per endpoint (destructive routes get spare targets)
PARAMS: dict[str, dict[str, str]] = {
    "admin.remove_ward": {"ward_id": "spare_ward_id"},
    "admin.remove_bed": {"bed_id": "spare_bed_id"},
    "admin.move": {"patient_id": "spare_patient_id"},
    "admin.discharge": {"patient_id": "spare_patient_id"},
    "admin.camera_delete": {"camera_id": "spare_camera_id"},
    "admin.camera_test": {"camera_id": "spare_camera_id"},
    "admin.user_wards": {"user_id": "victim_id"},
    "admin.user_active": {"user_id": "victim_id"},
    "admin.user_password": {"user_id": "victim_id"},
    "admin.user_email": {"user_id": "victim_id"},
    "admin.user_role": {"user_id": "victim_id"},
    "alerts.acknowledge": {"alert_id": "camera_alert_id"},
    "alerts.resolve": {"alert_id": "camera_alert_id"},
    "api.acknowledge": {"alert_id": "camera_alert_id"},
    "api.resolve": {"alert_id": "camera_alert_id"},
}


def _routes(world: World) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every route of the app."""
    out = []
    for rule in world.app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        values = {}
        for arg in rule.arguments:
            key = PARAMS.get(rule.endpoint, {}).get(arg) or DEFAULT_IDS[arg]
            values[arg] = str(world.ids[key])
        url = rule.build(values, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, url))
    # destructive routes and logout last, so that they do not change what the others see
    return sorted(out, key=lambda r: (r[0] == "auth.logout", r[1] == "POST", r[0]))


def _request(client: FlaskClient, method: str, url: str, csrf: str | None) -> int:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    if method == "GET":
        return client.get(url, headers=headers).status_code
    if url.startswith("/api/") or url.endswith("/zones"):
        return client.post(url, json={}, headers=headers).status_code
    return client.post(url, data={"csrf_token": csrf or ""}, headers=headers).status_code


def test_every_endpoint_is_in_the_matrix(world: World) -> None:
    endpoints = {r.endpoint for r in world.app.url_map.iter_rules()} - {"static"}
    assert endpoints == set(EXPECTED), f"unlisted: {endpoints - set(EXPECTED)}, stale: {set(EXPECTED) - endpoints}"


def test_every_route_for_every_role_and_anonymous(world: World) -> None:
    routes = _routes(world)
    results: dict[tuple[str, str, str], int] = {}
    for role in (None, *ROLES):
        client, csrf = (world.app.test_client(), None) if role is None else login(world.app, role)
        for endpoint, method, url in routes:
            if role is None and method == "POST":
                csrf = csrf_of(client)  # anonymous with a valid session token: the login check must still refuse
            results[(str(role), endpoint, method)] = status = _request(client, method, url, csrf)
            allowed = EXPECTED[endpoint]
            where = f"{role or 'anonymous'} {method} {url} -> {status}"
            assert status < 500, where
            if allowed == PUBLIC:
                assert status not in (401, 403), where
            elif role is None:
                assert status in (302, 401), where
            elif role in allowed:
                assert status not in (401, 403), where
            else:
                assert status == 403, where
    assert len(results) == 4 * len(routes)


def test_anonymous_pages_redirect_to_login_with_next(world: World) -> None:
    response = world.app.test_client().get(f"/patients/{world.ids['patient_id']}")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/patients/")
    assert world.app.test_client().get("/api/alerts").status_code == 401


def test_wards_are_scoped_for_nurses_and_doctors(world: World) -> None:
    ids = world.ids
    for username in ("nurse", "doctor"):
        client, csrf = login(world.app, username)
        assert client.get(f"/wards/{ids['other_ward_id']}").status_code == 403
        assert client.get(f"/patients/{ids['other_patient_id']}").status_code == 403
        assert client.get(f"/alerts/{ids['other_alert_id']}").status_code == 403
        assert client.get(f"/events?ward={ids['other_ward_id']}").status_code == 403
        inbox = client.get("/alerts").get_data(as_text=True)
        assert "Alice Example" in inbox and "Carol Example" not in inbox
    client, _ = login(world.app, "nurse2")
    assert client.get(f"/patients/{ids['other_patient_id']}").status_code == 200
    assert client.get(f"/patients/{ids['patient_id']}").status_code == 403
    client, _ = login(world.app, "admin")
    assert client.get(f"/patients/{ids['other_patient_id']}").status_code == 200


def test_admin_cannot_acknowledge_patient_alerts_but_doctor_can(world: World) -> None:
    client, csrf = login(world.app, "admin")
    response = client.post(f"/alerts/{world.ids['alert_id']}/acknowledge", data={"csrf_token": csrf, "note": "x"})
    assert response.status_code == 403
    client, csrf = login(world.app, "doctor")
    response = client.post(f"/alerts/{world.ids['alert_id']}/acknowledge", data={"csrf_token": csrf, "note": "seen"})
    assert response.status_code == 302


def test_csrf_required_on_state_changes(world: World) -> None:
    client, csrf = login(world.app, "doctor")
    url = f"/alerts/{world.ids['alert_id']}/acknowledge"
    assert client.post(url, data={"note": "no token"}).status_code == 400
    assert client.post(url, data={"note": "bad", "csrf_token": "forged"}).status_code == 400
    evil = client.post(url, data={"csrf_token": csrf}, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 400
    with world.session() as s:
        from areya.db.models import Alert

        assert s.get(Alert, world.ids["alert_id"]).state == "firing"
    assert client.post(url, data={"note": "ok", "csrf_token": csrf}).status_code == 302
    # the login form itself needs the token too
    fresh = world.app.test_client()
    fresh.get("/login")
    assert fresh.post("/login", data={"username": "nurse", "password": PASSWORD}).status_code == 400


def test_session_cookie_flags_and_security_headers(world: World) -> None:
    client = world.app.test_client()
    token = csrf_of(client)
    response = client.post("/login", data={"username": "nurse", "password": PASSWORD, "csrf_token": token})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = client.get(f"/wards/{world.ids['ward_id']}")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script found"
    assert " style=" not in html and " on" + "click=" not in html

    world.app.config["SESSION_COOKIE_SECURE"] = True  # what create_app sets from session_cookie_secure
    client = world.app.test_client()
    token = csrf_of(client)
    response = client.post("/login", data={"username": "nurse", "password": PASSWORD, "csrf_token": token})
    assert "Secure" in response.headers["Set-Cookie"]


def test_login_rate_limited_per_ip_and_username(world: World) -> None:
    client = world.app.test_client()
    token = csrf_of(client)
    count, _window = world.app.extensions["areya"].settings.login_rate_limit_pair
    for _ in range(count):
        bad = client.post("/login", data={"username": "doctor", "password": "wrong-password", "csrf_token": token})
        assert bad.status_code == 401
        assert "unknown username or wrong password" in bad.get_data(as_text=True)
    blocked = client.post("/login", data={"username": "doctor", "password": PASSWORD, "csrf_token": token})
    assert blocked.status_code == 429
    assert "too many failed logins" in blocked.get_data(as_text=True)
    other = client.post("/login", data={"username": "nurse", "password": PASSWORD, "csrf_token": token})
    assert other.status_code == 302  # another username from the same IP is not blocked
    with world.session() as s:
        failed = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "auth.login_failed"))
    assert failed == count


def test_open_redirect_refused_and_deactivated_user_logged_out(world: World) -> None:
    client = world.app.test_client()
    token = csrf_of(client)
    response = client.post(
        "/login", data={"username": "victim", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/x"}
    )
    assert response.headers["Location"] == "/station"  # a nurse lands on the central station
    assert client.get("/alerts").status_code == 200
    admin_client, csrf = login(world.app, "admin")
    assert (
        admin_client.post(
            f"/admin/users/{world.ids['victim_id']}/active", data={"csrf_token": csrf, "active": "0"}
        ).status_code
        == 302
    )
    assert client.get("/alerts").status_code == 302  # session no longer valid
