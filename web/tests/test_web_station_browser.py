"""The central station in a real browser (chromium), over 24 beds in 3 wards (tests/web/station_world.py): on a
1920x1080 wall screen and a 1366x768 laptop every bed a nurse must see is on the screen, legible, in the order of
need, with the counts per ward; the bed still sad after a resolve says so; no bed that needs attention shows a calm
emotion; a new alert moves its bed to the top, stacks a banner naming patient and bed, is acknowledged from the
banner; the sound switch shows its state; axe-core finds no serious accessibility violation on the nurse's and the
doctor's pages. Screenshots go to artifacts/screenshots/ (station-*.png)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
AXE = Path(__file__).parent / "assets" / "axe.min.js"  # axe-core 4.10.3, vendored (assets/README.md)
SCREENS = {"1920x1080": ({"width": 1920, "height": 1080}, 24), "1366x768": ({"width": 1366, "height": 768}, 12)}
IN_VIEW = """els => els.filter(e => { const r = e.getBoundingClientRect();
  return r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth; }).length"""


def _open(browser: Browser, server: Any, username: str, size: dict[str, int], **options: Any) -> Page:
    context = browser.new_context(viewport=size, locale="en-GB", **options)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", server.ids["password"])
    page.click("button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
    page.errors = errors  # type: ignore[attr-defined]
    return page


def _screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))  # what the screen shows, not the whole page
    return path


def test_central_station_shows_every_bed_by_need_on_a_wall_screen_and_a_laptop(browser: Browser, station: Any) -> None:
    from station_world import EXPECTED_COUNTS, EXPECTED_ORDER  # tests/web (the station fixture puts it on the path)

    beds = {bed_id: key for key, bed_id in station.ids["beds"].items()}
    for name, (size, wanted) in SCREENS.items():
        page = _open(browser, station, "nurse", size)
        expect(page.locator("h1")).to_have_text("Central station")
        expect(page.locator("#live-status")).to_have_text("Live")
        tiles = page.locator("#tiles article.tile")
        expect(tiles).to_have_count(24)
        assert tiles.evaluate_all("els => els.map(e => e.dataset.state)") == EXPECTED_ORDER
        order = [beds[int(b)] for b in tiles.evaluate_all("els => els.map(e => e.dataset.bed)")]
        assert order[:3] == [("A", "1"), ("B", "3"), ("C", "2")]  # firing, acknowledged, still sad after a resolve
        # on the screen without scrolling, and legible
        in_view = tiles.evaluate_all(IN_VIEW)
        assert in_view >= wanted, f"{name}: {in_view} beds on the screen"
        sizes = page.locator("#tiles .state-text, #tiles .patient").evaluate_all(
            "els => els.map(e => parseFloat(getComputedStyle(e).fontSize))"
        )
        assert min(sizes) >= 15, f"{name}: text {min(sizes)} px"
        print(f"{name}: {in_view} of 24 beds wholly on the screen; smallest state or name text {min(sizes):g} px")
        for ward, counts in EXPECTED_COUNTS.items():
            li = page.locator(f'#ward-counts li[data-ward="{station.ids["ward_ids"][ward]}"]')
            for key, n in counts.items():
                expect(li.locator(f'[data-count="{key}"] .n')).to_have_text(str(n))
        still = page.locator(f"#tile-{station.ids['beds'][('C', '2')]}")
        expect(still.locator(".state-text")).to_contain_text("Resolved by doctor at")
        expect(still.locator(".state-text")).to_contain_text("still low mood · re-alerts if it worsens")
        for state in ("attention", "still"):
            chips = page.locator(f'#tiles .tile[data-state="{state}"] .chip').all_inner_texts()
            assert chips and {c.strip().lower() for c in chips} <= {"sad", "angry"}, (state, chips)
        _screenshot(page, f"station-{name}")
        if name == "1920x1080":
            for key in ("attention", "still", "unmonitored", "calm", "empty"):
                page.locator(f'#tiles .tile[data-state="{key}"]').first.screenshot(
                    path=str(SCREENSHOTS / f"station-tile-{key}.png")
                )
        assert not page.errors, page.errors  # type: ignore[attr-defined]
        page.context.close()


def test_new_alert_moves_its_bed_up_stacks_a_banner_and_is_acknowledged_from_it(browser: Browser, station: Any) -> None:
    from areya.alerts.lifecycle import open_alert, take_notices
    from areya.db.models import Alert
    from areya.notify.events import publish_events

    page = _open(browser, station, "nurse", {"width": 1366, "height": 768})
    expect(page.locator("#live-status")).to_have_text("Live")
    sound = page.locator("#sound-toggle")
    expect(sound).to_have_text("Sound on")  # visible state (this browser may play sound without a click)
    sound.click()
    expect(sound).to_have_text("Sound off")
    expect(sound).to_have_attribute("aria-pressed", "false")
    sound.click()
    expect(sound).to_have_text("Sound on")
    page.wait_for_function("Number(document.body.dataset.sounded || 0) >= 1")  # one click: a beep is heard
    ids = station.ids
    opened = []
    with station.session() as s:  # what the scheduler does when the rule fires, for two calm beds
        for bed in (("A", "2"), ("B", "4")):
            alert = open_alert(s, "negative_emotion", patient_id=ids["patients"][bed], ward_id=ids["ward_ids"][bed[0]])
            opened.append(alert.id)
        s.commit()
        publish_events(station.redis, take_notices(s))
    banners = page.locator("#alert-banner .banner")
    expect(banners).to_have_count(2, timeout=20_000)  # stacked, not replaced
    expect(banners.nth(0)).to_contain_text("New alert: Lea Roux — Bed 4, ward B")  # newest first
    expect(banners.nth(1)).to_contain_text("New alert: Ben Okafor — Bed 2, ward A")
    ben = page.locator(f"#tile-{ids['beds'][('A', '2')]}")
    expect(ben).to_have_attribute("data-state", "attention", timeout=20_000)
    expect(page.locator("#tiles article.tile").nth(1)).to_have_id(f"tile-{ids['beds'][('A', '2')]}")  # moved up
    ward_a = page.locator(f'#ward-counts li[data-ward="{ids["ward_ids"]["A"]}"]')
    expect(ward_a.locator('[data-count="attention"] .n')).to_have_text("2")
    expect(ward_a.locator('[data-count="calm"] .n')).to_have_text("5")
    _screenshot(page, "station-banners")
    banners.nth(1).get_by_role("button", name="Acknowledge").click()
    expect(banners.filter(has_text="Acknowledged: Ben Okafor")).to_have_count(1)
    with station.session() as s:
        assert s.get(Alert, opened[0]).state == "acknowledged"
        assert s.get(Alert, opened[1]).state == "firing"
    assert not page.errors, page.errors  # type: ignore[attr-defined]
    page.context.close()


def test_nurse_and_doctor_pages_have_no_serious_accessibility_violations(browser: Browser, station: Any) -> None:
    ids = station.ids
    pages = {
        "nurse": ["/station", f"/wards/{ids['ward_ids']['A']}", f"/patients/{ids['patients'][('C', '2')]}"],
        "doctor": ["/alerts", f"/alerts/{ids['firing']}", "/alerts/history"],
    }
    found: dict[str, list[str]] = {}
    for user, paths in pages.items():
        # axe is injected as a script: the dashboard's CSP (script-src 'self') would refuse it, so bypass it here
        page = _open(browser, station, user, {"width": 1366, "height": 768}, bypass_csp=True)
        for path in paths:
            page.goto(station.url + path)
            page.add_script_tag(path=str(AXE))
            result = page.evaluate(
                "() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', "
                "'wcag21aa']}, resultTypes: ['violations']})"
            )
            bad = [
                f"{v['id']} ({v['impact']}): {v['help']} - {[n['target'] for n in v['nodes']][:3]}"
                for v in result["violations"]
                if v["impact"] in ("serious", "critical")
            ]
            if bad:
                found[f"{user} {path}"] = bad
        page.context.close()
    assert not found, "\n".join(f"{k}: {v}" for k, v in found.items())
