"""People and time on the dashboard: nurses acknowledge per the deployment's policy, who acted is shown, the
tile badge links to the alert, times in the hospital time zone, e-mail addresses set and validated, roles changed
by admins (audited)."""

from __future__ import annotations

from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from web_helpers import World, add_observation, login, make_world

from areya.db.models import Alert, AuditEvent, User
from areya.db.types import utcnow


def _settings(world: World):  # noqa: ANN202 - the app's Settings
    return world.app.extensions["areya"].settings


def _with(world: World, **changes: object) -> World:
    return make_world(
        _settings(world).replace(**changes), world.ids, world.tokens, redis_client=world.app.extensions["areya"].redis
    )


def test_nurse_acknowledges_by_default_and_history_says_who(world: World) -> None:
    aid = world.ids["alert_id"]
    client, token = login(world.app, "nurse")
    page = client.get(f"/alerts/{aid}").get_data(as_text=True)
    assert f'action="/alerts/{aid}/acknowledge"' in page  # the button is offered to the nurse
    assert f'action="/alerts/{aid}/resolve"' not in page  # resolving stays with doctors
    answer = client.post(f"/alerts/{aid}/acknowledge", data={"note": "with the patient", "csrf_token": token})
    assert answer.status_code == 302
    with world.session() as s:
        alert = s.get(Alert, aid)
        nurse_id = s.scalar(select(User.id).where(User.username == "nurse"))
        assert (alert.state, alert.acknowledged_by, alert.resolved_at) == ("acknowledged", nurse_id, None)
    assert client.post(f"/alerts/{aid}/resolve", data={"note": "calm", "csrf_token": token}).status_code == 403
    assert client.post(f"/alerts/{aid}/resolve", data={"csrf_token": token}).status_code == 403  # role before form
    doctor, dtoken = login(world.app, "doctor")
    assert doctor.post(f"/alerts/{aid}/resolve", data={"note": "calm now", "csrf_token": dtoken}).status_code == 302
    history = doctor.get(f"/alerts/{aid}").get_data(as_text=True)
    assert 'firing → acknowledged <span class="muted">by nurse</span>' in history
    assert 'acknowledged → resolved <span class="muted">by doctor</span>' in history


def test_doctors_only_policy_refuses_the_nurse(world: World) -> None:
    strict = _with(world, acknowledge_roles=("doctor",))
    aid = world.ids["alert_id"]
    client, token = login(strict.app, "nurse")
    assert f'action="/alerts/{aid}/acknowledge"' not in client.get(f"/alerts/{aid}").get_data(as_text=True)
    assert client.post(f"/alerts/{aid}/acknowledge", data={"csrf_token": token}).status_code == 403
    api = strict.app.test_client().post(
        f"/api/alerts/{aid}/acknowledge", json={}, headers={"Authorization": f"Bearer {world.tokens['nurse']}"}
    )
    assert api.status_code == 403
    with world.session() as s:
        assert s.get(Alert, aid).state == "firing"
    strict.engine.dispose()


def test_times_shown_in_the_hospital_time_zone(world: World) -> None:
    tokyo = _with(world, timezone="Asia/Tokyo")
    aid = world.ids["alert_id"]
    with world.session() as s:
        opened = s.get(Alert, aid).opened_at
    client, _ = login(tokyo.app, "doctor")
    page = client.get(f"/alerts/{aid}").get_data(as_text=True)
    assert opened.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M:%S JST") in page
    assert opened.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") not in page
    api = tokyo.app.test_client().get(
        f"/api/alerts/{aid}", headers={"Authorization": f"Bearer {world.tokens['doctor']}"}
    )
    assert api.get_json()["opened_at"].endswith("+00:00")  # the API stays UTC
    tokyo.engine.dispose()


def test_tile_trend_tooltips_in_the_hospital_time_zone(world: World) -> None:
    at = utcnow() - timedelta(seconds=30)
    with world.session() as s:
        add_observation(s, world.ids["patient_id"], world.ids["bed_id"], "sad", at)
        s.commit()
    minute = at.replace(second=0, microsecond=0)
    tokyo = _with(world, timezone="Asia/Tokyo")
    client, _ = login(tokyo.app, "nurse")
    page = client.get(f"/wards/{world.ids['ward_id']}").get_data(as_text=True)
    assert f"<title>{minute.astimezone(ZoneInfo('Asia/Tokyo')).strftime('%Y-%m-%d %H:%M JST')} (1 min" in page
    assert f"<title>{minute.strftime('%Y-%m-%d %H:%M UTC')} (1 min" not in page
    tokyo.engine.dispose()


def test_ward_badge_links_to_the_alert(world: World) -> None:
    client, _ = login(world.app, "nurse")
    page = client.get(f"/wards/{world.ids['ward_id']}").get_data(as_text=True)
    assert f'href="/alerts/{world.ids["alert_id"]}" title=' in page


def test_email_set_on_own_account_and_by_admin_with_validation(world: World) -> None:
    client, token = login(world.app, "doctor")
    bad = client.post("/account", data={"email": "not an address", "csrf_token": token})
    assert bad.status_code == 400 and "invalid e-mail address" in bad.get_data(as_text=True)
    assert client.post("/account", data={"email": "Dr.Who@Hospital.Example", "csrf_token": token}).status_code == 302
    with world.session() as s:
        assert s.scalar(select(User.email).where(User.username == "doctor")) == "Dr.Who@hospital.example"
    admin, atoken = login(world.app, "admin")
    with world.session() as s:
        nurse_id = s.scalar(select(User.id).where(User.username == "nurse"))
    refused = admin.post(f"/admin/users/{nurse_id}/email", data={"email": "nurse@@x", "csrf_token": atoken})
    assert refused.status_code == 400
    assert (
        admin.post(
            f"/admin/users/{nurse_id}/email", data={"email": "nurse@icu.example", "csrf_token": atoken}
        ).status_code
        == 302
    )
    assert admin.post(f"/admin/users/{nurse_id}/role", data={"role": "doctor", "csrf_token": atoken}).status_code == 302
    with world.session() as s:
        user = s.get(User, nurse_id)
        assert (user.email, user.role) == ("nurse@icu.example", "doctor")
        role_audit = s.scalar(select(AuditEvent).where(AuditEvent.action == "user.role"))
        assert (role_audit.detail["from"], role_audit.detail["to"]) == (
            "nurse",
            "doctor",
        ) and role_audit.target == f"user:{nurse_id}"
