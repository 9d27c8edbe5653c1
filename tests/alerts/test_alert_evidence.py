"""One evidence for one alert: the rule's score (one name, its threshold) and the label counts of the same window
are the same numbers in the doctor's inbox HTML, the nurse's tile JSON, the API and the webhook / e-mail
payloads (real SQLite, the real engine on an injected clock, the real Flask app)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import redis
from alerts_helpers import PROBS, T0, Hospital
from flask.testing import FlaskClient
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from areya import admin
from areya.alerts.engine import AlertEngine
from areya.alerts.evidence import NegativeEvidence, pct
from areya.config import Settings
from areya.db.models import LABELS4, Alert, Camera, User
from areya.notify.email import build_message
from areya.notify.events import AlertNotice
from areya.notify.webhook import webhook_payload
from areya.webapp import create_app
from areya.webapp.fmt import bed_name

PASSWORD = "correct-horse-evidence-1"
CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')
Observe = Callable[..., None]


def mixed(i: int) -> str:
    """Sad 70 % of the time, relaxed otherwise: label share 0.70, probability about 0.63 (they differ)."""
    return "relaxed" if i % 10 in (0, 3, 6) else "sad"


@pytest.fixture
def settings_(alert_settings: Settings) -> Settings:
    return alert_settings.replace(negative_measure="probability")


@pytest.fixture
def opened(
    settings_: Settings, session_factory: Callable[[], Session], hospital: Hospital, observe: Observe
) -> tuple[Alert, AlertNotice]:
    """Ten minutes of mixed faces for patient 0 (observations every 5 s up to T0), one tick at T0."""
    with session_factory() as s, s.begin():
        s.execute(update(Camera).values(enabled=False))
    observe(0, T0 - timedelta(seconds=600), 121, label=mixed)
    report = AlertEngine(settings_, session_factory).tick(T0, retention=False)
    [notice] = [n for n in report.notices if n.type == "alert.opened"]
    with session_factory() as s:
        alert = s.get(Alert, notice.alert_id)
        assert alert is not None
        s.expunge(alert)
    return alert, notice


@pytest.fixture
def client(
    settings_: Settings,
    engine: Engine,
    rclient: redis.Redis,
    session_factory: Callable[[], Session],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[FlaskClient, str]]:
    """The dashboard over the test database at T0, a doctor of Ward A logged in, and the doctor's API token."""
    from areya.webapp.tokens import create_token

    for module in ("areya.webapp.views.api", "areya.webapp.views.ward", "areya.webapp.views.alerts"):
        monkeypatch.setattr(f"{module}.utcnow", lambda: T0, raising=False)
    with session_factory() as s, s.begin():
        user = admin.add_user(s, "dr-evidence", "doctor", PASSWORD, ["Ward A"])
        token = create_token(s, s.get(User, user.id), "evidence-test")[1]
    app = create_app(settings_, engine=engine, redis_client=rclient)
    app.config["TESTING"] = True
    web = app.test_client()
    csrf = CSRF_RE.search(web.get("/login").get_data(as_text=True))
    assert csrf is not None
    answer = web.post("/login", data={"username": "dr-evidence", "password": PASSWORD, "csrf_token": csrf.group(1)})
    assert answer.status_code == 302
    yield web, token


def expected_window(hospital: Hospital) -> tuple[dict[str, int], float]:
    """Counts and mean P(angry)+P(sad) of the observations in (T0 - 600 s, T0], computed here, not by Areya."""
    labels = [mixed(i) for i in range(121) if i > 0]  # the one at T0 - 600 s is outside the window
    counts = {lab: labels.count(lab) for lab in LABELS4}
    score = sum(PROBS[lab][0] + PROBS[lab][3] for lab in labels) / len(labels)
    return counts, score


