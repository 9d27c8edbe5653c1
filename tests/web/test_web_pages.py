"""Dashboard pages: ward tiles, patient timeline, alert inbox actions, admin forms (field errors, nothing
half-saved), zone editor saves, audit of views and changes."""

from __future__ import annotations

import re
from datetime import timedelta

import redis
from sqlalchemy import func, select
from web_helpers import World, add_observation, login

from areya.config import Settings
from areya.db.models import (
    Alert,
    AlertEvent,
    AlertSnooze,
    ApiToken,
    AuditEvent,
    Bed,
    BedZone,
    Camera,
    Patient,
    RuleOverride,
    User,
)
from areya.db.types import utcnow


def _audit_actions(world: World) -> list[tuple[str, int | None]]:
    with world.session() as s:
        return [(a, p) for a, p in s.execute(select(AuditEvent.action, AuditEvent.patient_id).order_by(AuditEvent.id))]


def _field_error(html: str, name: str) -> str:
    """The message shown next to field ``name`` (macros.input renders it right after the input)."""
    match = re.search(
        rf'name="{name}"[^>]*>\s*<span class="field-error" id="err-{name}" role="alert">([^<]+)</span>', html
    )
    assert match, f"no error next to {name}"
    return match.group(1)


def test_ward_view_tiles(world: World) -> None:
    # the session's test hospital may be older than the rule's window: give Alice a fresh window of sad readings
    with world.session() as s:
        for i in range(5):
            at = utcnow() - timedelta(seconds=50 - i)
            add_observation(s, world.ids["patient_id"], world.ids["bed_id"], "sad", at)
        s.commit()
    client, _ = login(world.app, "nurse")
    html = client.get(f"/wards/{world.ids['ward_id']}").get_data(as_text=True)
    tile1 = html[html.index(f'id="tile-{world.ids["bed_id"]}"') : html.index(f'id="tile-{world.ids["bed2_id"]}"')]
    assert "Alice Example" in tile1
    # one state in a nurse's words, the headline the negative emotion the alert is about, the evidence in readings
    assert 'data-state="attention"' in tile1 and "Needs attention — sad for " in tile1
    assert re.search(r'class="chip emo-sad">sad</span> sad in \d+ of \d+ readings over 5 min', tile1)
    assert 'class="chip emo-sad">sad</span> 80%' in tile1  # the latest reading: sad, 80 % confidence
    # the technical measure folded under "details"
    assert tile1.index("<summary>details</summary>") < tile1.index("Negative probability")
    assert "ALERT" in tile1 and "camera" in tile1
    assert tile1.count("<rect") > 10  # the last-hour trend has bars
    tile3 = html[html.index(f'id="tile-{world.ids["free_bed_id"]}"') :]
    assert "Empty bed" in tile3 and "no camera" in tile3
    viewed = {p for a, p in _audit_actions(world) if a == "ward.view"}  # one audit row per patient shown
    assert {world.ids["patient_id"], world.ids["patient2_id"]} <= viewed


