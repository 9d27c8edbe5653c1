"""Issue 11, items 8-14: API token use audited with the token (and its issuer), password and secret-key rules, the
camera test's SSRF policy, 400 (not 500) on malformed input, alert scope by the patient's current ward, audit rows
per patient for ward / inbox / snapshot views, no versions in the Server header, no bidi characters in names."""

from __future__ import annotations

import json
import re
import threading

import pytest
import redis
import requests
from sqlalchemy import select
from web_helpers import World, login
from werkzeug.serving import make_server

from areya import admin
from areya.config import ConfigError, load_settings
from areya.db.models import Alert, ApiToken, AuditEvent, Camera, User
from areya.errors import Invalid
from areya.webapp.probe_policy import ProbeRefused, check_probe_target
from areya.webapp.serving import QuietRequestHandler
from areya.webapp.tokens import create_token


def _events(world: World, action: str) -> list[AuditEvent]:
    with world.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


# --------------------------------------------------------------------------- item 8: tokens


def test_an_admin_cannot_issue_a_token_that_acts_for_someone_else(world: World) -> None:
    """The admin may not acknowledge a patient alert; a token for a doctor must not let them (security review)."""
    client, csrf = login(world.app, "admin")
    alert = f"/api/alerts/{world.ids['alert_id']}/acknowledge"
    own = {"Authorization": f"Bearer {world.tokens['admin']}"}
    assert world.app.test_client().post(alert, json={"note": "x"}, headers=own).status_code == 403
    with world.session() as s:
        doctor = s.scalar(select(User).where(User.username == "doctor"))
        doctor_id = doctor.id
    page = client.post(f"/admin/users/{doctor_id}/tokens", data={"csrf_token": csrf, "token_name": "pager"})
    assert page.status_code in (404, 405) and "areya_" not in page.get_data(as_text=True)
    with world.session() as s:  # nor in the library: the operation refuses an issuer other than the owner
        doctor = s.get(User, doctor_id)
        with pytest.raises(admin.AdminError, match="acts for the user who creates it"):
            create_token(s, doctor, "pager", actor=admin.Actor(world.ids["admin_id"], "web:admin"))
    page = client.get("/admin/users").get_data(as_text=True)
    assert "New token" not in page and "doctor-token" in page  # listed and revocable, not issued


def test_a_token_an_older_version_let_an_admin_issue_for_someone_else_is_refused(world: World) -> None:
    with world.session() as s:
        doctor = s.scalar(select(User).where(User.username == "doctor"))
        row, secret = create_token(s, doctor, "pager")
        row.issued_by_id = world.ids["admin_id"]  # what the old Users page stored
        s.commit()
    api = world.app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.get("/api/me", headers=headers).status_code == 401
    done = api.post(f"/api/alerts/{world.ids['alert_id']}/acknowledge", json={"note": "paged"}, headers=headers)
    assert done.status_code == 401
    with world.session() as s:
        assert s.get(Alert, world.ids["alert_id"]).state == "firing"


def test_users_create_and_revoke_their_own_tokens_only(world: World) -> None:
    client, csrf = login(world.app, "doctor")
    page = client.post("/account/tokens", data={"csrf_token": csrf, "token_name": "pager"})
    assert page.status_code == 200
    secret = re.search(r"(areya_[A-Za-z0-9_-]{20,})", page.get_data(as_text=True)).group(1)
    headers = {"Authorization": f"Bearer {secret}"}
    api = world.app.test_client()
    assert api.get("/api/me", headers=headers).get_json()["username"] == "doctor"
    done = api.post(f"/api/alerts/{world.ids['alert_id']}/acknowledge", json={"note": "paged"}, headers=headers)
    assert done.status_code == 200 and done.get_json()["acknowledged_by"] == world.ids["user_doctor"]
    [created] = [e for e in _events(world, "token.create") if e.detail.get("name") == "pager"]
    assert created.detail["by"] == "web:doctor" and "on_behalf_of" not in created.detail
    # another user's token is not the doctor's to revoke (reported as unknown, nothing changes)
    other = client.post(f"/account/tokens/{world.ids['token_id']}/revoke", data={"csrf_token": csrf})
    assert other.status_code == 404
    with world.session() as s:
        mine = s.scalar(select(ApiToken).where(ApiToken.name == "pager"))
        assert s.get(ApiToken, world.ids["token_id"]).revoked_at is None
    assert client.post(f"/account/tokens/{mine.id}/revoke", data={"csrf_token": csrf}).status_code == 302
    assert api.get("/api/me", headers=headers).status_code == 401


