"""The trading WebSocket (`websockets`): auth, per-connection bounds, request dispatch.

Bounds: frames over `frame_bytes_max` close the connection (1009, by websockets itself);
messages beyond a token bucket get RATE_LIMITED, and a client that keeps flooding is closed
(4029); at most `inflight_max` requests per connection are in progress (reading pauses beyond
it); the send queue is bounded (see session.py). Auth must be the first frame, within
`auth_timeout_s`, never a token in the URL (4001 on failure).
"""

import asyncio
import logging
import socket
import time
from http import HTTPStatus

import orjson
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from engine import commands as c
from engine.rejections import Code

from .auth import AuthError, verify
from .ops import Ops
from .protocol import Auth, ProtocolError, parse
from .session import INFLIGHT_MAX, Session

log = logging.getLogger(__name__)

CLOSE_AUTH = 4001
CLOSE_RATE = 4029
KERNEL_SEND_BUFFER_BYTES = 64 * 1024


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "at")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class TradingSocket:
    def __init__(self, exchange, hub) -> None:
        self.exchange = exchange
        self.hub = hub
        self.settings = exchange.settings
        self.metrics = exchange.metrics
        self.ops = Ops(exchange, hub)
        self.server = None
        self.origins = set(self.settings.allowed_origins)

    async def start(self) -> None:
        s = self.settings
        self.server = await serve(self._handle, s.host, s.ws_port, max_size=s.frame_bytes_max,
                                  process_request=self._check_request,
                                  compression=None, max_queue=16, ping_interval=20,
                                  ping_timeout=20)

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            for session in list(self.hub.sessions):
                await session.drain(0.5)
            self.server.close()  # closes every connection with 1001 (going away)
            await self.server.wait_closed()

    def allow_origin(self, origin: str) -> None:
        """Admit browsers from `origin` too (the server's own HTTP origin, for /ops)."""
        self.origins.add(origin)

    def _check_request(self, connection, request):
        if request.path != "/ws":
            return connection.respond(HTTPStatus.NOT_FOUND, "the trading WebSocket is at /ws\n")
        # no Origin: a trading tool or Locust, not a browser; browsers always send one
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.origins:
            return connection.respond(HTTPStatus.FORBIDDEN, f"origin {origin} not allowed\n")
        return None

    async def _handle(self, ws) -> None:
        if len(self.hub.sessions) >= self.settings.connections_max:
            await ws.close(1013, "too many connections")
            return
        self._cap_kernel_buffer(ws)
        session = Session(ws, self.settings.send_queue_max, on_sent=self.metrics.message_sent)
        self.metrics.connections.inc()
        liveness = None
        try:
            if await self._authenticate(ws, session):
                self.hub.add(session)
                if session.cancel_on_disconnect:
                    liveness = asyncio.create_task(self._check_alive(ws))
                await self._serve(ws, session)
        except ConnectionClosed:
            pass
        finally:
            if liveness is not None:
                liveness.cancel()
            self.hub.remove(session)
            session.stop()
            self.metrics.connections.dec()
            if session.cancel_on_disconnect and session.placed:
                asyncio.get_running_loop().create_task(self._dead_man(session))

    @staticmethod
    def _cap_kernel_buffer(ws) -> None:
        """A client that stops reading should fill our bounded send queue, where market data is
        dropped and replaced by a fresh image, not megabytes of kernel buffer first."""
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_SEND_BUFFER_BYTES)

    async def _authenticate(self, ws, session: Session) -> bool:
        async def refuse(request_id, message: str) -> bool:
            await ws.send(orjson.dumps({"op": "error", "id": request_id,
                                        "code": Code.UNAUTHENTICATED,
                                        "message": message}).decode())
            await ws.close(CLOSE_AUTH, "authentication failed")
            return False

        try:
            async with asyncio.timeout(self.settings.auth_timeout_s):
                frame = await ws.recv()
        except TimeoutError:
            return await refuse(None, f"send auth within {self.settings.auth_timeout_s:g} s")
        try:
            req = parse(frame)
        except ProtocolError as err:
            return await refuse(err.request_id, f"the first frame must be auth: {err.message}")
        if not isinstance(req, Auth):
            return await refuse(req.id, "the first frame must be auth")
        try:
            identity = verify(req.token, self.settings.jwt_secret, self.settings.jwt_public_key)
        except AuthError as err:
            return await refuse(req.id, str(err))
        session.user, session.roles = identity.user, identity.roles
        session.cancel_on_disconnect = req.cancel_on_disconnect
        session.push({"op": "authed", "id": req.id, "user": identity.user,
                      "roles": list(identity.roles)})
        return True

    async def _serve(self, ws, session: Session) -> None:
        bucket = TokenBucket(self.settings.messages_per_s_max, self.settings.message_burst_max)
        ops = self.ops
        handling: set[asyncio.Task] = set()  # the tasks of non-order ops, kept referenced
        refused = 0
        async for frame in ws:
            if not bucket.take():
                refused += 1
                if refused > self.settings.message_burst_max:
                    if session.inflight:  # requests it made before the flood get their answers
                        try:
                            async with asyncio.timeout(0.2):
                                await session.wait_for_room(1)
                        except TimeoutError:
                            pass
                    await session.drain(0.2)
                    session.stop()
                    await self._close_flooder(ws)
                    return
                session.push({"op": "error", "id": None, "code": Code.RATE_LIMITED,
                              "message": "too many messages: slow down"}, droppable=True)
                continue
            if bucket.tokens >= bucket.burst / 2:
                refused = 0  # calmed down: a token trickling in mid-flood does not count
            try:
                req = parse(frame)
            except ProtocolError as err:
                session.push({"op": "error", "id": err.request_id, "code": str(err.code),
                              "message": err.message})
                continue
            if session.inflight >= INFLIGHT_MAX:
                await session.wait_for_room()
            session.asked()  # answered() when its Reply is sent
            # Orders are submitted right now, without a task; other ops run in a task whose
            # handler submits before its first await. Either way requests reach the sequencer
            # in arrival order.
            if not ops.submit_now(session, req):
                task = asyncio.create_task(ops.handle(session, req))
                handling.add(task)
                task.add_done_callback(handling.discard)

    @staticmethod
    async def _close_flooder(ws) -> None:
        """Close 4029 without a 10 s stall: the frames it already sent sit unread ahead of its
        close reply (reading is paused), so read past them, discarding, for a bounded time."""
        closing = asyncio.create_task(ws.close(CLOSE_RATE, "rate limit exceeded"))
        try:
            async with asyncio.timeout(2.0):
                async for _ in ws:
                    pass
        except (ConnectionClosed, TimeoutError):
            pass
        if not closing.done():
            ws.transport.abort()
        await asyncio.gather(closing, return_exceptions=True)

    async def _check_alive(self, ws) -> None:
        """For dead-man connections: a silent drop (no FIN, no RST) must be noticed within a
        second, not after the server-wide ping timeout, so ping every interval and close when
        a pong is late."""
        every_s = self.settings.cancel_on_disconnect_ms / 1000
        try:
            while True:
                await asyncio.sleep(every_s)
                async with asyncio.timeout(every_s):
                    pong = await ws.ping()  # inside: sending waits too when it stopped reading
                    await pong
        except TimeoutError:
            # presumed dead: a closing handshake would wait close_timeout (10 s) for its reply
            ws.transport.abort()
        except (ConnectionClosed, asyncio.CancelledError):
            pass

    async def _dead_man(self, session: Session) -> None:
        """cancel_on_disconnect: cancel what this connection left resting (journaled)."""
        user, placed = session.user, list(session.placed)
        try:
            still_open = await self.exchange.read(
                lambda engine: [oid for oid in placed
                                if oid in engine.orders and engine.orders[oid].remaining])
            await asyncio.gather(*(self.exchange.submit(c.CancelOrder(user=user, order=oid))
                                   for oid in still_open))
        except Exception:
            log.exception("dead-man switch for %s failed", user)
