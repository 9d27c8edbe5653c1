"""CSRF: a state-changing request from a logged-in browser session that carries no CSRF token at all is refused
and changes nothing, whatever the session itself holds."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import func, select
from web_helpers import World, login

from areya.db.models import Alert, AlertEvent, AuditEvent
from areya.webapp.security import CSRF_SESSION_KEY


def _alert_state(world: World) -> tuple[str, int, int]:
    """The alert's state, its event count and the audit log's length: what an acknowledgement would change."""
    alert_id = world.ids["alert_id"]
    with world.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None
        events = s.scalar(select(func.count()).select_from(AlertEvent).where(AlertEvent.alert_id == alert_id))
        audit = s.scalar(select(func.count()).select_from(AuditEvent))
        return alert.state, int(events or 0), int(audit or 0)


def _tokenless_posts(client: FlaskClient, alert_id: int) -> list[int]:
    """An acknowledgement as a form POST and as a JSON API POST, with no ``csrf_token`` field and no
    ``X-CSRF-Token`` header; the statuses."""
    form = client.post(f"/alerts/{alert_id}/acknowledge", data={"note": "no token"})
    api = client.post(f"/api/alerts/{alert_id}/acknowledge", json={"note": "no token"})
    return [form.status_code, api.status_code]


def test_logged_in_post_without_any_csrf_token_is_refused_and_changes_nothing(world: World) -> None:
    """Mutant killed: a POST that sends no CSRF token at all (neither the form field nor the header) from a
    session that has one is let through, as if a missing token were not checked."""
    client, csrf = login(world.app, "doctor")
    before = _alert_state(world)
    assert before[0] == "firing"
    assert _tokenless_posts(client, world.ids["alert_id"]) == [400, 400]
    blank = client.post(
        f"/alerts/{world.ids['alert_id']}/acknowledge",
        data={"note": "blank token", "csrf_token": ""},
        headers={"X-CSRF-Token": ""},
    )
    assert blank.status_code == 400
    assert _alert_state(world) == before
    # the same request with the session's token goes through: the refusals above were the token's doing
    done = client.post(f"/alerts/{world.ids['alert_id']}/acknowledge", data={"note": "seen", "csrf_token": csrf})
    assert done.status_code == 302
    assert _alert_state(world)[0] == "acknowledged"


def test_tokenless_post_from_a_session_without_a_token_is_refused(world: World) -> None:
    """Mutant killed: a session that holds no CSRF token (a logged-in cookie without one) and a POST without one
    are taken to match (an empty token equals an empty token), so the POST is let through."""
    client, _ = login(world.app, "doctor")
    with client.session_transaction() as cookie:
        assert cookie.pop(CSRF_SESSION_KEY, None)  # still logged in: the server-side session id stays
    before = _alert_state(world)
    assert _tokenless_posts(client, world.ids["alert_id"]) == [400, 400]
    assert _alert_state(world) == before
    assert client.get("/alerts").status_code == 200  # the session is still a logged-in one
