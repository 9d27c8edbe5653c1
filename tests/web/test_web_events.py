"""Server-sent events: ward tiles update when a new observation is stored; alert events from Redis pub/sub are
relayed with their rendered card, only for the user's wards."""

from __future__ import annotations

import json
from collections.abc import Iterator

import redis
from web_helpers import World, add_observation, login

from areya.db.types import utcnow

STREAM_SECONDS = 8.0


def _events(chunks: Iterator[bytes]) -> Iterator[tuple[str, dict | str]]:
    """(event name, data) per SSE message; comments come as ("comment", text)."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode()
        while "\n\n" in buffer:
            message, buffer = buffer.split("\n\n", 1)
            name, data = "message", ""
            for line in message.splitlines():
                if line.startswith(":"):
                    yield "comment", line[1:].strip()
                elif line.startswith("event: "):
                    name = line[len("event: ") :]
                elif line.startswith("data: "):
                    data += line[len("data: ") :]
            if data:
                yield name, json.loads(data)


def _stream(world: World, username: str, url: str) -> tuple[object, Iterator[tuple[str, dict | str]]]:
    world.app.extensions["areya"].options["sse_max_s"] = STREAM_SECONDS
    client, _ = login(world.app, username)
    response = client.get(url, buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    events = _events(iter(response.response))
    for name, data in events:
        if name == "comment" and data == "ready":
            return response, events
    raise AssertionError("the stream never got ready")


def test_tile_updates_when_an_observation_arrives(world: World) -> None:
    response, events = _stream(world, "nurse", f"/events?ward={world.ids['ward_id']}")
    with world.session() as s:
        add_observation(s, world.ids["patient2_id"], world.ids["bed2_id"], "angry", utcnow(), confidence=0.91)
        s.commit()
    tiles = [data for name, data in events if name == "tile"]
    response.close()  # type: ignore[attr-defined]
    assert tiles, "no tile event before the stream ended"
    tile = tiles[0]
    assert tile["bed_id"] == world.ids["bed2_id"]
    assert tile["tile"]["emotion"] == "angry" and tile["tile"]["confidence"] == 0.91
    assert 'class="chip emo-angry">angry</span> 91%' in tile["html"] and "Bob Example" in tile["html"]  # latest reading


def test_alert_events_relayed_for_own_wards_only(world: World, web_redis: redis.Redis) -> None:
    response, events = _stream(world, "doctor", "/events")
    other = {
        "type": "alert.opened",
        "alert_id": world.ids["other_alert_id"],
        "ward_id": world.ids["other_ward_id"],
        "patient_id": world.ids["other_patient_id"],
        "kind": "negative_emotion",
        "severity": 2,
        "state": "firing",
        "at": utcnow().isoformat(),
    }
    assert web_redis.publish("areya:events", json.dumps(other)) == 1  # the stream is subscribed
    acker, csrf = login(world.app, "doctor")
    done = acker.post(f"/alerts/{world.ids['alert_id']}/acknowledge", data={"csrf_token": csrf, "note": "on it"})
    assert done.status_code == 302
    relayed = []
    for name, data in events:
        if name == "alert":
            relayed.append(data)
            break
    response.close()  # type: ignore[attr-defined]
    assert [e["alert_id"] for e in relayed] == [world.ids["alert_id"]]  # the Surgery alert was not relayed
    event = relayed[0]
    assert event["type"] == "alert.acknowledged" and event["state"] == "acknowledged"
    assert f'id="alert-{world.ids["alert_id"]}"' in event["html"] and "Alice Example" in event["html"]
