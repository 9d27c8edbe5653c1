"""MLLP framing on a real connection: one ACK per block however large, resynchronisation on <VT> after noise, a
size cap answered with AR, an idle timeout and a cap on open connections."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest
from adt_helpers import ack_fields, adt, audit_rows, bed_of, state
from sqlalchemy.orm import Session

from areya.config import Settings
from areya.integrations.hl7.locations import LocationMap
from areya.integrations.hl7.mllp import MllpClient, frame
from areya.integrations.hl7.service import AdtListener, AdtProcessor


@pytest.fixture
def listener(processor: AdtProcessor) -> Iterator[AdtListener]:
    running = AdtListener(processor, "127.0.0.1", 0).start()  # the default cap: 1 MiB
    yield running
    running.stop()


def padded(message: str, size: int) -> str:
    """The message with an NTE segment that makes it ``size`` bytes long."""
    return message + "\rNTE|1||" + "x" * (size - len(message) - 8)


def test_a_block_over_the_cap_gets_exactly_one_ar(listener: AdtListener, session: Session) -> None:
    before = state(session)
    with MllpClient("127.0.0.1", listener.port, timeout=60) as client:
        big = padded(adt("A01", "BIG1", location="ICU^101^A"), 3 << 20)  # 3 MiB: before, one ACK per ~MiB
        fields = ack_fields(client.send(big))
        assert fields["code"] == "AR" and fields["error_code"] == "100", fields
        assert "over adt_max_message_bytes (1048576)" in fields["error"]
        assert fields["control_id"] == "BIG1"  # read from the head of the dropped block
        # the next message's ACK is its own: no stale ACKs of the big block are queued on the connection
        after = ack_fields(client.send(adt("A01", "OK1", location="ICU^101^A")))
        assert after["code"] == "AA" and after["control_id"] == "OK1", after
    assert bed_of(session, "MRN001") == "ICU/1"
    changed = ("patients", "bed_assignments", "encounters", "adt_messages")  # OK1's admission
    assert {k: v for k, v in state(session).items() if k not in changed} == {
        k: v for k, v in before.items() if k not in changed
    }


def test_a_message_just_under_the_cap_is_applied(processor: AdtProcessor, session: Session) -> None:
    listener = AdtListener(processor, "127.0.0.1", 0, max_message_bytes=64 * 1024).start()
    try:
        with MllpClient("127.0.0.1", listener.port, timeout=30) as client:
            fields = ack_fields(client.send(padded(adt("A01", "C1", location="ICU^101^A"), 64 * 1024)))
            assert fields["code"] == "AA", fields
            over = ack_fields(client.send(padded(adt("A01", "C2", mrn="MRN002"), 64 * 1024 + 1)))
            assert over["code"] == "AR" and over["control_id"] == "C2" and "65537 bytes" in over["error"]
    finally:
        listener.stop()


def test_noise_before_a_block_is_skipped(listener: AdtListener, session: Session) -> None:
    with MllpClient("127.0.0.1", listener.port, timeout=30) as client:
        # line noise, then the message: the listener resynchronises on <VT>
        fields = ack_fields(client.send_raw(b"\x00\xff garbage \r\n" + frame(adt("A01", "N1", location="ICU^101^A"))))
        assert fields["code"] == "AA" and fields["control_id"] == "N1", fields
        # the tail of a block whose start was lost, then a whole block: one AR for the tail, then the AA
        unframed = ack_fields(client.send_raw(b"PV1|1|I|ICU^101^A\x1c\r"))
        assert unframed["code"] == "AR" and "no <VT>" in unframed["error"]
        # a block broken off (its sender restarted it): the restarted one is read whole
        restarted = b"\x0bMSH|^~\\&|PAS|GENH" + frame(adt("A08", "N2", name="King^Ada"))
        assert ack_fields(client.send_raw(restarted))["control_id"] == "N2"
    assert bed_of(session, "MRN001") == "ICU/1"


def test_an_idle_connection_is_closed(processor: AdtProcessor) -> None:
    listener = AdtListener(processor, "127.0.0.1", 0, idle_timeout=1).start()
    try:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as raw:
            started = time.monotonic()
            assert raw.recv(1) == b""  # closed by the listener
            assert 0.5 < time.monotonic() - started < 20
        with MllpClient("127.0.0.1", listener.port, timeout=30) as client:  # a new connection is served
            assert ack_fields(client.send(adt("A01", "I1")))["code"] == "AA"
    finally:
        listener.stop()


def test_connections_over_the_cap_are_closed(processor: AdtProcessor, session: Session) -> None:
    listener = AdtListener(processor, "127.0.0.1", 0, max_connections=1).start()
    try:
        with MllpClient("127.0.0.1", listener.port, timeout=30) as first:
            assert ack_fields(first.send(adt("A01", "K1", location="ICU^101^A")))["code"] == "AA"
            with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as second:
                second.sendall(frame(adt("A01", "K2", mrn="MRN002", location="ICU^102^A")))
                with contextlib.suppress(ConnectionResetError):
                    assert second.recv(1024) == b""  # closed unanswered, nothing applied
            assert ack_fields(first.send(adt("A08", "K3", name="King^Ada")))["code"] == "AA"
        (refused,) = audit_rows(session, "adt.refused")
        assert refused["stage"] == "connection limit" and refused["peer"].startswith("127.0.0.1:")
        for _ in range(50):  # the first connection's slot is released once it is closed
            try:
                with MllpClient("127.0.0.1", listener.port, timeout=30) as third:
                    assert ack_fields(third.send(adt("A01", "K4", mrn="MRN002", location="ICU^102^A")))["code"] == "AA"
                break
            except (ConnectionError, OSError):
                time.sleep(0.1)
        assert bed_of(session, "MRN002") == "ICU/2"
    finally:
        listener.stop()


def test_framing_settings(settings: Settings) -> None:
    assert (settings.adt_max_message_bytes, settings.adt_idle_timeout_s, settings.adt_max_connections) == (
        1 << 20,
        1800,
        8,
    )
    configured = settings.replace(adt_max_message_bytes=4 << 20, adt_idle_timeout_s=0, adt_max_connections=2)
    listener = AdtListener.from_settings(AdtProcessor(None, LocationMap()), configured, port=0)  # type: ignore[arg-type]
    assert (listener.max_message_bytes, listener.idle_timeout, listener.max_connections) == (4 << 20, 0, 2)