def test_a_bed_whose_recent_faces_are_all_unclear_shows_face_not_clearly_visible(world: World) -> None:
    # Bob's face has been too poor to read for the last minute (dark, small, turned away): every reading is below
    # min_face_quality, and they look sad; Alice's faces of the same minute are read well
    now = utcnow()
    with world.session() as s:
        for i in range(30):
            at = now - timedelta(seconds=58 - 1.9 * i)
            bob = add_observation(s, world.ids["patient2_id"], world.ids["bed2_id"], "sad", at, confidence=0.7)
            bob.quality = 0.12
            alice = add_observation(s, world.ids["patient_id"], world.ids["bed_id"], "sad", at)
            alice.quality = 0.83
        camera_alert = s.get(Alert, world.ids["camera_alert_id"])  # the camera is back (else: "Camera offline")
        camera_alert.state, camera_alert.resolved_at, camera_alert.resolution = "resolved", now, "auto"
        s.commit()
    client, _ = login(world.app, "nurse")
    html = client.get(f"/wards/{world.ids['ward_id']}").get_data(as_text=True)
    tile1 = html[html.index(f'id="tile-{world.ids["bed_id"]}"') : html.index(f'id="tile-{world.ids["bed2_id"]}"')]
    tile2 = html[html.index(f'id="tile-{world.ids["bed2_id"]}"') : html.index(f'id="tile-{world.ids["free_bed_id"]}"')]
    assert 'data-state="unmonitored"' in tile2 and "Face not clearly visible — readings set aside" in tile2
    assert 'class="chip emo-sad"' not in tile2  # no emotion guess
    assert ">face not clearly visible</span>" in tile2  # the latest reading, set aside
    assert "30 readings set aside: face not clearly visible" in tile2  # what the alert rule's window leaves out
    assert "Face not clearly visible" not in tile1 and 'class="chip emo-sad">sad</span> sad in' in tile1
    assert 'class="chip emo-sad">sad</span> 80%' in tile1
    token = {"Authorization": f"Bearer {world.tokens['nurse']}"}
    tiles = client.get(f"/api/wards/{world.ids['ward_id']}/tiles", headers=token).get_json()["tiles"]
    by_bed = {t["bed_id"]: t for t in tiles}
    assert by_bed[world.ids["bed2_id"]]["face_unclear"] is True and by_bed[world.ids["bed_id"]]["face_unclear"] is False
    assert by_bed[world.ids["bed2_id"]]["quality"] == 0.12
    assert by_bed[world.ids["bed2_id"]]["window"]["set_aside"]["n"] == 30
    page = client.get(f"/patients/{world.ids['patient2_id']}").get_data(as_text=True)
    assert "face quality 12% (set aside: face not clearly visible)" in page
    assert "Face quality, last 5 min" in page and "mean 12% over 30 readings" in page
    threshold = round(100 * Settings().min_face_quality)  # the world's setting: the default
    assert f"30 set aside (below {threshold}%: face not clearly visible)" in page


def test_one_poor_reading_is_not_yet_a_face_not_clearly_visible(world: World) -> None:
    # a bed's faces turn poor only in the last 20 s: not "for a while" yet, the tile keeps the window's emotion
    now = utcnow()
    with world.session() as s:
        for i in range(10):
            obs = add_observation(
                s, world.ids["patient2_id"], world.ids["bed2_id"], "happy", now - timedelta(seconds=19 - 2 * i)
            )
            obs.quality = 0.1
        s.commit()
    client, _ = login(world.app, "nurse")
    html = client.get(f"/wards/{world.ids['ward_id']}").get_data(as_text=True)
    tile2 = html[html.index(f'id="tile-{world.ids["bed2_id"]}"') : html.index(f'id="tile-{world.ids["free_bed_id"]}"')]
    assert "Face not clearly visible</span>" not in tile2
    assert ">face not clearly visible</span>" in tile2  # the latest reading itself is set aside


def test_patient_page_timeline_and_7_class_detail(world: World) -> None:
    client, _ = login(world.app, "doctor")
    pid = world.ids["patient_id"]
    html = client.get(f"/patients/{pid}?range=1h").get_data(as_text=True)
    assert "Alice Example" in html and "ICU / 1" in html and "cam-1" in html
    assert "4-class emotion share per 1 min" in html and "7-class detail" in html
    assert "7-class emotion share" not in html
    assert "opened by test" in html  # alert history with its notes
    detail = client.get(f"/patients/{pid}?range=1h&detail=7").get_data(as_text=True)
    assert "7-class emotion share per 1 min" in detail
    assert ("patient.view", pid) in _audit_actions(world)


