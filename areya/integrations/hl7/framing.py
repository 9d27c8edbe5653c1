"""Reading MLLP blocks (``<VT> message <FS><CR>``) off a connection, robustly: bytes before a ``<VT>`` (noise, the
tail of a broken block) are skipped, so the next well-framed message is still read; a block longer than the size
cap is discarded as it streams in (memory stays bounded) and reported once, so its sender gets exactly one ACK;
a terminated run of bytes with no ``<VT>`` at all is reported as not a block. Every read waits at most the idle
timeout."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

START = b"\x0b"
TERMINATOR = b"\x1c\r"
CHUNK = 64 * 1024
HEAD = 4096  # kept of an oversize or unframed block: enough for its MSH (the ACK's MSA-2)


@dataclass(frozen=True)
class Block:
    kind: str  # "message", "oversize" (longer than the cap: discarded), "unframed" (no <VT> before <FS><CR>)
    data: bytes  # the message; for oversize / unframed the first HEAD bytes of what was dropped
    size: int  # the block's length in bytes (oversize: at least the cap)
    noise: int = 0  # bytes skipped before the block's <VT>


class IdleTimeout(Exception):
    """Nothing arrived for the idle timeout."""


class BlockReader:
    def __init__(self, reader: asyncio.StreamReader, max_bytes: int, idle_timeout: float | None) -> None:
        self._reader = reader
        self._max = max_bytes
        self._idle = idle_timeout or None
        self._buffer = bytearray()
        self._skipped = 0  # noise dropped before the block being read

    async def _read(self) -> bytes:
        try:
            return await asyncio.wait_for(self._reader.read(CHUNK), self._idle)
        except TimeoutError:
            raise IdleTimeout from None

    async def next(self) -> Block | None:
        """The next block; None when the sender closed the connection (a partial block is dropped)."""
        while True:
            end = self._buffer.find(TERMINATOR)
            if end >= 0:
                chunk = bytes(self._buffer[:end])
                del self._buffer[: end + len(TERMINATOR)]
                start = chunk.rfind(START)
                noise, self._skipped = self._skipped + max(start, 0), 0
                if start < 0:
                    return Block("unframed", chunk[:HEAD], len(chunk), noise)
                message = chunk[start + 1 :]
                if len(message) > self._max:
                    return Block("oversize", message[:HEAD], len(message), noise)
                return Block("message", message, len(message), noise)
            start = self._buffer.rfind(START)
            pending = len(self._buffer) - (start + 1 if start >= 0 else 0)
            if pending > self._max:
                return await self._discard(start)
            if start > 0:  # noise before the <VT>: not needed any more
                self._skipped += start
                del self._buffer[:start]
            elif start < 0 and len(self._buffer) > HEAD:  # no block yet: keep only a tail of the noise
                self._skipped += len(self._buffer) - HEAD
                del self._buffer[: len(self._buffer) - HEAD]
            data = await self._read()
            if not data:
                return None
            self._buffer += data

    async def _discard(self, start: int) -> Block | None:
        """The block being read is over the cap: drop it up to its terminator (bounded memory)."""
        kind = "oversize" if start >= 0 else "unframed"
        self._skipped = 0
        del self._buffer[: start + 1 if start >= 0 else 0]  # now only the block's own bytes
        head, size = bytes(self._buffer[:HEAD]), 0
        while True:
            end = self._buffer.find(TERMINATOR)
            if end >= 0:
                del self._buffer[: end + len(TERMINATOR)]
                return Block(kind, head, size + end)
            keep = 1 if self._buffer.endswith(TERMINATOR[:1]) else 0  # a terminator split across reads
            size += len(self._buffer) - keep
            del self._buffer[: len(self._buffer) - keep]
            data = await self._read()
            if not data:
                return None
            self._buffer += data
