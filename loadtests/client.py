"""One bot's WebSocket connection, as Locust measures it (gevent + websocket-client).

A reader greenlet takes every frame as it arrives: a frame carrying the id of a request in
flight completes that request; everything else is a push, counted by op and handed to the bot
(book updates, order and wallet pushes), so a bot's picture of the market stays current while
it "thinks" between tasks. A request's latency runs from just before its frame is sent to the
moment its reply is read. Each request is reported to Locust's request event exactly once:
a reply as classified by `bots.classify`; no reply within `REPLY_TIMEOUT_S`, a send that fails,
or the connection dropping under it as a failure. A connection that drops while idle is
reported as a failed "disconnect".

Only import this where gevent has patched the standard library (a Locust process).
"""

import itertools
import struct
import time
from collections import Counter
from collections.abc import Callable

import gevent
import orjson
import websocket
from gevent.event import AsyncResult

from .bots import classify

REQUEST_TYPE = "WS"
REPLY_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0
ABANDONED_MAX = 1_000
IDLE_READ_TIMEOUT_S = 30.0  # heartbeats arrive every 5 s; a read this quiet is still fine

PUSHES: Counter = Counter()  # op -> pushes received by every connection of this process


class Disconnected(Exception):
    pass


class ReplyTimeout(Exception):
    pass


class BotSocket:
    def __init__(self, events, url: str, token: str, *,
                 on_push: Callable[[dict], None] | None = None,
                 cancel_on_disconnect: bool = False) -> None:
        self.events = events
        self.url = url
        self.token = token
        self.on_push = on_push
        self.cancel_on_disconnect = cancel_on_disconnect
        self.ws: websocket.WebSocket | None = None
        self.alive = False
        self._closing = False
        self._ids = itertools.count(1)
        self._pending: dict[int, AsyncResult] = {}
        self._abandoned: set[int] = set()  # ids whose reply nobody waits for any more
        self._reader: gevent.Greenlet | None = None

    # -- reporting ----------------------------------------------------------------------------

    def _fire(self, name: str, started: float, length: int, failure: Exception | str | None,
              ended: float | None = None) -> None:
        ended = time.perf_counter() if ended is None else ended
        if isinstance(failure, str):
            failure = RuntimeError(failure)
        self.events.request.fire(request_type=REQUEST_TYPE, name=name,
                                 response_time=(ended - started) * 1000.0,
                                 response_length=length, exception=failure, context={})

    # -- lifecycle ----------------------------------------------------------------------------

    def connect(self) -> bool:
        """Open, authenticate and start reading; False (reported) on any failure."""
        self._closing = False
        started = time.perf_counter()
        try:
            ws = websocket.create_connection(self.url, timeout=CONNECT_TIMEOUT_S,
                                             suppress_origin=True, enable_multithread=True)
        except Exception as exc:
            self._fire("connect", started, 0, exc)
            return False
        self._fire("connect", started, 0, None)
        ws.settimeout(IDLE_READ_TIMEOUT_S)
        self.ws, self.alive = ws, True
        self._reader = gevent.spawn(self._read, ws)
        reply = self.request({"op": "auth", "token": self.token,
                              "cancel_on_disconnect": self.cancel_on_disconnect})
        if reply is None or reply.get("op") != "authed":
            self.close()
            return False
        return True

    def close(self) -> None:
        self._closing = True
        self.alive = False
        if self.ws is not None:
            try:
                self.ws.close(timeout=1)
            except Exception:
                pass
        if self._reader is not None:
            self._reader.kill(block=False)
            self._reader = None

    def _lost(self, reason: str) -> None:
        if not self.alive:
            return
        self.alive = False
        if self._closing:
            return
        waiting = [r for r in self._pending.values() if not r.ready()]
        for result in waiting:
            result.set_exception(Disconnected(reason))
        if not waiting:
            self._fire("disconnect", time.perf_counter(), 0, Disconnected(reason))

    # -- frames -------------------------------------------------------------------------------

    def _read(self, ws) -> None:
        while True:
            # a socket with data waiting never blocks, so without this one busy connection's
            # reader would starve the others (and their keepalive pongs) under load
            gevent.sleep(0)
            try:
                with ws.readlock:
                    opcode, frame = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                continue
            except Exception as exc:
                self._lost(f"connection lost: {exc!r}")
                return
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = struct.unpack("!H", frame[:2])[0] if len(frame) >= 2 else None
                reason = frame[2:].decode("utf-8", "replace")
                self._lost(f"closed by the server: {code} {reason}".strip())
                return
            if opcode != websocket.ABNF.OPCODE_TEXT:
                continue
            at = time.perf_counter()
            msg = orjson.loads(frame)
            rid = msg.get("id")
            result = self._pending.get(rid) if rid is not None else None
            if result is None and msg.get("op") == "error" and rid is None and \
                    msg.get("code") == "RATE_LIMITED":
                # the server refused a frame before reading its id: it was the oldest in flight
                result = next((r for r in self._pending.values() if not r.ready()), None)
            if result is not None and not result.ready():
                result.set((at, msg, len(frame)))
                continue
            if rid is not None and rid in self._abandoned:  # timed out or stopped mid-flight
                self._abandoned.discard(rid)
                PUSHES["late reply"] += 1
                continue
            PUSHES[msg.get("op", "?")] += 1
            if self.on_push is not None:
                self.on_push(msg)

    def request(self, payload: dict, label: str | None = None) -> dict | None:
        """Send one request and wait for its reply; report it; the reply, or None on failure.
        A business rejection is returned (as the error reply) and reported as a success."""
        op = payload["op"]
        name = label or op
        if not self.alive:
            self._fire(name, time.perf_counter(), 0, Disconnected("not connected"))
            return None
        rid = next(self._ids)
        frame = orjson.dumps({**payload, "id": rid}).decode()
        result = AsyncResult()
        self._pending[rid] = result
        started = time.perf_counter()
        try:
            try:
                self.ws.send(frame)
            except Exception as exc:
                self._fire(name, started, 0, Disconnected(f"send failed: {exc!r}"))
                self._lost(f"send failed: {exc!r}")
                return None
            try:
                at, reply, length = result.get(timeout=REPLY_TIMEOUT_S)
            except gevent.Timeout:
                self._fire(name, started, 0, ReplyTimeout(f"no reply in {REPLY_TIMEOUT_S:g} s"))
                return None
            except Disconnected as exc:
                self._fire(name, started, 0, exc)
                return None
        finally:
            if not self._pending.pop(rid).ready() and len(self._abandoned) < ABANDONED_MAX:
                self._abandoned.add(rid)
        outcome = classify(op, reply, label)
        self._fire(outcome.name, started, length, outcome.failure, ended=at)
        return reply
