"""What the trading gateway needs of a WebSocket library: a `Link` per connection.

Everything above the link (gateway/connection.py, session.py, ops.py, hub.py) is the protocol of
docs/protocol.md and knows no library. A server's data frames are unmasked, so the session
frames them itself (`session.text_frame`) and writes a loop turn's frames in one write straight
to the transport, the same bytes for every subscriber of a market; the library parses incoming
frames, does the opening and closing handshakes and answers pings. Two libraries carry it:
picows (gateway/ws_picows.py, the default: its frame parser is C) and websockets
(gateway/ws_websockets.py); `BACKLAY_WS_SERVER` chooses, and both run the same tests.
"""

import asyncio
from typing import Protocol


def is_utf8(data: bytes) -> bool:
    """A text message must be UTF-8 (RFC 6455 8.1: else the server closes with 1007). Both
    servers hand the gateway raw bytes; ASCII, nearly every frame, needs no decode."""
    if data.isascii():
        return True
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


class Link(Protocol):
    @property
    def transport(self) -> asyncio.Transport:
        """The transport under the WebSocket: framed bytes are written here, reading paused
        and resumed here."""

    def is_open(self) -> bool:
        """Handshake done, and no close frame sent or received: data frames may be written."""

    async def drain(self) -> None:
        """Until the transport's buffer is back under its high-water mark."""

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake with `code` (idempotent); the library ends the TCP
        connection once the peer answers, or after a timeout."""

    def abort(self) -> None:
        """Drop the TCP connection now, no handshake."""

    async def wait_closed(self) -> None:
        """Until the connection is gone."""

    async def ping(self) -> None:
        """Send a ping and return when its pong arrives; ConnectionError if the connection
        closes first."""