def test_inbox_orders_by_priority_and_acknowledge_with_note(world: World) -> None:
    client, csrf = login(world.app, "doctor")
    html = client.get("/alerts").get_data(as_text=True)
    # equal (medium) priority: the patient condition before the technical one for a clinician ...
    assert html.index(f'id="alert-{world.ids["alert_id"]}"') < html.index(f'id="alert-{world.ids["camera_alert_id"]}"')
    # ... the evidence in a clinician's words first, the technical measure folded under "details"
    assert "<dt>Seen</dt><dd>sad in 15 of 30 readings over 10 min</dd>" in html
    assert html.index("sad in 15 of 30 readings") < html.index("<summary>details</summary>")
    assert "Negative probability</dt><dd>70% (opens at 60%" in html and "of 30 observations in 10 min" in html
    assert "the beds this camera covers are not monitored" in html
    admin_client, _ = login(world.app, "admin")
    admin_html = admin_client.get("/alerts").get_data(as_text=True)  # technical conditions go to admins first
    assert admin_html.index(f'id="alert-{world.ids["camera_alert_id"]}"') < admin_html.index(
        f'id="alert-{world.ids["alert_id"]}"'
    )
    aid = world.ids["alert_id"]
    response = client.post(f"/alerts/{aid}/acknowledge", data={"csrf_token": csrf, "note": "talking with her"})
    assert response.status_code == 302
    with world.session() as s:
        alert = s.get(Alert, aid)
        assert alert.state == "acknowledged" and alert.acknowledged_by == world.ids["user_doctor"]
        events = s.scalars(select(AlertEvent).where(AlertEvent.alert_id == aid).order_by(AlertEvent.id)).all()
        assert events[-1].to_state == "acknowledged" and events[-1].note == "talking with her"
    assert ("alert.acknowledge", world.ids["patient_id"]) in _audit_actions(world)