def test_one_alert_same_evidence_in_inbox_tile_api_and_webhook(
    opened: tuple[Alert, AlertNotice], client: tuple[FlaskClient, str], hospital: Hospital
) -> None:
    alert, notice = opened
    web, token = client
    counts, score = expected_window(hospital)
    evidence = NegativeEvidence.from_json(alert.evidence)
    assert evidence is not None
    # the rule decided on this score, computed independently here; the label share (0.70) is another quantity
    assert evidence.measure == "probability" and evidence.name == "Negative probability"
    assert evidence.score == pytest.approx(score, abs=1e-4) and evidence.counts == counts
    assert evidence.n_obs == 120 and evidence.open_at == 0.6 and evidence.score >= evidence.open_at
    summary = evidence.public()

    # the API
    bearer = {"Authorization": f"Bearer {token}"}
    api = web.get(f"/api/alerts/{alert.id}", headers=bearer).get_json()
    ev = api["evidence"]
    assert (ev["name"], ev["score"], ev["open_at"], ev["n_obs"], ev["counts"]) == (
        summary["name"],
        summary["score"],
        summary["open_at"],
        summary["n_obs"],
        summary["counts"],
    )

    # the nurse's tile: the open alert's evidence, and the headline window (read at the same instant) agrees
    tiles = web.get(f"/api/wards/{hospital.ward_id}/tiles", headers=bearer).get_json()["tiles"]
    [tile] = [t for t in tiles if t["patient_id"] == hospital.patients[0]]
    assert tile["alert_evidence"] == summary
    assert (tile["window"]["score"], tile["window"]["counts"]) == (summary["score"], summary["counts"])
    assert tile["window"]["dominant"] == "sad" and tile["emotion"] == mixed(120)  # latest reading beside it
    assert tile["bed"] == "A1"

    # the webhook body (through the outbox's JSON form of the notice) and the e-mail
    stored = AlertNotice.from_payload(json.loads(json.dumps(notice.to_payload())))
    body = json.loads(json.dumps(webhook_payload(stored, "summary")))
    assert body["evidence"] == summary
    mail = build_message(stored, ["dr.a@hospital.example"], "areya@localhost", "summary").get_content()
    assert summary["headline"] in mail

    # the doctor's inbox: the same name, score, threshold and counts, and no second "negative" quantity
    html = web.get("/alerts").get_data(as_text=True)
    card = html[html.index(f'id="alert-{alert.id}"') :]
    card = card[: card.index("</article>")]
    assert f"Negative probability</dt><dd>{pct(score)} (opens at {pct(0.6)}" in card
    assert evidence.counts_text() in card and "Negative share" not in card
    for label, number in counts.items():
        assert f"{label} {number}" in card


def test_tile_headline_summarises_the_rule_window(
    opened: tuple[Alert, AlertNotice],
    client: tuple[FlaskClient, str],
    hospital: Hospital,
    session_factory: Callable[[], Session],
    observe: Observe,
) -> None:
    web, token = client
    # one happy face at T0 (the latest reading) does not change what the window says
    observe(0, T0, 1, label="happy")
    tiles = web.get(f"/api/wards/{hospital.ward_id}/tiles", headers={"Authorization": f"Bearer {token}"}).get_json()
    [tile] = [t for t in tiles["tiles"] if t["patient_id"] == hospital.patients[0]]
    assert tile["emotion"] == "happy"
    assert tile["window"]["dominant"] == "sad" and tile["window"]["n_obs"] == 121
    assert tile["window"]["score"] >= tile["window"]["open_at"]
    page = web.get(f"/wards/{hospital.ward_id}").get_data(as_text=True)
    tile_html = page[page.index(f'id="tile-{hospital.beds[0]}"') :]
    tile_html = tile_html[: tile_html.index("</article>")]
    assert 'class="chip emo-sad">sad</span> sad in' in tile_html and "Negative probability" in tile_html
    assert tile["state"]["headline"] == "sad"  # the latest happy face does not make the bed look calm
    assert "Bed A1" in tile_html and "Bed Bed" not in tile_html


def test_bed_names_do_not_double_the_word() -> None:
    assert [bed_name(x) for x in ("1", "Bed 1", "bed 2", "A1")] == ["Bed 1", "Bed 1", "bed 2", "Bed A1"]
