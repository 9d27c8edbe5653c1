"""Findings of the security review of a running ``areya demo`` (docs/security.md), each with the test that failed
before its fix: token expiry and revocation, the session idle timeout."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from web_helpers import World, login

from areya import admin
from areya.db.models import ApiToken, AuditEvent, User, WebSession
from areya.db.types import utcnow
from areya.webapp.tokens import create_token

COOKIE = "areya_session"


def _settings(world: World, **changes: object) -> None:
    services = world.app.extensions["areya"]
    services.settings = services.settings.replace(**changes)


def _token(world: World, username: str, name: str = "review") -> tuple[int, dict[str, str]]:
    with world.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        row, secret = create_token(s, user, name)
        s.commit()
        return row.id, {"Authorization": f"Bearer {secret}"}


def _me(world: World, headers: dict[str, str]) -> int:
    return world.app.test_client().get("/api/me", headers=headers).status_code


# --------------------------------------------------------------------------- tokens expire, die with the password


def test_a_token_expires_after_api_token_days(world: World) -> None:
    token_id, headers = _token(world, "doctor")
    assert _me(world, headers) == 200
    with world.session() as s:
        s.get(ApiToken, token_id).created_at = utcnow() - timedelta(days=91)
        s.commit()
    assert _me(world, headers) == 401  # 90 days by default
    _settings(world, api_token_days=365)
    assert _me(world, headers) == 200
    _settings(world, api_token_days=30)
    assert _me(world, headers) == 401
    client, _ = login(world.app, "doctor")
    assert "expired" in client.get("/account").get_data(as_text=True)


def test_a_password_change_revokes_the_users_tokens(world: World) -> None:
    _, headers = _token(world, "victim")
    assert _me(world, headers) == 200
    client, csrf = login(world.app, "admin")
    changed = client.post(
        f"/admin/users/{world.ids['victim_id']}/password",
        data={"csrf_token": csrf, "password": "a-brand-new-passphrase-7", "password2": "a-brand-new-passphrase-7"},
    )
    assert changed.status_code == 302
    assert _me(world, headers) == 401
    with world.session() as s:
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "user.password"))
        assert event.detail["tokens_revoked"] == 2  # populate's victim-token and this one
        live = s.scalars(
            select(ApiToken).where(ApiToken.user_id == world.ids["victim_id"], ApiToken.revoked_at.is_(None))
        )
        assert list(live) == []


def test_a_deactivated_users_tokens_stay_dead_after_reactivation(world: World) -> None:
    _, headers = _token(world, "victim")
    with world.session() as s:
        admin.set_user_active(s, "victim", False)
        s.commit()
    assert _me(world, headers) == 401
    with world.session() as s:
        admin.set_user_active(s, "victim", True)
        s.commit()
    assert _me(world, headers) == 401
    _, fresh = _token(world, "victim", "after")
    assert _me(world, fresh) == 200


# --------------------------------------------------------------------------- session idle timeout


def _session_row(world: World, user: str) -> WebSession:
    with world.session() as s:
        return s.scalar(select(WebSession).where(WebSession.user_id == world.ids[f"user_{user}"]))


def _set_expiry(world: World, user: str, at: object) -> None:
    with world.session() as s:
        s.scalar(select(WebSession).where(WebSession.user_id == world.ids[f"user_{user}"])).expires_at = at
        s.commit()


def test_a_session_ends_after_session_idle_minutes_without_a_request(world: World) -> None:
    client, _ = login(world.app, "nurse")
    row = _session_row(world, "nurse")
    assert row.expires_at - row.created_at <= timedelta(minutes=31)  # 30 min idle by default, not 12 h
    ward = f"/wards/{world.ids['ward_id']}"
    _set_expiry(world, "nurse", utcnow() + timedelta(minutes=5))  # as if the last click was 25 min ago
    assert client.get(ward).status_code == 200
    pushed = _session_row(world, "nurse").expires_at - utcnow()
    assert timedelta(minutes=29) < pushed <= timedelta(minutes=30)  # a request keeps the session alive
    _set_expiry(world, "nurse", utcnow() - timedelta(seconds=1))  # 30 min without a request
    assert client.get(ward).status_code == 302  # to the login page
    assert client.get(f"/api/patients/{world.ids['patient_id']}").status_code == 401


def test_a_live_view_does_not_keep_an_idle_session_alive(world: World) -> None:
    world.app.extensions["areya"].options.update(sse_max_s=0.5, sse_poll_s=0.1)
    client, _ = login(world.app, "nurse")
    soon = utcnow() + timedelta(minutes=5)
    _set_expiry(world, "nurse", soon)
    stream = client.get(f"/events?ward={world.ids['ward_id']}")
    assert stream.status_code == 200
    stream.get_data()
    assert abs(_session_row(world, "nurse").expires_at - soon) < timedelta(seconds=1)


def test_no_idle_timeout_when_set_to_zero_and_never_past_twelve_hours(world: World) -> None:
    _settings(world, session_idle_minutes=0)
    client, _ = login(world.app, "nurse")
    row = _session_row(world, "nurse")
    assert row.expires_at - row.created_at == timedelta(hours=12)
    _settings(world, session_idle_minutes=30)
    with world.session() as s:  # 11 h 50 min after login: the idle deadline stops at the 12 h one
        found = s.scalar(select(WebSession).where(WebSession.user_id == world.ids["user_nurse"]))
        found.created_at = utcnow() - timedelta(hours=11, minutes=50)
        found.expires_at = utcnow() + timedelta(minutes=2)
        s.commit()
    assert client.get("/alerts").status_code == 200
    row = _session_row(world, "nurse")
    assert row.expires_at - row.created_at == timedelta(hours=12)


# --------------------------------------------------------------------------- SSRF through a saved camera URL


def _add_camera(world: World, url: str, name: str = "cam-new"):  # type: ignore[no-untyped-def]
    client, csrf = login(world.app, "admin")
    data = {"csrf_token": csrf, "ward_id": str(world.ids["ward_id"]), "name": name, "url": url, "fps": "2"}
    return client.post("/admin/cameras", data=data)


def _camera_count(world: World) -> int:
    from sqlalchemy import func

    from areya.db.models import Camera

    with world.session() as s:
        return int(s.scalar(select(func.count()).select_from(Camera)) or 0)


def _an_own_address() -> str:
    from areya.camera.url_policy import own_addresses

    found = sorted(str(a) for a in own_addresses() if not a.is_loopback and a.version == 4)
    return found[0] if found else "127.0.0.1"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/",
        "http://localhost/snap.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "rtsp://[::1]:554/s",
        "http://10.9.8.7/internal-api",  # a private address outside camera_allow_networks
        "OWN",  # this server's own interface address
    ],
)
def test_saving_a_camera_url_applies_the_url_policy(world: World, url: str) -> None:
    url = url.replace("OWN", f"http://{_an_own_address()}:5000/")
    before = _camera_count(world)
    page = _add_camera(world, url)
    assert page.status_code == 400, url
    assert "Areya does not open it" in page.get_data(as_text=True) or "camera_allow_networks" in page.get_data(
        as_text=True
    )
    assert _camera_count(world) == before


def test_a_camera_network_named_in_camera_allow_networks_is_saved(world: World) -> None:
    _settings(world, camera_allow_networks=("10.9.0.0/16",))
    assert _add_camera(world, "rtsp://viewer:pw@10.9.8.7:554/stream1").status_code == 302
    # a network entry does not open loopback or this server's own address: only an entry naming that address
    assert _add_camera(world, "http://127.0.0.1:8554/cam", "cam-lo").status_code == 400
    _settings(world, camera_allow_networks=("10.9.0.0/16", "127.0.0.1/32"))
    assert _add_camera(world, "http://127.0.0.1:8554/cam", "cam-lo").status_code == 302


@pytest.mark.parametrize(
    "url",
    [
        "synthetic:story=/etc/passwd",
        "synthetic:story=/nonexistent/story.toml",
        "synthetic:faces=/etc",
        "synthetic:faces=/nonexistent",
        "/etc/passwd",
        "/nonexistent/video.mp4",
        "file:///etc/hostname",
    ],
)
def test_no_file_paths_from_the_dashboard_and_no_existence_oracle(world: World, url: str) -> None:
    page = _add_camera(world, url)
    assert page.status_code == 400
    text = page.get_data(as_text=True)
    assert "not found" not in text and "No such file" not in text
    assert "packaged demo story" in text or "only under camera_media_dir" in text


def test_the_packaged_story_and_faces_can_be_saved_from_the_dashboard(world: World) -> None:
    from areya.camera.url_policy import PACKAGED_STORY

    assert _add_camera(world, f"synthetic:story={PACKAGED_STORY},seed=1").status_code == 302
    assert _add_camera(world, "synthetic:beds=2,faces=builtin", "cam-b").status_code == 302


def test_the_command_line_applies_the_network_policy_too(world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from areya.cli import cli

    env = {"AREYA_DATA_DIR": str(tmp_path), "AREYA_DATABASE_URL": world.app.extensions["areya"].settings.database_url}
    env["AREYA_SECRET_KEY"] = world.app.extensions["areya"].settings.secret_key
    runner = CliRunner()
    refused = runner.invoke(
        cli, ["camera", "add", "--ward", "ICU", "--name", "lo", "--url", "http://127.0.0.1:6379/"], env=env
    )
    assert refused.exit_code != 0 and "Areya does not open it" in refused.output
    env["AREYA_CAMERA_ALLOW_NETWORKS"] = "10.9.0.0/16"
    ok = runner.invoke(cli, ["camera", "add", "--ward", "ICU", "--name", "lan", "--url", "rtsp://10.9.8.7/s"], env=env)
    assert ok.exit_code == 0, ok.output


# --------------------------------------------------------------------------- weak passwords


@pytest.mark.parametrize(
    ("username", "role", "password", "why"),
    [
        ("bob", "nurse", "Summer2026!!", "a season or month with a year"),
        ("bob", "nurse", "Winter2025!!", "a season or month with a year"),
        ("root", "admin", "Admin2026!!!", "your name, role, a ward or 'areya'"),
        ("jane", "nurse", "Nurse2026!!!", "your name, role, a ward or 'areya'"),
        ("jane", "doctor", "Areya2026!!!", "your name, role, a ward or 'areya'"),
        ("jane", "doctor", "Icu2026!!!!!!", "your name, role, a ward or 'areya'"),  # ward ICU
        ("jane", "doctor", "Helicopter2026!", "a single word with a year"),
    ],
)
def test_one_word_with_a_year_is_refused_and_the_message_says_why(
    world: World, username: str, role: str, password: str, why: str
) -> None:
    from areya.errors import Invalid

    with world.session() as s, pytest.raises(Invalid, match="too weak") as refused:
        admin.add_user(s, username, role, password, ["ICU"] if role != "admin" else [])
    assert why in str(refused.value)
    client, csrf = login(world.app, "admin")
    page = client.post(
        f"/admin/users/{world.ids['victim_id']}/password",
        data={"csrf_token": csrf, "password": password, "password2": password},
    )
    assert page.status_code == 400 and "too weak" in page.get_data(as_text=True)


def test_phrases_still_pass(world: World) -> None:
    with world.session() as s:
        for i, password in enumerate(("correct-horse-battery-2026", "Pa55-ward-cam-9f3k", "plum tractor 2026 ledge")):
            admin.add_user(s, f"ok{i}", "nurse", password, ["ICU"])
        s.rollback()


# --------------------------------------------------------------------------- audit gaps


def _audit_rows(world: World, action: str) -> list[AuditEvent]:
    with world.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_a_live_ward_view_is_audited_per_patient_shown(world: World) -> None:
    world.app.extensions["areya"].options.update(sse_max_s=3.0, sse_poll_s=0.1)
    client, _ = login(world.app, "nurse")
    response = client.get(f"/events?ward={world.ids['ward_id']}", buffered=False)
    chunks = iter(response.response)
    buffer = ""
    while ": ready" not in buffer:
        buffer += next(chunks).decode()
    subscribed = _audit_rows(world, "events.subscribe")
    assert {e.patient_id for e in subscribed} == {world.ids["patient_id"], world.ids["patient2_id"]}
    with world.session() as s:  # a patient admitted into the ward while the view is open
        newcomer = admin.admit_patient(s, "MRN-LIVE", "Live Newcomer", "ICU/3").id
        s.commit()
    while "Live Newcomer" not in buffer:
        buffer += next(chunks).decode()
    response.close()
    [update] = [e for e in _audit_rows(world, "events.update") if e.patient_id == newcomer]
    assert update.detail["by"] == "web:nurse" and update.target == f"ward:{world.ids['ward_id']}"


def test_the_admin_patient_list_is_audited_per_patient(world: World) -> None:
    client, _ = login(world.app, "admin")
    assert client.get("/admin/patients").status_code == 200
    listed = {e.patient_id for e in _audit_rows(world, "patient.list")}
    assert {world.ids["patient_id"], world.ids["patient2_id"], world.ids["other_patient_id"]} <= listed
    assert None not in listed
    found = client.get("/admin/audit?patient=MRN002").get_data(as_text=True)
    assert "patient.list" in found


def test_refusals_are_audited(world: World) -> None:
    nurse, _ = login(world.app, "nurse")
    assert nurse.get(f"/wards/{world.ids['other_ward_id']}").status_code == 403
    admin_client, csrf = login(world.app, "admin")
    ack = admin_client.post(f"/alerts/{world.ids['alert_id']}/acknowledge", data={"csrf_token": csrf, "note": "x"})
    assert ack.status_code == 403
    api = world.app.test_client().post(
        f"/api/alerts/{world.ids['alert_id']}/acknowledge",
        json={"note": "x"},
        headers={"Authorization": f"Bearer {world.tokens['admin']}"},
    )
    assert api.status_code == 403
    rows = _audit_rows(world, "access.denied")
    assert [(e.detail["by"], e.detail["method"], e.target) for e in rows] == [
        ("web:nurse", "GET", f"/wards/{world.ids['other_ward_id']}"),
        ("web:admin", "POST", f"/alerts/{world.ids['alert_id']}/acknowledge"),
        ("api:admin", "POST", f"/api/alerts/{world.ids['alert_id']}/acknowledge"),
    ]
    assert all(e.detail["reason"] for e in rows) and rows[2].detail["token"]


# --------------------------------------------------------------------------- 500s on a malformed Host header


@pytest.mark.parametrize("host", ["a" * 2000, "x" * 64 + ".example", "a" * 300 + ".example:5000"])
@pytest.mark.parametrize("who", [None, "nurse"])
def test_a_malformed_host_header_is_a_400_not_a_500(world: World, host: str, who: str | None) -> None:
    client = world.app.test_client() if who is None else login(world.app, who)[0]
    for path in (f"/wards/{world.ids['ward_id']}", "/login", "/api/alerts", "/no/such/page"):
        response = client.get(path, headers={"Host": host})
        assert response.status_code == 400, (path, response.status_code)
        assert host not in response.get_data(as_text=True)


# --------------------------------------------------------------------------- control characters through the API


@pytest.mark.parametrize("note", ["\u0000", "seen\u0000", "esc \u001b[31m red", "del \u007f", "c1 \u0085 next line"])
def test_the_json_api_refuses_control_characters_as_the_forms_do(world: World, note: str) -> None:
    from areya.db.models import Alert, AlertEvent

    headers = {"Authorization": f"Bearer {world.tokens['doctor']}"}
    api = world.app.test_client()
    url = f"/api/alerts/{world.ids['alert_id']}"
    for action in ("acknowledge", "resolve"):
        response = api.post(f"{url}/{action}", json={"note": note}, headers=headers)
        assert response.status_code == 400 and "control characters" in response.get_json()["error"]
    snooze = api.post(
        f"/api/patients/{world.ids['patient_id']}/snooze", json={"minutes": 30, "reason": note}, headers=headers
    )
    assert snooze.status_code == 400
    with world.session() as s:
        assert s.get(Alert, world.ids["alert_id"]).state == "firing"
        notes = [e.note or "" for e in s.scalars(select(AlertEvent))]
        assert not any("\u0000" in n or "\u001b" in n for n in notes)
    client, csrf = login(world.app, "doctor")
    form = client.post(f"/alerts/{world.ids['alert_id']}/acknowledge", data={"csrf_token": csrf, "note": note})
    assert form.status_code == 400


def test_the_json_api_keeps_tabs_and_line_breaks(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['doctor']}"}
    done = world.app.test_client().post(
        f"/api/alerts/{world.ids['alert_id']}/acknowledge", json={"note": "seen\n\tcalm now"}, headers=headers
    )
    assert done.status_code == 200 and done.get_json()["note"] == "seen\n\tcalm now"
