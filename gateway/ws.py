"""The trading WebSocket (`websockets`): auth, per-connection bounds, request dispatch.

Bounds: frames over `frame_bytes_max` close the connection (1009, by websockets itself);
messages beyond a token bucket get RATE_LIMITED, and a client that keeps flooding is closed
(4029); at most `inflight_max` requests per connection are in progress (reading pauses beyond
it); the send queue is bounded (see session.py). Auth must be the first frame, within
`auth_timeout_s`, never a token in the URL (4001 on failure).
"""

import asyncio
import collections
import logging
import socket
import time
from collections.abc import Callable
from http import HTTPStatus

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from engine import commands as c
from engine.rejections import Code

from .auth import AuthError, verify
from .ops import Ops
from .fast_requests import order_command
from .protocol import Auth, ProtocolError, load_object, parse, parse_object
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


class TradingConnection(ServerConnection):
    """websockets' server connection, except that once `on_message` is set every data message
    goes to it the moment the library has parsed it, inside `data_received`: no queue in the
    library's `Assembler`, no reader task woken per message (about 5 us of an order's 35 us
    server CPU went there). Control frames and the closing handshake stay the library's."""

    on_message: Callable[[bytes], None] | None = None
    _fragments: list[bytes] | None = None

    def process_event(self, event) -> None:
        on_message = self.on_message
        if on_message is None or not isinstance(event, Frame):
            super().process_event(event)
            return
        opcode = event.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:  # text is UTF-8 checked already
            if event.fin:
                on_message(event.data)
            else:
                self._fragments = [event.data]
        elif opcode is Opcode.CONT:
            self._fragments.append(event.data)  # the protocol refuses a CONT out of sequence
            if event.fin:
                data, self._fragments = b"".join(self._fragments), None
                on_message(data)
        else:
            super().process_event(event)


class TradingSocket:
    def __init__(self, exchange, hub) -> None:
        self.exchange = exchange
        self.hub = hub
        self.settings = exchange.settings
        self.metrics = exchange.metrics
        self.ops = Ops(exchange, hub)
        self.server = None
        self.origins = set(self.settings.allowed_origins)
        self.handling: set[asyncio.Task] = set()  # the tasks of non-order ops, kept referenced

    async def start(self) -> None:
        s = self.settings
        self.server = await serve(self._handle, s.host, s.ws_port, max_size=s.frame_bytes_max,
                                  process_request=self._check_request,
                                  compression=None, max_queue=16, ping_interval=20,
                                  ping_timeout=20, create_connection=TradingConnection)

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

    async def _serve(self, ws: TradingConnection, session: Session) -> None:
        """Serve requests until the connection closes. Frames that came in with the auth frame
        sit in the library's queue: they are taken first, then every later one is handled as
        it is parsed (TradingConnection.on_message)."""
        reader = _Reader(self, ws, session)
        while len(ws.recv_messages.frames):
            reader.on_message(await ws.recv(decode=False))
        ws.on_message = reader.on_message
        await ws.wait_closed()

    async def _close_for_flooding(self, ws, session: Session) -> None:
        if session.inflight:  # requests it made before the flood still get their answers
            try:
                async with asyncio.timeout(0.2):
                    await session.wait_for_room(1)
            except TimeoutError:
                pass
        await session.drain(0.2)
        session.stop()
        await self._close_flooder(ws)

    @staticmethod
    async def _close_flooder(ws) -> None:
        """Close 4029 without a 10 s stall: what it sent is read and dropped meanwhile (reading
        resumed if it was paused), so the close reply behind it gets through."""
        ws.on_message = _discard
        ws.transport.resume_reading()
        closing = asyncio.create_task(ws.close(CLOSE_RATE, "rate limit exceeded"))
        try:
            async with asyncio.timeout(2.0):
                await asyncio.shield(closing)
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


def _discard(data: bytes) -> None:
    pass


class _Reader:
    """One connection's requests, handled as each message is parsed: rate limit, parse,
    dispatch. At most INFLIGHT_MAX requests are in progress: beyond that, reading pauses and
    the messages already read wait here, in order, until answers make room."""

    __slots__ = ("socket", "ws", "session", "bucket", "refused", "waiting", "resuming")

    def __init__(self, socket: TradingSocket, ws: TradingConnection, session: Session) -> None:
        settings = socket.settings
        self.socket = socket
        self.ws = ws
        self.session = session
        self.bucket = TokenBucket(settings.messages_per_s_max, settings.message_burst_max)
        self.refused = 0
        self.waiting: collections.deque[bytes] = collections.deque()
        self.resuming: asyncio.Task | None = None

    def on_message(self, data: bytes) -> None:
        if self.waiting or self.session.inflight >= INFLIGHT_MAX:
            self.waiting.append(data)
            self._pause()
            return
        self._handle(data)

    def _handle(self, data: bytes) -> None:
        session = self.session
        bucket = self.bucket
        if not bucket.take():
            self.refused += 1
            if self.refused > bucket.burst:
                self.ws.on_message = _discard
                self.waiting.clear()
                asyncio.get_running_loop().create_task(
                    self.socket._close_for_flooding(self.ws, session))
                return
            session.push({"op": "error", "id": None, "code": Code.RATE_LIMITED,
                          "message": "too many messages: slow down"}, droppable=True)
            return
        if bucket.tokens >= bucket.burst / 2:
            self.refused = 0  # calmed down: a token trickling in mid-flood does not count
        ops = self.socket.ops
        try:
            obj = load_object(data)
            # the order ops skip their model when every rule checks out by hand
            order = order_command(obj, session.user)
            if order is not None:
                session.asked()  # answered() when its Reply is sent
                ops.submit_order(session, *order)
                return
            req = parse_object(obj)
        except ProtocolError as err:
            session.push({"op": "error", "id": err.request_id, "code": str(err.code),
                          "message": err.message})
            return
        session.asked()
        # Orders are submitted right now, without a task; other ops run in a task whose
        # handler submits before its first await. Either way requests reach the sequencer
        # in arrival order.
        if not ops.submit_now(session, req):
            task = asyncio.get_running_loop().create_task(ops.handle(session, req))
            self.socket.handling.add(task)
            task.add_done_callback(self.socket.handling.discard)

    def _pause(self) -> None:
        if self.resuming is None:
            self.ws.transport.pause_reading()
            self.resuming = asyncio.get_running_loop().create_task(self._resume())

    async def _resume(self) -> None:
        """Take the waiting messages as answers make room, then read again."""
        session = self.session
        try:
            while self.waiting:
                await session.wait_for_room()
                while self.waiting and session.inflight < INFLIGHT_MAX:
                    self._handle(self.waiting.popleft())
        finally:
            self.resuming = None
            if not self.ws.transport.is_closing():
                self.ws.transport.resume_reading()