def test_resolve_needs_a_note_and_nothing_changes_without_it(world: World) -> None:
    client, csrf = login(world.app, "doctor")
    aid = world.ids["alert_id"]
    response = client.post(f"/alerts/{aid}/resolve", data={"csrf_token": csrf, "note": "  ", "action": "resolve"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    card = html[html.index(f'id="alert-{aid}"') :]
    assert "is required" in card[: card.index("</article>")]
    with world.session() as s:
        assert s.get(Alert, aid).state == "firing"
    # the finding at the bedside is one of the offered answers, or none
    inbox = client.get("/alerts").get_data(as_text=True)
    card = inbox[inbox.index(f'id="alert-{aid}"') :]
    assert 'value="no_distress_seen"' in card[: card.index("</article>")]
    # and says what "no distress seen" does: the deployment's cool-down after it (24 h by default)
    hold = world.app.extensions["areya"].settings.negative_no_distress_cooldown_s // 3600
    assert f"raises no new alert for {hold} h" in card[: card.index("</article>")]
    response = client.post(
        f"/alerts/{aid}/resolve", data={"csrf_token": csrf, "note": "ok", "finding": "fine", "action": "resolve"}
    )
    assert response.status_code == 400
    with world.session() as s:
        assert s.get(Alert, aid).state == "firing"
    response = client.post(
        f"/alerts/{aid}/resolve",
        data={"csrf_token": csrf, "note": "settled after visit", "finding": "no_distress_seen"},
    )
    assert response.status_code == 302
    with world.session() as s:
        alert = s.get(Alert, aid)
        assert alert.state == "resolved" and alert.resolution == "manual" and alert.note == "settled after visit"
        assert alert.finding == "no_distress_seen"
    # a double submit changes nothing and says what already happened (no bare 409)
    again = client.post(f"/alerts/{aid}/resolve", data={"csrf_token": csrf, "note": "twice"}, follow_redirects=True)
    assert again.status_code == 200
    assert f"Alert {aid} was already resolved by doctor at" in again.get_data(as_text=True)
    ack = client.post(f"/alerts/{aid}/acknowledge", data={"csrf_token": csrf}, headers={"Accept": "application/json"})
    assert ack.status_code == 200 and ack.get_json()["already"] is True
    with world.session() as s:
        alert = s.get(Alert, aid)
        assert alert.note == "settled after visit" and alert.acknowledged_at is None


def test_nurse_snoozes_with_reason(world: World) -> None:
    client, csrf = login(world.app, "nurse")
    aid = world.ids["alert_id"]
    missing = client.post(f"/alerts/{aid}/snooze", data={"csrf_token": csrf, "minutes": "60", "reason": ""})
    assert missing.status_code == 400
    ok = client.post(f"/alerts/{aid}/snooze", data={"csrf_token": csrf, "minutes": "30", "reason": "family visit"})
    assert ok.status_code == 302
    with world.session() as s:
        snooze = s.scalars(select(AlertSnooze)).one()
        assert snooze.patient_id == world.ids["patient_id"] and snooze.reason == "family visit"
        assert snooze.created_by == world.ids["user_nurse"]
    html = client.get(f"/wards/{world.ids['ward_id']}").get_data(as_text=True)
    assert "alerts snoozed until" in html


def test_camera_url_is_stored_secret_and_shown_masked(world: World) -> None:
    client, csrf = login(world.app, "admin")
    page = client.get("/admin/cameras").get_data(as_text=True)
    assert "s3cret" not in page and "rtsp://viewer:***@10.0.0.5:554/..." in page
    response = client.post(
        "/admin/cameras",
        data={
            "csrf_token": csrf,
            "ward_id": str(world.ids["ward_id"]),
            "name": "cam-2",
            "url": "rtsp://a:topsecret@cam2/live",
            "fps": "2",
        },
    )
    assert response.status_code == 302
    edit = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "topsecret" not in edit and "rtsp://a:***@cam2/..." in edit
    with world.session() as s:
        assert s.scalar(select(Camera.source_url).where(Camera.name == "cam-2")) == "rtsp://a:topsecret@cam2/live"
    audit = client.get("/admin/audit?action=camera.").get_data(as_text=True)
    assert "camera.add" in audit and "topsecret" not in audit


def test_bad_camera_input_message_next_to_field_nothing_saved(world: World) -> None:
    client, csrf = login(world.app, "admin")
    with world.session() as s:
        before = s.scalar(select(func.count()).select_from(Camera))
    bad_url = client.post(
        "/admin/cameras",
        data={
            "csrf_token": csrf,
            "ward_id": str(world.ids["ward_id"]),
            "name": "cam-9",
            "url": "ftp://nope/x",
            "fps": "2",
        },
    )
    assert bad_url.status_code == 400
    assert "unsupported camera URL scheme" in _field_error(bad_url.get_data(as_text=True), "url")
    bad_fps = client.post(
        "/admin/cameras",
        data={
            "csrf_token": csrf,
            "ward_id": str(world.ids["ward_id"]),
            "name": "cam-9",
            "url": "rtsp://h/x",
            "fps": "fast",
        },
    )
    assert _field_error(bad_fps.get_data(as_text=True), "fps") == "sample fps must be a number"
    dup = client.post(
        "/admin/cameras",
        data={
            "csrf_token": csrf,
            "ward_id": str(world.ids["ward_id"]),
            "name": "cam-1",
            "url": "rtsp://h/x",
            "fps": "2",
        },
    )
    assert "already exists" in _field_error(dup.get_data(as_text=True), "name")
    with world.session() as s:
        assert s.scalar(select(func.count()).select_from(Camera)) == before


def test_admit_move_discharge_and_refusals(world: World) -> None:
    client, csrf = login(world.app, "admin")
    occupied = client.post(
        "/admin/patients",
        data={"csrf_token": csrf, "mrn": "MRN100", "display_name": "Eve New", "bed_id": str(world.ids["bed_id"])},
    )
    assert occupied.status_code == 400
    assert "occupied" in occupied.get_data(as_text=True)
    bad_mrn = client.post("/admin/patients", data={"csrf_token": csrf, "mrn": "no spaces", "display_name": "Eve"})
    assert "MRN" in _field_error(bad_mrn.get_data(as_text=True), "mrn")
    with world.session() as s:
        assert s.scalar(select(Patient).where(Patient.mrn == "MRN100")) is None  # nothing half-saved
    ok = client.post(
        "/admin/patients",
        data={"csrf_token": csrf, "mrn": "MRN100", "display_name": "Eve New", "bed_id": str(world.ids["free_bed_id"])},
    )
    assert ok.status_code == 302
    with world.session() as s:
        eve = s.scalar(select(Patient).where(Patient.mrn == "MRN100"))
        assert eve.current_assignment.bed_id == world.ids["free_bed_id"]
    moved = client.post(f"/admin/patients/{eve.id}/move", data={"csrf_token": csrf, "bed_id": str(world.ids["bed_id"])})
    assert moved.status_code == 400  # bed 1 is Alice's
    gone = client.post(f"/admin/patients/{world.ids['patient_id']}/discharge", data={"csrf_token": csrf})
    assert gone.status_code == 302
    with world.session() as s:
        alice = s.get(Patient, world.ids["patient_id"])
        assert alice.status == "discharged"
        assert s.get(Alert, world.ids["alert_id"]).state == "resolved"


def test_add_beds_all_or_nothing(world: World) -> None:
    client, csrf = login(world.app, "admin")
    response = client.post(
        "/admin/wards/beds", data={"csrf_token": csrf, "ward_id": str(world.ids["ward_id"]), "labels": "7 8 1"}
    )
    assert response.status_code == 400
    assert "already exists" in _field_error(response.get_data(as_text=True), "labels")
    with world.session() as s:
        assert s.scalar(select(Bed).where(Bed.label == "7")) is None
    ok = client.post(
        "/admin/wards/beds", data={"csrf_token": csrf, "ward_id": str(world.ids["ward_id"]), "labels": "7, 8"}
    )
    assert ok.status_code == 302


def test_zone_editor_saves_all_or_nothing(world: World) -> None:
    client, csrf = login(world.app, "admin")
    cam = world.ids["camera_id"]
    page = client.get(f"/admin/cameras/{cam}/zones").get_data(as_text=True)
    assert 'id="stage"' in page and "blank 16:9 canvas" in page  # no snapshot in Redis yet
    url = f"/admin/cameras/{cam}/zones"
    good = [
        {"bed_id": world.ids["bed_id"], "x0": 0.0, "y0": 0.1, "x1": 0.3, "y1": 0.9},
        {"bed_id": world.ids["free_bed_id"], "x0": 0.7, "y0": 0.1, "x1": 1.0, "y1": 0.9},
    ]
    response = client.post(url, json={"zones": good}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200 and response.get_json()["ok"]
    overlapping = good + [{"bed_id": world.ids["bed2_id"], "x0": 0.2, "y0": 0.2, "x1": 0.5, "y1": 0.5}]
    response = client.post(url, json={"zones": overlapping}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 409 and response.get_json()["index"] == 2
    bad = client.post(
        url,
        json={"zones": [{"bed_id": world.ids["other_bed_id"], "x0": 0, "y0": 0, "x1": 1, "y1": 1}]},
        headers={"X-CSRF-Token": csrf},
    )
    assert bad.status_code == 400
    no_csrf = client.post(url, json={"zones": []})
    assert no_csrf.status_code == 400
    with world.session() as s:
        zones = s.scalars(select(BedZone).where(BedZone.camera_id == cam).order_by(BedZone.x0)).all()
        assert [(z.bed_id, z.x0, z.x1) for z in zones] == [
            (world.ids["bed_id"], 0.0, 0.3),
            (world.ids["free_bed_id"], 0.7, 1.0),
        ]


def test_rule_thresholds_per_ward(world: World) -> None:
    client, csrf = login(world.app, "admin")
    wid = world.ids["ward_id"]
    bad = client.post(f"/admin/rules/{wid}", data={"csrf_token": csrf, "negative_open_share": "1.5"})
    assert bad.status_code == 400
    assert "must be a number in" in _field_error(bad.get_data(as_text=True), "negative_open_share")
    crossed = client.post(
        f"/admin/rules/{wid}", data={"csrf_token": csrf, "negative_open_share": "0.5", "negative_close_share": "0.7"}
    )
    assert crossed.status_code == 400 and "close share" in crossed.get_data(as_text=True)
    with world.session() as s:
        assert s.scalar(select(func.count()).select_from(RuleOverride)) == 0
    ok = client.post(
        f"/admin/rules/{wid}", data={"csrf_token": csrf, "negative_open_share": "0.7", "negative_min_obs": "10"}
    )
    assert ok.status_code == 302
    with world.session() as s:
        row = s.scalars(select(RuleOverride).where(RuleOverride.ward_id == wid)).one()
        assert row.settings == {"negative_open_share": 0.7, "negative_min_obs": 10}
    cleared = client.post(f"/admin/rules/{wid}", data={"csrf_token": csrf, "negative_open_share": "0.7"})
    assert cleared.status_code == 302
    with world.session() as s:
        assert s.scalars(select(RuleOverride).where(RuleOverride.ward_id == wid)).one().settings == {
            "negative_open_share": 0.7
        }


def test_users_and_tokens(world: World) -> None:
    client, csrf = login(world.app, "admin")
    mismatch = client.post(
        "/admin/users",
        data={
            "csrf_token": csrf,
            "username": "newdoc",
            "role": "doctor",
            "password": "long-enough-1",
            "password2": "different-2",
        },
    )
    assert _field_error(mismatch.get_data(as_text=True), "password2") == "the two passwords differ"
    short = client.post(
        "/admin/users",
        data={"csrf_token": csrf, "username": "newdoc", "role": "doctor", "password": "short", "password2": "short"},
    )
    assert "at least 12" in _field_error(short.get_data(as_text=True), "password")
    ok = client.post(
        "/admin/users",
        data={
            "csrf_token": csrf,
            "username": "newdoc",
            "role": "doctor",
            "password": "long-enough-1",
            "password2": "long-enough-1",
            "ward_ids": [str(world.ids["ward_id"])],
        },
    )
    assert ok.status_code == 302
    with world.session() as s:
        user = s.scalar(select(User).where(User.username == "newdoc"))
        assert user.password_hash.startswith("$argon2id$") and [w.name for w in user.wards] == ["ICU"]
    doc, doc_csrf = login(world.app, "newdoc", "long-enough-1")  # a token is made by the user it acts for
    page = doc.post("/account/tokens", data={"csrf_token": doc_csrf, "token_name": "ehr"})
    secret = re.search(r"(areya_[A-Za-z0-9_-]{20,})", page.get_data(as_text=True)).group(1)
    with world.session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
        assert secret not in row.token_hash and len(row.token_hash) == 64
    assert doc.get("/account").get_data(as_text=True).count(secret) == 0  # shown once only
    assert client.get("/admin/users").get_data(as_text=True).count(secret) == 0
    api = world.app.test_client().get("/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 200 and api.get_json()["username"] == "newdoc"


def test_camera_connection_test_reports_failure_without_the_secret(world: World) -> None:
    client, csrf = login(world.app, "admin")
    services = world.app.extensions["areya"]
    services.settings = services.settings.replace(camera_media_dir="/nonexistent")  # files may be tested there
    with world.session() as s:
        cam = s.get(Camera, world.ids["spare_camera_id"])
    response = client.post(f"/admin/cameras/{cam.id}/test", data={"csrf_token": csrf})
    assert response.status_code == 502
    assert "video file not found" in response.get_data(as_text=True)
    assert ("camera.test", None) in _audit_actions(world)


def test_ops_page_and_metrics(world: World, web_redis: redis.Redis) -> None:
    import time

    from areya.camera.health import publish_health
    from areya.metrics import Metrics

    publish_health(
        web_redis,
        world.ids["camera_id"],
        {"status": "online", "last_frame_at": time.time() - 3, "actual_fps": 1.9, "frames": 1234, "reconnects": 2},
    )
    metrics = Metrics(web_redis)
    metrics.inc("areya_frames_processed_total", 4321, worker="w1")
    metrics.set_gauge("areya_worker_last_batch_timestamp", time.time() - 5, worker="w1")
    assert metrics.flush()
    client, _ = login(world.app, "admin")
    html = client.get("/ops").get_data(as_text=True)
    assert "Frame queue" in html and "Redis is not reachable" not in html
    row = html[html.index("<td>cam-1</td>") :]
    row = row[: row.index("</tr>")]
    assert "online" in row and "1.9" in row and "1234" in row
    assert "4321" in html and "Worker w1" in html
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.content_type.startswith("text/plain")
    assert "areya_stream_length" in metrics.get_data(as_text=True)
    token = world.tokens["admin"]
    scraped = world.app.test_client().get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert scraped.status_code == 200
    nurse = world.tokens["nurse"]
    assert world.app.test_client().get("/metrics", headers={"Authorization": f"Bearer {nurse}"}).status_code == 403
