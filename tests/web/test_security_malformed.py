"""Every route of the app, table-driven, with malformed values in every place a request carries them: query
parameters, form fields, JSON bodies, ids in the URL and headers (Host, Cookie, Authorization, CSRF). No response
may be a 5xx: a malformed request is answered 400/404/405/409/422 (or refused: 401/403), never with a crash."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from web_helpers import DEFAULT_IDS, World, login

from areya.webapp.access import MAX_ID
from areya.webapp.views.admin.rules import FIELDS as RULE_FIELDS

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"
# every field name a template posts, and the query parameters and JSON keys the views read
FORM_FIELDS = sorted(
    {m for p in TEMPLATES.rglob("*.html") for m in re.findall(r'name="([a-z_0-9]+)"', p.read_text())}
    | {"display_name", "mrn", "name", "labels", "url", "fps", "detector_options", "username", "token_name"}
    | {key for key, _ in RULE_FIELDS}
)
QUERY_FIELDS = (
    "ward", "ward_id", "all", "next", "range", "scheme", "state", "limit", "page", "patient", "user", "action",
    "date", "detail", "_count", "_offset", "identifier", "subject", "code",
)  # fmt: skip
JSON_KEYS = ("note", "reason", "minutes", "zones")

VALUES: tuple[str, ...] = (
    "",
    "\x00",
    "nul\x00inside",
    "\x1b[2J",
    "A" * 5000,
    "-1",
    "0",
    "99999999999999999999999999",
    "1e309",
    "NaN",
    "-inf",
    "0x1F",
    "\u00b2",  # a digit to str.isdigit, not to int()
    "\u0661\u0662",
    "1_000",
    " 12 ",
    "../../../../etc/passwd",
    "//evil.example/x",
    "javascript:alert(1)",
    "<script>alert(1)</script>",
    "' OR '1'='1' --",
    "\u202eevil\u200b",
    "\ufeff\ufffe\uffff",
    "\U0001f600" * 100,
    "%00%ff%fe",
    "http://[::1/x",
    "synthetic:story=/etc/passwd",
    "[]",
    "{}",
)
JSON_BODIES: tuple[object, ...] = (
    None,
    [],
    "string",
    1,
    {"note": ["x"], "reason": {"a": 1}, "minutes": "soon"},
    {"note": "\x00", "reason": "\x00", "minutes": 1e308},
    {"minutes": -5, "reason": "x" * 100_000},
    {"minutes": 2**70, "reason": "ok"},
    {"minutes": True, "reason": None},
    {"zones": [{"bed_id": 2**70, "x0": "a"}]},
    {"zones": [{"bed_id": 1, "x0": 1e308, "y0": -1e308, "x1": float("nan"), "y1": 0}]},
    {"zones": "all"},
    {"zones": [None, [], 5]},
)
RAW_BODIES: tuple[bytes, ...] = (b"{", b'{"note": "\\ud800"}', b"[" * 5000, b"\xff\xfe\x00", b'{"note": 1e999999}')
IDS = (0, MAX_ID, MAX_ID + 1, 2**63, 10**30)

# destructive routes get the spare targets (as tests/web/test_web_security.py)
PARAMS: dict[str, dict[str, str]] = {
    "admin.remove_ward": {"ward_id": "spare_ward_id"},
    "admin.remove_bed": {"bed_id": "spare_bed_id"},
    "admin.move": {"patient_id": "spare_patient_id"},
    "admin.discharge": {"patient_id": "spare_patient_id"},
    "admin.camera_delete": {"camera_id": "spare_camera_id"},
    "admin.camera_test": {"camera_id": "spare_camera_id"},
    "admin.camera_edit": {"camera_id": "spare_camera_id"},
}
SKIP = {"auth.logout"}  # ends the session the rest of the table runs in (tried last, once)


def _routes(world: World, ids: dict[str, int] | None = None) -> Iterator[tuple[str, str, str]]:
    for rule in sorted(world.app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static" or rule.endpoint in SKIP:
            continue
        values = {}
        for arg in rule.arguments:
            key = PARAMS.get(rule.endpoint, {}).get(arg) or DEFAULT_IDS[arg]
            values[arg] = str(ids[arg] if ids and arg in ids else world.ids[key])
        url = rule.build(values, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, url


def _check(failures: list[str], what: str, response) -> None:  # type: ignore[no-untyped-def]
    if response.status_code >= 500:
        failures.append(f"{what} -> {response.status_code}: {response.get_data(as_text=True)[:200]!r}")


def _send_values(client: FlaskClient, csrf: str, world: World, failures: list[str]) -> None:
    headers = {"X-CSRF-Token": csrf}
    for endpoint, method, url in _routes(world):
        for value in VALUES:
            if method == "GET":
                query = urlencode({k: value for k in QUERY_FIELDS})
                _check(failures, f"GET {url}?…={value[:20]!r}", client.get(f"{url}?{query}", headers=headers))
            elif endpoint.startswith(("api.", "fhir.")) or url.endswith("/zones"):
                body = {k: value for k in JSON_KEYS}
                _check(failures, f"POST {url} json {value[:20]!r}", client.post(url, json=body, headers=headers))
            else:
                data = {k: value for k in FORM_FIELDS}
                data["csrf_token"] = csrf
                _check(failures, f"POST {url} form {value[:20]!r}", client.post(url, data=data, headers=headers))
        if method == "POST" and (endpoint.startswith("api.") or url.endswith("/zones")):
            for body in JSON_BODIES:
                _check(failures, f"POST {url} json {body!r:.40}", client.post(url, json=body, headers=headers))
            for raw in RAW_BODIES:
                response = client.post(url, data=raw, headers={**headers, "Content-Type": "application/json"})
                _check(failures, f"POST {url} raw {raw[:20]!r}", response)


@pytest.mark.parametrize("role", ["admin", "nurse"])
def test_every_route_with_malformed_values_answers_below_500(world: World, role: str) -> None:
    world.app.extensions["areya"].options.update(sse_max_s=0.2, sse_poll_s=0.1)
    client, csrf = login(world.app, role)
    failures: list[str] = []
    _send_values(client, csrf, world, failures)
    assert failures == [], "\n".join(failures[:40])


def test_every_route_with_malformed_ids_and_headers_answers_below_500(world: World) -> None:
    world.app.extensions["areya"].options.update(sse_max_s=0.2, sse_poll_s=0.1)
    client, csrf = login(world.app, "admin")
    failures: list[str] = []
    for bad_id in IDS:
        ids = dict.fromkeys(DEFAULT_IDS, bad_id)
        for _endpoint, method, url in _routes(world, ids):
            call = client.get if method == "GET" else client.post
            _check(failures, f"{method} {url}", call(url, data={"csrf_token": csrf}))
    for path in ("/wards/abc", "/patients/-1", "/alerts/1.5", "/api/alerts/%00", "/fhir/Patient/%ff", "/" + "a" * 5000):
        _check(failures, f"GET {path[:40]}", client.get(path))
    header_sets = (
        {"Host": "a" * 2000},
        {"Host": "[::1"},
        {"Host": "ex ample.org"},
        {"Cookie": "areya_session=" + "A" * 8000},
        {"Cookie": "areya_session=\x00\x01; other=\xff"},
        {"Authorization": "Bearer " + "areya_" + "x" * 5000},
        {"Authorization": "Bearer areya_\x00"},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        {"Authorization": "Bearer"},
        {"X-CSRF-Token": "\x00" * 100},
        {"Origin": "null"},
        {"Origin": "http://[::1"},
        {"X-Forwarded-For": "1.2.3.4, " * 500},
        {"Accept-Language": "x" * 5000},
        {"If-Modified-Since": "not a date"},
        {"Range": "bytes=999999999999-"},
    )
    anonymous = world.app.test_client()
    for headers in header_sets:
        for _endpoint, method, url in _routes(world):
            for who in (client, anonymous):
                call = who.get if method == "GET" else who.post
                response = call(url, headers=headers, data={"csrf_token": csrf} if method == "POST" else None)
                _check(failures, f"{method} {url} {list(headers)[0]}={list(headers.values())[0][:20]!r}", response)
    _check(failures, "POST /logout", client.post("/logout", data={"csrf_token": "\x00"}))
    assert failures == [], "\n".join(failures[:40])
