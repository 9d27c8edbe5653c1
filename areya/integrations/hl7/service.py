"""The ADT listener: every MLLP block is parsed, applied in its own write transaction and answered with an ACK.
A bad block, a malformed message or an internal error is answered (AR / AE), never ends the listener."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from areya.audit import Actor, record
from areya.config import Settings
from areya.db.engine import session_scope
from areya.integrations.hl7 import charsets
from areya.integrations.hl7.access import AccessPolicy, Origin, SenderRefused, certificate_names
from areya.integrations.hl7.ack import build_ack
from areya.integrations.hl7.apply import ControlIdReused, apply_event
from areya.integrations.hl7.errors import INTERNAL_ERROR, SEGMENT_SEQUENCE, AdtError, error, reject
from areya.integrations.hl7.framing import BlockReader, IdleTimeout
from areya.integrations.hl7.locations import LocationMap
from areya.integrations.hl7.messages import (
    Header,
    check_header,
    check_processing,
    fingerprint,
    parse_message,
    read_event,
    read_header,
)
from areya.integrations.hl7.mllp import CARRIAGE_RETURN, ENCODING, END_BLOCK, MAX_BLOCK, START_BLOCK

log = logging.getLogger(__name__)
HANDSHAKE_TIMEOUT_S = 30.0
REFUSAL_AUDIT_EVERY_S = 60.0  # connection refusals from one address: one audit row a minute, the rest logged


@dataclass(frozen=True)
class AckResult:
    code: str  # AA, AE, AR
    ack: str  # the ACK message
    text: str
    encoding: str = "utf-8"  # the message's character set (MSH-18), which the ACK is written in

    @property
    def data(self) -> bytes:
        return self.ack.encode(self.encoding, errors="replace")


@dataclass
class AdtProcessor:
    """Message text in, ACK out; one message at a time (the order the feed sends them is the order applied)."""

    factory: sessionmaker[Session]
    locations: LocationMap
    authority: str = ""
    tz: tzinfo = field(default_factory=lambda: ZoneInfo("UTC"))
    access: AccessPolicy = field(default_factory=AccessPolicy)
    charset: str = "UNICODE UTF-8"  # adt_default_charset: for a message whose MSH-18 is empty
    identifier_type: str = "MR"  # adt_identifier_type: PID-3.5 of the MRN
    processing_ids: tuple[str, ...] = ("P",)  # adt_processing_ids: MSH-11 values applied
    ack_application: str = "AREYA"  # adt_ack_application: the ACKs' MSH-3
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _refusals: dict[tuple[str, str], float] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, factory: sessionmaker[Session]) -> AdtProcessor:
        return cls(
            factory,
            LocationMap.from_pairs(settings.adt_location_map, settings.adt_unknown_location),
            settings.adt_assigning_authority,
            ZoneInfo(settings.timezone),
            access_policy(settings),
            settings.adt_default_charset,
            settings.adt_identifier_type,
            settings.adt_processing_ids,
            settings.adt_ack_application,
        )

    def handle(self, raw: str | bytes, origin: Origin | None = None) -> AckResult:
        """Apply one message (bytes: decoded by MSH-18, the ACK encoded alike); ``origin`` is the connection it
        came on (audited with what it changed)."""
        header: Header | None = None
        encoding, declared = "utf-8", ""

        def answer(code: str, text: str, failure: AdtError | None = None) -> AckResult:
            ack = build_ack(
                header or _header_of(raw), code, text, failure, charset=declared, application=self.ack_application
            )
            return AckResult(code, ack, text, encoding)

        try:
            if isinstance(raw, bytes):
                raw, encoding, declared = charsets.decode(raw, self.charset)
            message = parse_message(raw)
            header = read_header(message)
            check_header(header)
            self.access.check_sender(header)
            check_processing(header, self.processing_ids)
            event = read_event(
                message, header, authority=self.authority, identifier_type=self.identifier_type, tz=self.tz
            )
            with self._lock, session_scope(self.factory, write=True) as session:
                context = origin.context() if origin else ()
                outcome = apply_event(session, event, self.locations, context, fingerprint(raw))
        except SenderRefused as exc:
            log.warning("ADT %s from %s refused: %s", header.control_id if header else "?", origin, exc.text)
            detail = {"sender": f"{header.sending_application}^{header.sending_facility}"} if header else {}
            if header:
                detail.update(control_id=header.control_id, event=header.trigger)
            self.audit_refusal(origin, "sender", exc.text, detail, throttle=False)
            return answer(exc.ack_code, exc.text, exc)
        except ControlIdReused as exc:
            log.warning("ADT %s from %s refused: %s", header.control_id if header else "?", origin, exc.text)
            detail = {"control_id": header.control_id, "event": header.trigger} if header else {}
            self.audit_refusal(origin, "control id", exc.text, detail, throttle=False)
            return answer(exc.ack_code, exc.text, exc)
        except AdtError as exc:
            log.info("ADT %s %s: %s", header.control_id if header else "?", exc.ack_code, exc.text)
            return answer(exc.ack_code, exc.text, exc)
        except Exception:  # noqa: BLE001 - a database outage or a bug: answer AE, keep listening
            log.exception("ADT message %s could not be applied", header.control_id if header else "?")
            failure = error(INTERNAL_ERROR, "internal error: the message was not applied (see the Areya log)")
            return answer("AE", failure.text, failure)
        log.info("ADT %s %s: %s", header.control_id, event.event, outcome.text)
        return answer("AA", outcome.text)

    def audit_refusal(
        self, origin: Origin | None, stage: str, reason: str, detail: dict[str, Any] | None = None, *, throttle: bool
    ) -> None:
        """An ``adt.refused`` audit row naming the real peer (never fails the caller: a failure is logged).
        ``throttle``: connection-level refusals write one row per address and stage a minute (a port scan
        must not flood the audit trail); the rest are logged only."""
        origin = origin or Origin("?")
        if throttle:
            key, now = (origin.host, stage), time.monotonic()
            last = self._refusals.get(key)
            if last is not None and now - last < REFUSAL_AUDIT_EVERY_S:
                log.info(
                    "ADT connection from %s refused (%s): %s (audited less than a minute ago)",
                    origin.peer,
                    stage,
                    reason,
                )
                return
            self._refusals[key] = now
            if len(self._refusals) > 10_000:
                self._refusals.clear()
        actor = Actor(None, f"adt-peer:{origin.host}", context=origin.context())
        try:
            with session_scope(self.factory, write=True) as session:
                record(
                    session,
                    actor,
                    "adt.refused",
                    target=f"adt-peer:{origin.host}",
                    detail={"stage": stage, "reason": reason, **(detail or {})},
                )
        except Exception:  # noqa: BLE001 - the refusal stands; the audit failure is logged
            log.exception("ADT refusal from %s could not be audited", origin.peer)


def access_policy(settings: Settings) -> AccessPolicy:
    return AccessPolicy.from_lists(
        settings.adt_allowed_networks, settings.adt_allowed_senders, settings.adt_tls_client_names
    )


def server_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The listener's TLS context (None: plain TCP); with ``adt_tls_client_ca`` every client must present a
    certificate signed by that CA (mutual TLS)."""
    if not settings.adt_tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.adt_tls_cert, settings.adt_tls_key or None)
    if settings.adt_tls_client_ca:
        context.load_verify_locations(cafile=settings.adt_tls_client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class AdtListener:
    """MLLP over TCP (optionally TLS) on ``host:port`` (port 0: a free one, see :attr:`port`)."""

    def __init__(
        self,
        processor: AdtProcessor,
        host: str = "127.0.0.1",
        port: int = 2575,
        ssl_context: ssl.SSLContext | None = None,
        *,
        max_message_bytes: int = MAX_BLOCK,
        idle_timeout: float = 1800.0,
        max_connections: int = 8,
    ) -> None:
        self.processor = processor
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.max_message_bytes = max_message_bytes
        self.idle_timeout = idle_timeout  # seconds without a byte before a connection is closed; 0 = never
        self.max_connections = max_connections
        self._connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None

    async def _refuse(self, writer: asyncio.StreamWriter, origin: Origin, stage: str, reason: str) -> None:
        log.warning("ADT connection from %s refused (%s): %s", origin.peer, stage, reason)
        writer.transport.abort()  # nothing is read or answered
        await asyncio.to_thread(self.processor.audit_refusal, origin, stage, reason, throttle=True)

    @classmethod
    def from_settings(
        cls,
        processor: AdtProcessor,
        settings: Settings,
        host: str | None = None,
        port: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> AdtListener:
        return cls(
            processor,
            settings.adt_host if host is None else host,
            settings.adt_port if port is None else port,
            ssl_context,
            max_message_bytes=settings.adt_max_message_bytes,
            idle_timeout=settings.adt_idle_timeout_s,
            max_connections=settings.adt_max_connections,
        )

    async def _admit(self, writer: asyncio.StreamWriter, origin: Origin) -> Origin | None:
        """The connection's origin once the connection cap (and with TLS the handshake and the client
        certificate) let it in; None when it was refused (closed unanswered, audited)."""
        if self._connections > self.max_connections:  # this one included
            open_now = self._connections - 1
            await self._refuse(writer, origin, "connection limit", f"{open_now} connections open (adt_max_connections)")
            return None
        if self.ssl_context is None:
            return origin
        handshake = min(HANDSHAKE_TIMEOUT_S, self.idle_timeout or HANDSHAKE_TIMEOUT_S)
        try:  # at once: the client's TLS hello must reach the TLS layer, not the plain stream
            await writer.start_tls(self.ssl_context, ssl_handshake_timeout=handshake)
        except (ssl.SSLError, OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            stage = "client certificate" if self.ssl_context.verify_mode == ssl.CERT_REQUIRED else "tls"
            await self._refuse(writer, origin, stage, f"TLS handshake failed: {exc}")
            return None
        peercert = writer.get_extra_info("peercert")
        refusal = self.processor.access.certificate_refusal(peercert)
        names = certificate_names(peercert)
        origin = Origin(origin.peer, names[0] if names else "")
        if refusal is not None:
            await self._refuse(writer, origin, "client certificate", refusal)
            return None
        return origin

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        origin = Origin.of(writer.get_extra_info("peername"))
        refusal = self.processor.access.network_refusal(origin.host)
        if refusal is not None:  # before anything else: no TLS handshake, no slot for an outsider
            await self._refuse(writer, origin, "network", refusal)
            return
        self._connections += 1  # counted from here (no await in between), released in finally
        try:
            admitted = await self._admit(writer, origin)
            if admitted is not None:
                await self._serve_connection(reader, writer, admitted)
        finally:
            self._connections -= 1

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, origin: Origin
    ) -> None:
        log.info("ADT connection from %s%s", origin.peer, f" ({origin.client_cert})" if origin.client_cert else "")
        blocks = BlockReader(reader, self.max_message_bytes, self.idle_timeout)
        try:
            while (block := await blocks.next()) is not None:
                if block.noise:
                    log.warning("ADT %s: %d bytes outside an MLLP block skipped", origin.peer, block.noise)
                if block.kind == "message":
                    result = await asyncio.to_thread(self.processor.handle, block.data, origin)
                    writer.write(START_BLOCK + result.data + END_BLOCK + CARRIAGE_RETURN)
                else:  # one AR per dropped block, naming the message if its MSH could be read
                    if block.kind == "oversize":
                        why = f"message of {block.size} bytes is over adt_max_message_bytes ({self.max_message_bytes})"
                    else:
                        why = "not an MLLP block: no <VT> before <FS><CR>"
                    failure = reject(SEGMENT_SEQUENCE, why, "MSH" if block.kind == "oversize" else "")
                    log.warning("ADT %s: %s", origin.peer, why)
                    header = _header_of(block.data) if block.kind == "oversize" else None
                    ack = build_ack(header, "AR", failure.text, failure, application=self.processor.ack_application)
                    writer.write(_framed(ack))
                await writer.drain()
        except IdleTimeout:
            log.info("ADT connection from %s closed: idle for %s s", origin.peer, self.idle_timeout)
        except (ConnectionError, ssl.SSLError) as exc:
            log.info("ADT connection from %s ended: %s", origin.peer, exc)
        finally:
            writer.close()

    async def serve(self) -> None:
        """Serve until :meth:`stop` (or cancellation)."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # TLS per connection (after the network check, so refused peers get no handshake and failed handshakes
        # are audited): see _admit
        server = await asyncio.start_server(self._client, self.host, self.port)
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


def _framed(ack: str) -> bytes:
    return START_BLOCK + ack.encode(ENCODING) + END_BLOCK + CARRIAGE_RETURN


def _header_of(raw: str | bytes) -> Header | None:
    """The MSH of a message that could not be decoded or parsed, as far as it can be read (for the ACK's MSA-2
    and addressing); None if not even that."""
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    try:
        return read_header(parse_message(text))
    except Exception:  # noqa: BLE001 - nothing readable: the ACK goes without it
        return None
