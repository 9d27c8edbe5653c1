"""MLLP framing (``<VT> message <FS><CR>``): the server side uses the ``hl7`` package's asyncio streams, the
blocking client below its framing bytes."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable, Iterator

from hl7.mllp.streams import CARRIAGE_RETURN, END_BLOCK, START_BLOCK

from areya.integrations.hl7.charsets import decode_lenient

ENCODING = "utf-8"
MAX_BLOCK = 1 << 20  # one message; a longer block is refused


class MllpError(ConnectionError):
    """The peer closed the connection or sent something that is not an MLLP block."""


def frame(message: str | bytes) -> bytes:
    """One MLLP block: text is sent as UTF-8, bytes as they are (a message in its MSH-18 character set)."""
    data = message.encode(ENCODING) if isinstance(message, str) else message
    return START_BLOCK + data + END_BLOCK + CARRIAGE_RETURN


class MllpClient:
    """A blocking MLLP client: one message out, its ACK back (in order, on one connection)."""

    def __init__(
        self, host: str, port: int, *, timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        self._sock: socket.socket = ssl_context.wrap_socket(sock, server_hostname=host) if ssl_context else sock
        self._buffer = b""

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def send_raw(self, data: bytes) -> str:
        """Send bytes as they are (already framed, or deliberately broken) and read one block back."""
        self._sock.sendall(data)
        return self.read_block()

    def send(self, message: str | bytes) -> str:
        return self.send_raw(frame(message))

    def read_block(self) -> str:
        terminator = END_BLOCK + CARRIAGE_RETURN
        while terminator not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise MllpError("connection closed before a complete MLLP block arrived")
            self._buffer += chunk
            if len(self._buffer) > MAX_BLOCK:
                raise MllpError("MLLP block too long")
        block, _, self._buffer = self._buffer.partition(terminator)
        if not block.startswith(START_BLOCK):
            raise MllpError("MLLP block does not start with <VT>")
        return decode_lenient(block[1:])  # by the ACK's MSH-18


def send_messages(
    host: str,
    port: int,
    messages: Iterable[str | bytes],
    *,
    timeout: float = 30.0,
    ssl_context: ssl.SSLContext | None = None,
) -> Iterator[tuple[str | bytes, str]]:
    """(message, ACK) for each message, sent one after another over one connection."""
    with MllpClient(host, port, timeout=timeout, ssl_context=ssl_context) as client:
        for message in messages:
            yield message, client.send(message)
