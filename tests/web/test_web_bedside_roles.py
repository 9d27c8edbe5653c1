"""Bedside roles on the dashboard: the tile says someone else is at the bedside (from what the worker publishes in
Redis); an admin corrects who the patient is from the patient page (audited, refused to others); the zone editor
stores a bed's pillow region and shows it again."""

from __future__ import annotations

import html
import json
import re
import time

import redis
from sqlalchemy import select
from web_helpers import World, login

from areya.db.models import AuditEvent, BedZone
from areya.worker.bedside import BEDSIDE_TEXT, fix_key, publish_states

TRACKS = [
    {
        "track": 7,
        "role": "patient",
        "fixed": None,
        "first_at": 1.0,
        "last_at": 2.0,
        "frames": 3,
        "where": "at the pillow",
        "lying": True,
        "score": 3.5,
    },
    {
        "track": 8,
        "role": "other",
        "fixed": None,
        "first_at": 1.0,
        "last_at": 2.0,
        "frames": 3,
        "where": "at the left side of the bed",
        "lying": False,
        "score": -1.2,
    },
]


def test_the_tile_says_someone_else_is_at_the_bedside_for_a_minute(world: World, web_redis: redis.Redis) -> None:
    bed, bed2 = world.ids["bed_id"], world.ids["bed2_id"]
    publish_states(web_redis, {bed: {"tracks": TRACKS, "others_at": time.time() - 5, "others": 2}})
    publish_states(web_redis, {bed2: {"tracks": [], "others_at": time.time() - 90, "others": 1}})  # too long ago
    client = world.app.test_client()
    headers = {"Authorization": f"Bearer {world.tokens['nurse']}"}
    tiles = client.get(f"/api/wards/{world.ids['ward_id']}/tiles", headers=headers).get_json()["tiles"]
    by_bed = {t["bed_id"]: t for t in tiles}
    assert by_bed[bed]["bedside"] == {"others": 2, "text": BEDSIDE_TEXT}
    assert by_bed[bed2]["bedside"] == {"others": 0, "text": None}
    nurse, _ = login(world.app, "nurse")
    page = nurse.get(f"/wards/{world.ids['ward_id']}").get_data(as_text=True)
    assert page.count(BEDSIDE_TEXT) == 1


def test_an_admin_corrects_the_patient_role_from_the_patient_page_audited(world: World, web_redis: redis.Redis) -> None:
    bed, pid = world.ids["bed_id"], world.ids["patient_id"]
    publish_states(web_redis, {bed: {"tracks": TRACKS, "others_at": time.time(), "others": 1}})
    admin_client, csrf = login(world.app, "admin")
    page = admin_client.get(f"/patients/{pid}").get_data(as_text=True)
    assert "Faces at the bed" in page and "Not the patient" in page and "This is the patient" in page
    assert "at the left side of the bed" in page

    url = f"/patients/{pid}/bedside-role"
    done = admin_client.post(url, data={"csrf_token": csrf, "action": "patient", "track": "8"})
    assert done.status_code == 302
    fix = json.loads(web_redis.get(fix_key(bed)))
    assert (fix["action"], fix["track"], fix["by"]) == ("patient", 8, "web:admin")
    with world.session() as s:
        row = s.scalars(select(AuditEvent).where(AuditEvent.action == "bedside_role.correct")).one()
        assert (row.patient_id, row.target, row.detail["action"], row.detail["track"]) == (
            pid,
            f"bed:{bed}",
            "patient",
            8,
        )

    bad = admin_client.post(url, data={"csrf_token": csrf, "action": "maybe"})
    no_track = admin_client.post(url, data={"csrf_token": csrf, "action": "patient"})
    assert bad.status_code == 400 and no_track.status_code == 400
    assert json.loads(web_redis.get(fix_key(bed)))["n"] == fix["n"]  # nothing new stored

    nurse, nurse_csrf = login(world.app, "nurse")
    assert "Faces at the bed" not in nurse.get(f"/patients/{pid}").get_data(as_text=True)
    assert nurse.post(url, data={"csrf_token": nurse_csrf, "action": "auto"}).status_code == 403
    assert json.loads(web_redis.get(fix_key(bed)))["n"] == fix["n"]
    with world.session() as s:
        assert len(s.scalars(select(AuditEvent).where(AuditEvent.action == "bedside_role.correct")).all()) == 1


def test_the_zone_editor_stores_and_shows_the_pillow_region(world: World) -> None:
    client, csrf = login(world.app, "admin")
    cam, bed = world.ids["camera_id"], world.ids["bed_id"]
    url = f"/admin/cameras/{cam}/zones"
    head = {"x0": 0.05, "y0": 0.1, "x1": 0.25, "y1": 0.3}
    zones = [{"bed_id": bed, "x0": 0.0, "y0": 0.1, "x1": 0.3, "y1": 0.9, "head": head}]
    saved = client.post(url, json={"zones": zones}, headers={"X-CSRF-Token": csrf}).get_json()
    assert saved["ok"] and saved["zones"][0]["head"] == head
    shown = re.search(r"data-zones='([^']*)'", client.get(url).get_data(as_text=True))
    assert shown is not None and json.loads(html.unescape(shown.group(1)))[0]["head"] == head
    outside = [{**zones[0], "head": {"x0": 0.2, "y0": 0.1, "x1": 0.5, "y1": 0.3}}]
    refused = client.post(url, json={"zones": outside}, headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 400 and "inside the bed zone" in refused.get_json()["error"]
    malformed = [{**zones[0], "head": [0.05, 0.1, 0.25, 0.3]}]
    assert client.post(url, json={"zones": malformed}, headers={"X-CSRF-Token": csrf}).status_code == 400
    with world.session() as s:
        zone = s.scalar(select(BedZone).where(BedZone.camera_id == cam, BedZone.bed_id == bed))
        assert zone is not None and zone.head == (0.05, 0.1, 0.25, 0.3)  # the refused saves changed nothing
    cleared = client.post(url, json={"zones": [{**zones[0], "head": None}]}, headers={"X-CSRF-Token": csrf})
    assert cleared.get_json()["zones"][0]["head"] is None
