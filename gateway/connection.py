"""One trading connection's life, whatever WebSocket library carries it.

The library (gateway/ws_picows.py or gateway/ws_websockets.py) does the handshake, parses frames
and answers control frames; it hands every data message to `Connection.on_message` the moment it
is parsed, calls `on_open` once the handshake is done and `on_closed` when the connection is
gone, and gives the connection a `Link` (gateway/links.py) to write, drain and close through.

From there everything is here, once: auth must be the first frame, within `auth_timeout_s`
(4001 otherwise); then every message goes through the token bucket (RATE_LIMITED, and 4029 for
a client that keeps flooding), is parsed and dispatched, with at most INFLIGHT_MAX requests in
progress (reading pauses beyond it, and messages already read wait in order); the dead-man
switch (`cancel_on_disconnect`) pings and cancels what the connection left resting.
"""

import asyncio
import collections
import logging
import time

from engine import commands as c
from engine.rejections import Code

from .auth import AuthError, verify
from .fast_requests import order_command
from .protocol import Auth, ProtocolError, load_object, parse_object
from .session import INFLIGHT_MAX, Session

log = logging.getLogger(__name__)

CLOSE_AUTH = 4001
CLOSE_RATE = 4029
CLOSE_FULL = 1013  # try again later: connections_max reached
FLOODER_CLOSE_S = 2.0  # how long a flooder's close handshake may take before it is cut off


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


def _discard(data: bytes) -> None:
    pass


class Connection:
    """Auth, then requests, for one link. `socket` is the TradingSocket (settings, ops, hub,
    metrics, the exchange)."""

    def __init__(self, socket, link) -> None:
        self.socket = socket
        self.link = link
        settings = socket.settings
        self.session = Session(link, settings.send_queue_max, on_sent=socket.metrics.message_sent)
        self.on_message = self._authenticate  # until auth succeeds
        self._auth_timer: asyncio.TimerHandle | None = None
        self._liveness: asyncio.Task | None = None
        self._reader: _Reader | None = None
        self._tasks: set[asyncio.Task] = set()
        self.ended = False

    def on_open(self) -> None:
        self.socket.metrics.connections.inc()
        self._auth_timer = asyncio.get_running_loop().call_later(
            self.socket.settings.auth_timeout_s, self._auth_timed_out)

    def on_closed(self) -> None:
        """The connection is gone (closed or dropped): forget it, and run its dead-man switch."""
        if self.ended:
            return
        self.ended = True
        self.on_message = _discard
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        if self._liveness is not None:
            self._liveness.cancel()
        session = self.session
        self.socket.hub.remove(session)
        session.stop()
        self.socket.metrics.connections.dec()
        if session.cancel_on_disconnect and session.placed:
            self._spawn(self._dead_man(session))

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- auth ----------------------------------------------------------------------------------

    def _auth_timed_out(self) -> None:
        if self.on_message == self._authenticate:
            self._refuse(None, f"send auth within {self.socket.settings.auth_timeout_s:g} s")

    def _refuse(self, request_id, message: str) -> None:
        self.on_message = _discard
        self.session.push({"op": "error", "id": request_id, "code": Code.UNAUTHENTICATED,
                           "message": message})
        self.session.close(CLOSE_AUTH, "authentication failed")

    def _authenticate(self, data: bytes) -> None:
        settings = self.socket.settings
        try:
            req = parse_object(load_object(data))
        except ProtocolError as err:
            self._refuse(err.request_id, f"the first frame must be auth: {err.message}")
            return
        if not isinstance(req, Auth):
            self._refuse(req.id, "the first frame must be auth")
            return
        try:
            identity = verify(req.token, settings.jwt_secret, settings.jwt_public_key)
        except AuthError as err:
            self._refuse(req.id, str(err))
            return
        self._auth_timer.cancel()
        session = self.session
        session.user, session.roles = identity.user, identity.roles
        session.cancel_on_disconnect = req.cancel_on_disconnect
        self.socket.hub.add(session)
        session.push({"op": "authed", "id": req.id, "user": identity.user,
                      "roles": list(identity.roles)})
        if session.cancel_on_disconnect:
            self._liveness = asyncio.get_running_loop().create_task(self._check_alive())
        self._reader = _Reader(self)
        self.on_message = self._reader.on_message

    # -- flooding, liveness, dead-man -------------------------------------------------------

    def close_for_flooding(self) -> None:
        self.on_message = _discard
        self._reader.waiting.clear()
        self._spawn(self._close_flooder())

    async def _close_flooder(self) -> None:
        session = self.session
        if session.inflight:  # requests it made before the flood still get their answers
            try:
                async with asyncio.timeout(0.2):
                    await session.wait_for_room(1)
            except TimeoutError:
                pass
        await session.drain(0.2)
        # what it keeps sending is read and dropped meanwhile (reading resumed if it was
        # paused), so the close reply behind it gets through; cut off if it never comes
        self.link.transport.resume_reading()
        session.close(CLOSE_RATE, "rate limit exceeded")
        try:
            async with asyncio.timeout(FLOODER_CLOSE_S):
                await self.link.wait_closed()
        except TimeoutError:
            self.link.abort()

    async def _check_alive(self) -> None:
        """For dead-man connections: a silent drop (no FIN, no RST) must be noticed within a
        second, not after the server-wide ping timeout, so ping every interval and close when
        a pong is late."""
        every_s = self.socket.settings.cancel_on_disconnect_ms / 1000
        try:
            while True:
                await asyncio.sleep(every_s)
                async with asyncio.timeout(every_s):
                    await self.link.ping()
        except TimeoutError:
            # presumed dead: a closing handshake would wait for a reply that never comes
            self.link.abort()
        except (ConnectionError, asyncio.CancelledError):
            pass

    async def _dead_man(self, session: Session) -> None:
        await cancel_left_resting(self.socket.exchange, session)


async def cancel_left_resting(exchange, session) -> None:
    """cancel_on_disconnect: cancel what the connection left resting (journaled). The split
    shape's engine runs it for a connection its gateway lost (gateway/split/intake.py)."""
    user, placed = session.user, list(session.placed)
    try:
        still_open = await exchange.read(
            lambda engine: [oid for oid in placed
                            if oid in engine.orders and engine.orders[oid].remaining])
        await asyncio.gather(*(exchange.submit(c.CancelOrder(user=user, order=oid))
                               for oid in still_open))
    except Exception:
        log.exception("dead-man switch for %s failed", user)


class _Reader:
    """One connection's requests, handled as each message is parsed: rate limit, parse,
    dispatch. At most INFLIGHT_MAX requests are in progress: beyond that, reading pauses and
    the messages already read wait here, in order, until answers make room."""

    __slots__ = ("connection", "socket", "link", "session", "bucket", "refused", "waiting",
                 "resuming")

    def __init__(self, connection: Connection) -> None:
        settings = connection.socket.settings
        self.connection = connection
        self.socket = connection.socket
        self.link = connection.link
        self.session = connection.session
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
                self.connection.close_for_flooding()
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
            req = ops.parse(obj)
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
            self.link.transport.pause_reading()
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
            if not self.link.transport.is_closing():
                self.link.transport.resume_reading()

