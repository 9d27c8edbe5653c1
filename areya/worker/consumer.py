"""The worker's side of the frame stream: consumer group reads, batching, reclaiming, dead letters, acks."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any

import redis

from areya.comms.frames import DROP_LOST_PENDING, dropped_key

log = logging.getLogger(__name__)

DEAD_LETTER_MAXLEN = 10_000


def consumer_name() -> str:
    """Unique per process: host, pid and a random suffix (a restarted worker is a new consumer)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class Delivery:
    """One stream entry handed to this worker."""

    entry_id: str
    fields: dict[bytes, bytes]
    deliveries: int = 1  # how many times the group has delivered it (this one included)
    claimed: bool = False


def _decode_id(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class StreamConsumer:
    """Reads batches for one consumer of a group; reclaims idle pending entries; dead-letters; acks."""

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        group: str,
        *,
        consumer: str | None = None,
        dead_letter_stream: str = "areya:deadletter",
        claim_idle_ms: int = 30_000,
        max_deliveries: int = 3,
        forget_idle_ms: int | None = None,
    ) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer or consumer_name()
        self.dead_letter_stream = dead_letter_stream
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        # consumers (old names of restarted workers) idle this long with nothing pending are removed from the group
        self.forget_idle_ms = forget_idle_ms if forget_idle_ms is not None else max(3_600_000, 10 * claim_idle_ms)
        self._last_claim = 0.0
        self._group_ready = False
        self.lost_pending = 0

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            log.info("created consumer group %s on %s", self.group, self.stream)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    # -- reading -------------------------------------------------------------------------------
    def read_batch(self, max_frames: int, max_wait_ms: int, block_ms: int = 1000) -> list[Delivery]:
        """Up to ``max_frames`` entries: reclaimed idle ones first, then new ones.

        Waits up to ``block_ms`` for a first entry, then at most ``max_wait_ms`` more to fill the batch.
        """
        if not self._group_ready:
            self.ensure_group()
        batch: list[Delivery] = []
        now = time.monotonic()
        if now - self._last_claim >= min(self.claim_idle_ms / 1000.0 / 2, 5.0):
            self._last_claim = now
            batch.extend(self.claim_idle(max_frames))
        deadline: float | None = time.monotonic() + max_wait_ms / 1000.0 if batch else None
        while len(batch) < max_frames:
            if deadline is None:
                block = block_ms
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                block = max(1, int(remaining * 1000))
            got = self._xreadgroup(max_frames - len(batch), block)
            if not got:
                break
            batch.extend(got)
            if deadline is None:
                deadline = time.monotonic() + max_wait_ms / 1000.0
        return batch

    def _xreadgroup(self, count: int, block_ms: int) -> list[Delivery]:
        try:
            reply = self.client.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms)
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis came back without our group (no persistence): make it again
                self._group_ready = False
                self.ensure_group()
                return []
            raise
        out = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                out.append(Delivery(_decode_id(entry_id), fields or {}))
        return out

    def claim_idle(self, count: int) -> list[Delivery]:
        """Take over entries pending longer than ``claim_idle_ms`` (their worker died or hangs).

        Entries that were trimmed from the stream meanwhile are acknowledged and counted as dropped.
        """
        try:
            pending = self.client.xpending_range(self.stream, self.group, "-", "+", count, idle=self.claim_idle_ms)
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                self._group_ready = False
                return []
            raise
        if not pending:
            self._forget_dead_consumers()
            return []
        ids = [_decode_id(p["message_id"]) for p in pending]
        times = {_decode_id(p["message_id"]): int(p["times_delivered"]) for p in pending}
        claimed = self.client.xclaim(self.stream, self.group, self.consumer, self.claim_idle_ms, ids)
        out: list[Delivery] = []
        got: set[str] = set()
        for entry_id, fields in claimed:
            if entry_id is None:
                continue
            eid = _decode_id(entry_id)
            got.add(eid)
            out.append(Delivery(eid, fields or {}, deliveries=times.get(eid, 1) + 1, claimed=True))
        missing = [i for i in ids if i not in got]
        if missing:
            self._ack_deleted(missing)
        if out:
            log.info("%s reclaimed %d idle frame(s)", self.consumer, len(out))
        return out

    def _forget_dead_consumers(self) -> None:
        """Remove consumers (restarted workers' old names) idle for ``forget_idle_ms`` with nothing pending."""
        limit_ms = self.forget_idle_ms
        for info in self.client.xinfo_consumers(self.stream, self.group):
            name = _decode_id(info["name"])
            if name != self.consumer and int(info["pending"]) == 0 and int(info["idle"]) > limit_ms:
                self.client.xgroup_delconsumer(self.stream, self.group, name)
                log.info("removed idle consumer %s from group %s", name, self.group)

    def _ack_deleted(self, ids: list[str]) -> None:
        """Pending ids now owned by us but gone from the stream (trimmed): ack them, count them as dropped."""
        mine = self.client.xpending_range(
            self.stream, self.group, ids[0], ids[-1], len(ids) * 2 + 10, consumername=self.consumer
        )
        owned = {_decode_id(p["message_id"]) for p in mine}
        gone = [i for i in ids if i in owned and not self.client.xrange(self.stream, min=i, max=i)]
        if gone:
            pipe = self.client.pipeline(transaction=True)
            pipe.xack(self.stream, self.group, *gone)
            pipe.hincrby(dropped_key(self.stream), f"?|{DROP_LOST_PENDING}", len(gone))
            pipe.execute()
            self.lost_pending += len(gone)
            log.warning("%d pending frame(s) were trimmed before they could be reclaimed", len(gone))

    # -- finishing -----------------------------------------------------------------------------
    def ack(self, entry_ids: list[str]) -> int:
        if not entry_ids:
            return 0
        return int(self.client.xack(self.stream, self.group, *entry_ids))

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move an entry to the dead-letter stream with its reason and ack it, atomically.

        The JPEG itself is not kept (no frames are stored); its size is.
        """
        record: dict[bytes | str, bytes | str] = {
            "source_id": delivery.entry_id,
            "stream": self.stream,
            "reason": reason[:500],
            "deliveries": str(delivery.deliveries),
            "consumer": self.consumer,
            "at": repr(time.time()),
        }
        for key, value in delivery.fields.items():
            name = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
            if name == "jpeg":
                record["jpeg_bytes"] = str(len(value))
            elif name not in record and len(value) <= 256:
                record[f"f_{name}"[:64]] = value
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.dead_letter_stream, record, maxlen=DEAD_LETTER_MAXLEN, approximate=True)
        pipe.xack(self.stream, self.group, delivery.entry_id)
        pipe.execute()
        log.warning("frame %s dead-lettered: %s", delivery.entry_id, reason)


def read_dead_letters(client: redis.Redis, stream: str, count: int = 100) -> list[dict[str, str]]:
    """The latest dead-letter records (newest first), decoded for display."""
    out = []
    for entry_id, fields in client.xrevrange(stream, count=count):
        row = {"id": _decode_id(entry_id)}
        row.update({k.decode(): v.decode(errors="replace") for k, v in fields.items()})
        out.append(row)
    return out
