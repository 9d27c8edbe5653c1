"""Findings of the security review of a running ``areya demo`` (docs/security.md), each with the test that failed
before its fix: token expiry and revocation, the session idle timeout."""

from __future__ import annotations

from datetime import timedelta

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