def test_token_use_is_audited_with_the_token(world: World) -> None:
    api = world.app.test_client()
    assert (
        api.get(
            f"/api/patients/{world.ids['patient_id']}", headers={"Authorization": f"Bearer {world.tokens['nurse']}"}
        ).status_code
        == 200
    )
    rows = [
        e
        for e in _events(world, "api.patient.view") + _events(world, "api.request")
        if e.detail.get("by") == "api:nurse"
    ]
    assert rows and all("token" in e.detail and "issued_by" not in e.detail for e in rows)
    assert all(e.detail["token"] for e in rows)


# --------------------------------------------------------------------------- item 9: passwords and secrets


@pytest.mark.parametrize(
    "password", ["12345678", "123456789012", "password1234", "qwertyuiopas", "Password123!", "aaaaaaaaaaaa", "short-1"]
)
def test_weak_passwords_refused(world: World, password: str) -> None:
    with world.session() as s, pytest.raises(Invalid):
        admin.add_user(s, "weakling", "nurse", password, ["ICU"])


def test_admin_page_refuses_a_weak_password(world: World) -> None:
    client, csrf = login(world.app, "admin")
    page = client.post(
        f"/admin/users/{world.ids['victim_id']}/password",
        data={"csrf_token": csrf, "password": "12345678", "password2": "12345678"},
    )
    assert page.status_code == 400 and "at least 12 characters" in page.get_data(as_text=True)


def test_example_secret_key_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="AREYA_SECRET_KEY"):
        load_settings(env={"AREYA_DATA_DIR": str(tmp_path), "AREYA_SECRET_KEY": "CHANGE-ME-at-least-16-characters"})


# --------------------------------------------------------------------------- item 10: SSRF


def _settings(world: World, **changes: object):  # type: ignore[no-untyped-def]
    return world.app.extensions["areya"].settings.replace(**changes)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/x",
        "http://2130706433:80/",
        "http://localhost/snap.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "rtsp://[::1]:554/s",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0:5000/",
    ],
)
def test_probe_refuses_loopback_link_local_and_metadata(world: World, url: str) -> None:
    with pytest.raises(ProbeRefused, match="loopback, link-local or reserved"):
        check_probe_target(url, _settings(world))


def test_probe_allow_list_and_private_lan(world: World) -> None:
    lan = _settings(world, camera_allow_networks=("10.0.0.0/8",))  # cameras live on the LAN: named explicitly
    check_probe_target("rtsp://viewer:pw@10.0.0.5:554/stream1", lan)
    with pytest.raises(ProbeRefused, match="camera_allow_networks"):
        check_probe_target("rtsp://viewer:pw@10.0.0.5:554/stream1", _settings(world))
    check_probe_target("http://127.0.0.1:8554/cam", _settings(world, camera_probe_allow="127.0.0.1/32"))
    with pytest.raises(ProbeRefused, match="camera_probe_schemes"):
        check_probe_target("http://10.0.0.5/cam", _settings(world, camera_probe_schemes=("rtsp",)))
    with pytest.raises(ProbeRefused, match="does not resolve"):
        check_probe_target("http://camera.invalid/x", _settings(world), resolve=lambda host: [])


