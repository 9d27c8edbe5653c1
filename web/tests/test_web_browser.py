"""The dashboard in a real browser (chromium): each role logs in; a nurse's tile updates live when an observation
arrives; a new alert appears live in the doctor's inbox and is acknowledged; an admin registers a camera, draws a
bed zone on its snapshot and admits a patient to the bed. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect
from sqlalchemy import select

from areya.db.models import Alert, BedAssignment, BedZone, Camera, Observation
from areya.db.types import utcnow


def test_each_role_logs_in_to_its_page(page: Page, live_server: Any, login_as: Any, shot: Any) -> None:
    page.goto(live_server.url + "/wards")
    expect(page).to_have_url(live_server.url + "/login?next=/wards")
    shot(page, "00-login")
    page.fill("input[name=username]", "nurse")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    expect(page.locator(".field-error")).to_have_text("unknown username or wrong password")
    for role, heading in (("nurse", "Central station"), ("doctor", "Open alerts"), ("admin", "Administration")):
        login_as(page, role)
        expect(page.locator("h1")).to_contain_text(heading)
        expect(page.locator(".who")).to_contain_text(role)
        shot(page, f"01-home-{role}")
        page.click("text=Log out")
        expect(page.locator("h1")).to_have_text("Log in to Areya")


def test_nurse_sees_tile_update_live(page: Page, live_server: Any, login_as: Any, shot: Any) -> None:
    login_as(page, "nurse")
    page.goto(live_server.url + f"/wards/{live_server.ids['ward_id']}")
    tile = page.locator(f"#tile-{live_server.ids['bed2']}")
    expect(tile).to_contain_text("Bob Example")
    expect(page.locator("#live-status")).to_have_text("Live")
    shot(page, "02-ward-before")
    assert "angry" not in tile.locator(".seen").inner_text()  # the latest reading, beside the window's headline
    with live_server.session() as s:
        s.add(
            Observation(
                patient_id=live_server.ids["patient2"],
                bed_id=live_server.ids["bed2"],
                camera_id=live_server.ids["camera_id"],
                captured_at=utcnow(),
                frame_id="live-1",
                face_index=0,
                box_x=0.4,
                box_y=0.2,
                box_w=0.1,
                box_h=0.1,
                p_angry=0.93,
                p_happy=0.02,
                p_relaxed=0.03,
                p_sad=0.02,
                probs7=[0.9, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01],
                label4="angry",
                label7="angry",
                confidence4=0.93,
                model_version="live",
            )
        )
        s.commit()
    expect(tile.locator(".seen .chip")).to_have_text("angry", timeout=20_000)
    expect(tile.locator(".seen")).to_contain_text("93%")
    expect(tile.locator(".seen time")).to_contain_text("s ago")
    shot(page, "03-ward-after-update")
    for name, size in (
        ("03b-ward-tablet", {"width": 820, "height": 1180}),
        ("03c-ward-wall-screen", {"width": 1920, "height": 1080}),
    ):
        page.set_viewport_size(size)
        shot(page, name)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.click("text=Alice Example")
    expect(page.locator("h1")).to_contain_text("Alice Example")
    page.click("text=Show 7-class detail")
    expect(page.locator("h3")).to_have_text("7-class detail")
    shot(page, "04-patient-page")


def test_alert_arrives_live_in_doctor_inbox_and_is_acknowledged(
    page: Page, live_server: Any, login_as: Any, shot: Any
) -> None:
    from areya.alerts.lifecycle import open_alert, take_notices
    from areya.notify.events import publish_events

    login_as(page, "doctor")
    expect(page.locator("#live-status")).to_have_text("Live")
    expect(page.locator("#no-alerts")).to_be_visible()
    with live_server.session() as s:  # what the scheduler does when the rule fires
        alert = open_alert(
            s,
            "negative_emotion",
            patient_id=live_server.ids["patient1"],
            ward_id=live_server.ids["ward_id"],
            evidence={
                "rule": "negative_emotion",
                "window_s": 600,
                "n_obs": 40,
                "share": 0.75,
                "open_share": 0.6,
                "counts": {"angry": 10, "happy": 2, "relaxed": 8, "sad": 20},
            },
            note="share 75% >= 60%",
        )
        s.commit()
        publish_events(live_server.redis, take_notices(s))
        alert_id = alert.id
    card = page.locator(f"#alert-{alert_id}")
    expect(card).to_be_visible(timeout=20_000)
    expect(card).to_contain_text("Sustained negative emotion")
    expect(card).to_contain_text("Alice Example")
    expect(page.locator("#alert-banner")).to_contain_text("New alert: Alice Example — Bed 1, ward ICU")
    assert int(page.evaluate("document.body.dataset.beeps || '0'")) >= 1  # the audible cue was played
    expect(page.locator("#alert-count")).to_have_text("1")
    shot(page, "05-inbox-new-alert")
    card.locator("form.ack input[name=note]").fill("Seen her, talking it through")
    card.locator("form.ack button").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Alert {alert_id} acknowledged")
    expect(page.locator(f"#alert-{alert_id} .state-pill")).to_have_text("acknowledged")
    shot(page, "06-inbox-acknowledged")
    with live_server.session() as s:
        row = s.get(Alert, alert_id)
        assert row.state == "acknowledged" and row.note == "Seen her, talking it through"


def test_admin_registers_camera_draws_zone_admits_patient(
    page: Page, live_server: Any, login_as: Any, shot: Any
) -> None:
    login_as(page, "admin")
    page.click("text=Cameras & zones")
    form = page.locator("#camera-form")
    form.locator("select[name=ward_id]").select_option(label="ICU")
    form.locator("input[name=name]").fill("cam-2")
    form.locator("input[name=url]").fill("ftp://bad")
    form.locator("button[type=submit]").click()
    expect(page.locator("#err-url")).to_contain_text("unsupported camera URL scheme")
    shot(page, "07-camera-bad-url")
    page.locator("#camera-form input[name=url]").fill("synthetic:beds=3,seed=2")
    page.locator("#camera-form button[type=submit]").click()
    expect(page.locator("h1")).to_have_text("Camera ICU/cam-2")
    page.click("#test-camera")
    expect(page.locator("#probe-result")).to_contain_text("connected to synthetic", timeout=60_000)
    expect(page.locator("img.snapshot")).to_be_visible()
    shot(page, "08-camera-tested")
    page.click("text=Edit bed zones")
    stage = page.locator("#stage img")
    expect(stage).to_be_visible()
    box = stage.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.70, box["y"] + box["height"] * 0.20)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.80, box["y"] + box["height"] * 0.50, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.95, box["y"] + box["height"] * 0.85, steps=5)
    page.mouse.up()
    expect(page.locator(".zone")).to_have_count(1)
    page.locator("#zone-list select").select_option(label="Bed 3")
    page.click("#save-zones")
    expect(page.locator("#zone-status")).to_have_text("Saved 1 zone(s).")
    shot(page, "09-zone-editor")
    with live_server.session() as s:
        cam = s.scalar(select(Camera).where(Camera.name == "cam-2"))
        zone = s.scalars(select(BedZone).where(BedZone.camera_id == cam.id)).one()
        assert zone.bed_id == live_server.ids["bed3"]
        assert 0.65 < zone.x0 < 0.75 and 0.9 < zone.x1 <= 0.96 and 0.15 < zone.y0 < 0.25 and 0.8 < zone.y1 < 0.9
    page.click("text=Patients")
    admit = page.locator("#admit-form")
    admit.locator("input[name=mrn]").fill("MRN777")
    admit.locator("input[name=display_name]").fill("Eve Newcomer")
    admit.locator("select[name=bed_id]").select_option(label="ICU/3")
    admit.locator("button[type=submit]").click()
    expect(page.locator(".flash-success")).to_contain_text("Eve Newcomer (MRN777) admitted to bed ICU/3")
    shot(page, "10-patients")
    with live_server.session() as s:
        stay = s.scalars(
            select(BedAssignment).where(BedAssignment.bed_id == live_server.ids["bed3"], BedAssignment.end_at.is_(None))
        ).one()
        assert stay.patient.mrn == "MRN777"
    for name, link in (
        ("11-admin-users", "Users"),
        ("12-admin-rules", "Rule thresholds"),
        ("13-admin-audit", "Audit log"),
        ("14-admin-wards", "Wards & beds"),
    ):
        page.locator(".subnav").get_by_text(link, exact=True).click()
        shot(page, name)
    page.goto(live_server.url + "/ops")
    expect(page.locator("h1")).to_have_text("Operations")
    shot(page, "15-ops")
    page.goto(live_server.url + f"/wards/{live_server.ids['ward_id']}")
    expect(page.locator(f"#tile-{live_server.ids['bed3']}")).to_contain_text("Eve Newcomer")
    shot(page, "16-ward-admin-view")
