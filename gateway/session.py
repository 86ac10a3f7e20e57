"""One WebSocket connection's state: who it is, what it watches, and its bounded send queue.

Frames wait in a queue of at most `send_queue_max` for the connection's writer task, except
that a frame goes straight to the socket when nothing is waiting and the socket's buffer has
room: that is most frames, and it spares a task switch, a queue round trip and the library's
per-send coroutine (fan-out sends each market-data frame to every subscriber). Market
data is droppable: when the queue is full it is dropped and the subscription marked stale, to be
replaced by a fresh image once the client catches up. Replies and owner pushes are not
droppable: if even those overflow, the client is not reading at all and is disconnected rather
than allowed to grow memory without bound (its orders and money are untouched).
"""

import asyncio
import time

import orjson
from websockets.protocol import State

CLOSE_SLOW_CONSUMER = 1008  # policy violation: the client stopped reading
# Requests of one connection in progress at once: reading its socket pauses at this many
INFLIGHT_MAX = 64
# Write straight to the socket only while its user-space buffer holds less than this; past it
# frames queue (bounded) and the writer task waits for the buffer to drain, as before.
DIRECT_BUFFER_MAX = 16 * 1024


class Subscription:
    __slots__ = ("depth", "seq", "state", "stale")

    def __init__(self, depth: int, state: dict) -> None:
        self.depth = depth
        self.seq = 0
        self.state = state  # the market state this client was last brought up to
        self.stale = False  # market data was dropped: next send must be a fresh image


class Session:
    def __init__(self, ws, queue_max: int, on_sent=None) -> None:
        self.ws = ws
        self.user: str | None = None
        self.roles: tuple[str, ...] = ()
        self.subs: dict[str, Subscription] = {}
        self.watching_orders = False
        self.watching_exposure = False
        self.slip = None
        self.cancel_on_disconnect = False
        self.placed: dict[str, None] = {}  # orders placed through this connection (dead-man)
        self.inflight = 0  # requests read and not yet answered
        self._room: asyncio.Future | None = None  # the reader, waiting for inflight to drop
        self._room_below = INFLIGHT_MAX
        self.sent_at = time.monotonic()
        self.closed = False
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=queue_max)
        self._queue_max = queue_max
        self._on_sent = on_sent
        self._writing = False  # the writer task is inside a send (it may be waiting to drain)
        self._unflushed = 0  # bytes framed by the protocol this loop turn, not yet written
        self._flush_scheduled = False
        self._writer = asyncio.create_task(self._write(), name="ws-writer")

    def asked(self) -> None:
        self.inflight += 1

    def answered(self) -> None:
        self.inflight -= 1
        room = self._room
        if room is not None and self.inflight < self._room_below and not room.done():
            self._room = None
            room.set_result(None)

    async def wait_for_room(self, below: int = INFLIGHT_MAX) -> None:
        """Until fewer than `below` requests are in progress (the reader pauses here)."""
        while self.inflight >= below:
            self._room_below = below
            self._room = asyncio.get_running_loop().create_future()
            await self._room

    def can(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles

    def has_room(self) -> bool:
        """Room enough to send a fresh image without crowding out replies."""
        return self._queue.qsize() < self._queue_max // 2

    def push(self, message: dict, droppable: bool = False) -> bool:
        """Queue one frame; False if it was dropped (droppable) or the client was cut off."""
        if self.closed:
            return False
        return self.push_frame(orjson.dumps(message), message.get("op", ""), droppable)

    def push_frame(self, frame: bytes, op: str, droppable: bool = False) -> bool:
        """`push` for a frame already encoded (UTF-8 JSON, sent as a text frame): market data
        encodes a delta once for every subscriber that gets the very same frame."""
        if self.closed:
            return False
        if droppable and self._queue.qsize() >= self._queue_max // 2:
            return False  # market data gives way early: the other half is kept for replies
        # in order: straight out only if nothing is queued or being written before it
        if self._writing or not self._queue.empty() or not self._send_now(frame):
            try:
                self._queue.put_nowait(frame)
            except asyncio.QueueFull:
                if droppable:
                    return False
                self.close(CLOSE_SLOW_CONSUMER, "send queue overflow: client is not reading")
                return False
        if self._on_sent is not None:
            self._on_sent(op)
        return True

    def _send_now(self, frame: bytes) -> bool:
        """Frame `frame` for the socket now if that keeps every bound; False: queue it. The
        frames of one loop turn leave in one write at the end of it (a batch's replies and
        pushes to one connection are one system call, not one each)."""
        ws = self.ws
        transport = ws.transport
        if (ws.protocol.state is not State.OPEN or transport.is_closing()
                or transport.get_write_buffer_size() + self._unflushed >= DIRECT_BUFFER_MAX):
            return False
        try:
            ws.protocol.send_text(frame)
        except Exception:  # the connection broke: its reader side notices and cleans up
            self.closed = True
            return True
        self._unflushed += len(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        self.sent_at = time.monotonic()
        return True

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._unflushed = 0
        try:
            self.ws.send_data()  # the library's own write of what the protocol framed
        except Exception:  # the connection broke: its reader side notices and cleans up
            self.closed = True

    def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self._writer.cancel()
        asyncio.get_running_loop().create_task(self.ws.close(code, reason))

    async def _write(self) -> None:
        queue = self._queue
        try:
            while True:
                frame = await queue.get()
                self._writing = True
                await self.ws.send(frame, text=True)
                self._writing = False
                self.sent_at = time.monotonic()
        except asyncio.CancelledError:
            pass
        except Exception:  # connection gone: the reader side notices and cleans up
            self.closed = True

    async def drain(self, timeout_s: float) -> None:
        """Give queued frames a moment to go out (graceful shutdown)."""
        deadline = time.monotonic() + timeout_s
        while not self._queue.empty() and not self.closed and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        self.closed = True
        self._writer.cancel()
