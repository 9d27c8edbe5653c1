"""Bedside roles in a real browser (chromium): an admin draws a bed's pillow region in the zone editor, it is stored
with the zone and shown again, and dropped with "Default pillow"; an admin corrects who the patient is from the
patient page. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import json
import time
from typing import Any

from playwright.sync_api import Page, expect
from sqlalchemy import select

from areya.db.models import BedZone
from areya.worker.bedside import fix_key, publish_states


def drag_on_stage(page: Page, points: list[tuple[float, float]]) -> None:
    """Press at the first point of the zone editor's picture (shares of its width and height), move through the
    others, release."""
    box = page.locator("#stage").bounding_box()
    assert box is not None
    at = [(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=4)
    page.mouse.up()


def test_admin_draws_the_pillow_region_and_it_round_trips(
    page: Page, live_server: Any, login_as: Any, shot: Any
) -> None:
    login_as(page, "admin")
    page.goto(f"{live_server.url}/admin/cameras/{live_server.ids['camera_id']}/zones")
    expect(page.locator(".zone")).to_have_count(2)  # beds 1 and 2: x 0-0.33 and 0.34-0.66, full height
    first = page.locator("#zone-list li").nth(0)
    expect(first.locator(".pillow-coords")).to_contain_text("top of the zone (default)")
    first.locator("button[data-pillow]").click()
    drag_on_stage(page, [(0.08, 0.05), (0.2, 0.15), (0.25, 0.25)])
    expect(page.locator(".zone .pillow")).to_have_count(1)
    expect(page.locator(".zone")).to_have_count(2)  # the drag drew a pillow, not a new zone
    page.click("#save-zones")
    expect(page.locator("#zone-status")).to_have_text("Saved 2 zone(s).")
    shot(page, "20-zone-pillow")
    with live_server.session() as s:
        zone = s.scalar(select(BedZone).where(BedZone.bed_id == live_server.ids["bed1"]))
        assert zone is not None and zone.head is not None
        x0, y0, x1, y1 = zone.head
        assert 0.05 < x0 < 0.11 and 0.22 < x1 < 0.28 and 0.02 < y0 < 0.08 and 0.22 < y1 < 0.28
        other = s.scalar(select(BedZone).where(BedZone.bed_id == live_server.ids["bed2"]))
        assert other is not None and other.head is None

    page.reload()
    expect(page.locator(".zone .pillow")).to_have_count(1)
    first = page.locator("#zone-list li").nth(0)
    expect(first.locator(".pillow-coords")).to_contain_text("pillow x 0.")
    first.locator("text=Default pillow").click()
    expect(page.locator(".zone .pillow")).to_have_count(0)
    page.click("#save-zones")
    expect(page.locator("#zone-status")).to_have_text("Saved 2 zone(s).")
    with live_server.session() as s:
        zone = s.scalar(select(BedZone).where(BedZone.bed_id == live_server.ids["bed1"]))
        assert zone is not None and zone.head is None


def test_admin_says_the_face_taken_for_the_patient_is_not_the_patient(
    page: Page, live_server: Any, login_as: Any, shot: Any
) -> None:
    bed = live_server.ids["bed1"]
    track = {"fixed": None, "first_at": time.time() - 60, "last_at": time.time() - 1, "frames": 30, "score": 2.0}
    publish_states(
        live_server.redis,
        {
            bed: {
                "tracks": [
                    {**track, "track": 41, "role": "patient", "where": "at the pillow", "lying": False},
                    {**track, "track": 42, "role": "other", "where": "at the right side of the bed", "lying": False},
                ],
                "others_at": time.time() - 1,
                "others": 1,
            }
        },
    )
    login_as(page, "admin")
    page.goto(f"{live_server.url}/patients/{live_server.ids['patient1']}")
    panel = page.locator("#bedside-roles")
    expect(panel).to_contain_text("at the right side of the bed")
    shot(page, "21-faces-at-the-bed")
    panel.locator("text=Not the patient").click()
    expect(page.locator("p.flash-success")).to_contain_text("counted as someone else")
    fix = json.loads(live_server.redis.get(fix_key(bed)))
    assert (fix["action"], fix["track"], fix["by"]) == ("not_patient", 41, "web:admin")
