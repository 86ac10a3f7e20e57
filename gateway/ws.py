"""The trading WebSocket: which library serves it, and what every connection shares.

Bounds (enforced in gateway/connection.py and session.py, the same on either library): frames
and messages over `frame_bytes_max` close the connection (1009); messages beyond a token bucket
get RATE_LIMITED, and a client that keeps flooding is closed (4029); at most `inflight_max`
requests per connection are in progress (reading pauses beyond it); the send queue is bounded;
at most `connections_max` connections (1013 beyond). Auth must be the first frame, within
`auth_timeout_s`, never a token in the URL (4001 on failure). Only `/ws` is served (404), and a
browser only from an allowed origin (403).

`settings.ws_server` picks the library: "picows" (gateway/ws_picows.py, the default) or
"websockets" (gateway/ws_websockets.py); the tests run the protocol against both.
"""

import asyncio
import socket as sockets
from http import HTTPStatus

from .ops import Ops

KERNEL_SEND_BUFFER_BYTES = 64 * 1024


class TradingSocket:
    def __init__(self, exchange, hub, ops=None) -> None:
        self.exchange = exchange
        self.hub = hub
        self.settings = exchange.settings
        self.metrics = exchange.metrics
        # the split shape's gateways answer what they can and send the rest to the engine
        # (gateway/split/gateway_ops.py)
        self.ops = ops if ops is not None else Ops(exchange, hub)
        self.origins = set(self.settings.allowed_origins)
        self.handling: set[asyncio.Task] = set()  # the tasks of non-order ops, kept referenced
        if self.settings.ws_server == "websockets":
            from .ws_websockets import WebsocketsServer as server
        else:
            from .ws_picows import PicowsServer as server
        self.server = server(self)

    async def start(self) -> None:
        await self.server.start()

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self) -> None:
        for session in list(self.hub.sessions):
            await session.drain(0.5)
        await self.server.stop()

    def allow_origin(self, origin: str) -> None:
        """Admit browsers from `origin` too (the server's own HTTP origin, for /ops)."""
        self.origins.add(origin)

    def refusal(self, path: str, origin: str | None) -> tuple[HTTPStatus, str] | None:
        """Why an opening handshake is refused (HTTP status and text), or None."""
        if path != "/ws":
            return HTTPStatus.NOT_FOUND, "the trading WebSocket is at /ws\n"
        # no Origin: a trading tool or Locust, not a browser; browsers always send one
        if origin is not None and origin not in self.origins:
            return HTTPStatus.FORBIDDEN, f"origin {origin} not allowed\n"
        return None

    def full(self) -> bool:
        return len(self.hub.sessions) >= self.settings.connections_max

    @staticmethod
    def cap_kernel_buffer(transport) -> None:
        """A client that stops reading should fill our bounded send queue, where market data is
        dropped and replaced by a fresh image, not megabytes of kernel buffer first."""
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(sockets.SOL_SOCKET, sockets.SO_SNDBUF, KERNEL_SEND_BUFFER_BYTES)