def test_probe_files_only_under_media_dir_and_same_answer_for_missing_files(world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "outside.jpg"
    secret.write_bytes(b"\xff\xd8\xff")
    messages = set()
    for path in (str(secret), f"file://{secret}", str(tmp_path / "missing.jpg"), "/etc/passwd"):
        with pytest.raises(ProbeRefused) as refused:
            check_probe_target(path, _settings(world))
        messages.add(str(refused.value))
    assert len(messages) == 1  # existence of a file outside the media dir is not revealed
    media = tmp_path / "media"
    media.mkdir()
    check_probe_target(str(media / "clip.mp4"), _settings(world, camera_media_dir=str(media)))
    with pytest.raises(ProbeRefused):
        check_probe_target(str(media / ".." / "outside.jpg"), _settings(world, camera_media_dir=str(media)))


def test_camera_test_action_refuses_loopback(world: World) -> None:
    client, csrf = login(world.app, "admin")
    with world.session() as s:
        admin.update_camera(s, str(world.ids["spare_camera_id"]), source_url="http://127.0.0.1:1/snapshot.jpg")
        s.commit()
    page = client.post(f"/admin/cameras/{world.ids['spare_camera_id']}/test", data={"csrf_token": csrf})
    assert page.status_code == 400 and "test refused" in page.get_data(as_text=True)
    assert _events(world, "camera.test")[-1].detail["ok"] is False


# --------------------------------------------------------------------------- item 11: malformed input


def test_deeply_nested_json_and_lone_surrogates_are_400(world: World) -> None:
    api = world.app.test_client()
    headers = {"Authorization": f"Bearer {world.tokens['doctor']}", "Content-Type": "application/json"}
    deep = api.post(f"/api/alerts/{world.ids['alert_id']}/resolve", data="[" * 5000 + "]" * 5000, headers=headers)
    assert deep.status_code == 400 and "nested" in deep.get_json()["error"]
    for action in ("resolve", "acknowledge"):
        bad = api.post(f"/api/alerts/{world.ids['alert_id']}/{action}", data='{"note":"\\ud800"}', headers=headers)
        assert bad.status_code == 400 and "Unicode" in bad.get_json()["error"]
    snooze = api.post(
        f"/api/patients/{world.ids['patient_id']}/snooze",
        data='{"minutes": 30, "reason": "x\\udfff"}',
        headers={**headers, "Authorization": f"Bearer {world.tokens['nurse']}"},
    )
    assert snooze.status_code == 400


def test_malformed_ipv6_camera_url_is_a_form_error(world: World) -> None:
    client, csrf = login(world.app, "admin")
    page = client.post(
        "/admin/cameras",
        data={
            "csrf_token": csrf,
            "ward_id": str(world.ids["ward_id"]),
            "name": "cam-v6",
            "url": "http://[::1/x",
            "fps": "2",
        },
    )
    assert page.status_code == 400 and "malformed" in page.get_data(as_text=True)


# --------------------------------------------------------------------------- item 12: scope by current ward


def test_alert_follows_the_patient_to_the_new_ward(world: World) -> None:
    with world.session() as s:
        admin.move_patient(s, "MRN001", "ICU/3")  # a move inside the ward: still ICU
        s.commit()
    nurse, _ = login(world.app, "nurse")
    assert nurse.get(f"/api/alerts/{world.ids['alert_id']}").status_code == 200
    with world.session() as s:
        admin.discharge_patient(s, "MRN003")  # frees Surgery/1
        admin.move_patient(s, "MRN001", "Surgery/1")
        s.commit()
    for old_ward_user in ("nurse", "doctor"):
        client, csrf = login(world.app, old_ward_user)
        assert client.get(f"/api/alerts/{world.ids['alert_id']}").status_code == 403
        assert client.get(f"/alerts/{world.ids['alert_id']}").status_code == 403
        assert (
            client.post(
                f"/alerts/{world.ids['alert_id']}/resolve", data={"csrf_token": csrf, "note": "not mine"}
            ).status_code
            == 403
        )
    surgery, _ = login(world.app, "nurse2")
    assert surgery.get(f"/api/alerts/{world.ids['alert_id']}").status_code == 200


def test_alert_lists_follow_the_patient_to_the_new_ward(world: World) -> None:
    """A resolved alert keeps the ward it was raised in; once its patient moved, the lists (history, API) and the
    alert's page follow the patient, like the alert's own scope above."""
    alert_id = world.ids["alert_id"]
    doctor, csrf = login(world.app, "doctor")
    assert doctor.post(f"/alerts/{alert_id}/resolve", data={"csrf_token": csrf, "note": "settled"}).status_code == 302
    with world.session() as s:
        admin.discharge_patient(s, "MRN003")  # frees Surgery/1
        admin.move_patient(s, "MRN001", "Surgery/1")
        s.commit()
    link = f'/alerts/{alert_id}"'

    def listed(client: object) -> tuple[bool, bool]:
        page = client.get("/alerts/history").get_data(as_text=True)  # type: ignore[attr-defined]
        api = client.get("/api/alerts?state=all").get_json()["alerts"]  # type: ignore[attr-defined]
        return link in page, alert_id in {a["id"] for a in api}

    for old_ward_user in ("nurse", "doctor"):
        client, _ = login(world.app, old_ward_user)
        assert listed(client) == (False, False), old_ward_user
    surgery, _ = login(world.app, "nurse2")
    assert listed(surgery) == (True, True)
    assert surgery.get(f"/alerts/{alert_id}").status_code == 200
    admin_client, _ = login(world.app, "admin")
    assert listed(admin_client) == (True, True)


# --------------------------------------------------------------------------- item 13: audit gaps


def test_ward_inbox_history_and_snapshot_views_are_audited_per_patient(world: World, web_redis: redis.Redis) -> None:
    from areya.camera.health import snapshot_key

    nurse, _ = login(world.app, "nurse")
    assert nurse.get(f"/wards/{world.ids['ward_id']}").status_code == 200
    doctor, _ = login(world.app, "doctor")
    assert doctor.get("/alerts").status_code == 200
    assert doctor.get("/alerts/history").status_code == 200
    web_redis.set(snapshot_key(world.ids["camera_id"]), b"\xff\xd8\xff\xe0fake-jpeg", ex=60)
    admin_client, _ = login(world.app, "admin")
    assert admin_client.get(f"/admin/cameras/{world.ids['camera_id']}/snapshot.jpg").status_code == 200
    alice = world.ids["patient_id"]
    for action in ("ward.view", "alerts.view", "alerts.history", "camera.snapshot_view"):
        assert alice in {e.patient_id for e in _events(world, action)}, action
    page = admin_client.get("/admin/audit?patient=MRN001").get_data(as_text=True)
    for action in ("ward.view", "alerts.view", "alerts.history", "camera.snapshot_view"):
        assert action in page, action


# --------------------------------------------------------------------------- item 14: small disclosures


def test_server_header_names_no_versions(world: World) -> None:
    server = make_server("127.0.0.1", 0, world.app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        answer = requests.get(f"http://127.0.0.1:{server.server_port}/login", timeout=30)
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Server"] == "areya"
    assert "Werkzeug" not in json.dumps(dict(answer.headers)) and "Python" not in json.dumps(dict(answer.headers))


@pytest.mark.parametrize("name", ["Alice\u202eelpmaxE", "Bob\u2066x\u2069", "Eve\u200bInvisible", "Zed\u2028Line"])
def test_bidi_and_invisible_characters_refused_in_names(world: World, name: str) -> None:
    with world.session() as s:
        with pytest.raises(Invalid, match="text-direction"):
            admin.admit_patient(s, "MRN900", name, None)
        with pytest.raises(Invalid, match="text-direction"):
            admin.add_ward(s, name)
        with pytest.raises(Invalid, match="text-direction"):
            admin.add_camera(s, "ICU", name, "rtsp://10.0.0.9/s", 2.0)
    client, csrf = login(world.app, "admin")
    page = client.post(
        "/admin/cameras",
        data={
            "csrf_token": csrf,
            "ward_id": str(world.ids["ward_id"]),
            "name": name,
            "url": "rtsp://10.0.0.9/s",
            "fps": "2",
        },
    )
    assert page.status_code == 400
    with world.session() as s:
        assert s.scalar(select(Camera).where(Camera.name == name)) is None
