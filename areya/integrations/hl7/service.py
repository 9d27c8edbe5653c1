"""The ADT listener: every MLLP block is parsed, applied in its own write transaction and answered with an ACK.
A bad block, a malformed message or an internal error is answered (AR / AE), never ends the listener."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from dataclasses import dataclass, field
from datetime import tzinfo
from zoneinfo import ZoneInfo

from hl7.mllp import start_hl7_server
from hl7.mllp.exceptions import InvalidBlockError
from sqlalchemy.orm import Session, sessionmaker

from areya.config import Settings
from areya.db.engine import session_scope
from areya.integrations.hl7.ack import build_ack
from areya.integrations.hl7.apply import apply_event
from areya.integrations.hl7.errors import INTERNAL_ERROR, SEGMENT_SEQUENCE, AdtError, error, reject
from areya.integrations.hl7.locations import LocationMap
from areya.integrations.hl7.messages import Header, check_header, parse_message, read_event, read_header
from areya.integrations.hl7.mllp import ENCODING, MAX_BLOCK

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AckResult:
    code: str  # AA, AE, AR
    ack: str  # the ACK message
    text: str


@dataclass
class AdtProcessor:
    """Message text in, ACK out; one message at a time (the order the feed sends them is the order applied)."""

    factory: sessionmaker[Session]
    locations: LocationMap
    authority: str = ""
    tz: tzinfo = field(default_factory=lambda: ZoneInfo("UTC"))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, factory: sessionmaker[Session]) -> AdtProcessor:
        return cls(
            factory,
            LocationMap.from_pairs(settings.adt_location_map),
            settings.adt_assigning_authority,
            ZoneInfo(settings.timezone),
        )

    def handle(self, raw: str) -> AckResult:
        header: Header | None = None
        try:
            message = parse_message(raw)
            header = read_header(message)
            check_header(header)
            event = read_event(message, header, authority=self.authority, tz=self.tz)
            with self._lock, session_scope(self.factory, write=True) as session:
                outcome = apply_event(session, event, self.locations)
        except AdtError as exc:
            log.info("ADT %s %s: %s", header.control_id if header else "?", exc.ack_code, exc.text)
            return AckResult(exc.ack_code, build_ack(header, exc.ack_code, exc.text, exc), exc.text)
        except Exception:  # noqa: BLE001 - a database outage or a bug: answer AE, keep listening
            log.exception("ADT message %s could not be applied", header.control_id if header else "?")
            failure = error(INTERNAL_ERROR, "internal error: the message was not applied (see the Areya log)")
            return AckResult("AE", build_ack(header, "AE", failure.text, failure), failure.text)
        log.info("ADT %s %s: %s", header.control_id, event.event, outcome.text)
        return AckResult("AA", build_ack(header, "AA", outcome.text), outcome.text)


def server_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.adt_tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.adt_tls_cert, settings.adt_tls_key or None)
    return context


class AdtListener:
    """MLLP over TCP (optionally TLS) on ``host:port`` (port 0: a free one, see :attr:`port`)."""

    def __init__(
        self,
        processor: AdtProcessor,
        host: str = "127.0.0.1",
        port: int = 2575,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.processor = processor
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        log.info("ADT connection from %s", peer)
        try:
            while True:
                try:
                    block = await reader.readblock()  # type: ignore[attr-defined]
                except asyncio.IncompleteReadError:
                    break  # the sender closed the connection
                except (InvalidBlockError, ValueError) as exc:  # no <VT>, or longer than MAX_BLOCK
                    failure = reject(SEGMENT_SEQUENCE, f"not an MLLP block: {exc}")
                    writer.writeblock(build_ack(None, "AR", failure.text, failure).encode(ENCODING))  # type: ignore[attr-defined]
                    await writer.drain()
                    continue
                result = await asyncio.to_thread(self.processor.handle, block.decode(ENCODING, errors="replace"))
                writer.writeblock(result.ack.encode(ENCODING))  # type: ignore[attr-defined]
                await writer.drain()
        except (ConnectionError, ssl.SSLError) as exc:
            log.info("ADT connection from %s ended: %s", peer, exc)
        finally:
            writer.close()

    async def serve(self) -> None:
        """Serve until :meth:`stop` (or cancellation)."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await start_hl7_server(self._client, self.host, self.port, limit=MAX_BLOCK, ssl=self.ssl_context)
        self.port = server.sockets[0].getsockname()[1]
        log.info("ADT listener on %s:%s%s", self.host, self.port, " (TLS)" if self.ssl_context else "")
        self._started.set()
        async with server:
            await self._stop.wait()

    def start(self, timeout: float = 10.0) -> AdtListener:
        """Serve in a background thread; returns once the socket is listening."""

        def run() -> None:
            try:
                asyncio.run(self.serve())
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                self._failure = exc
                self._started.set()

        self._thread = threading.Thread(target=run, name="adt-listener", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError("ADT listener did not start")
        if self._failure is not None:
            raise self._failure
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
