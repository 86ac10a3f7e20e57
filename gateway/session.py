"""One WebSocket connection's state: who it is, what it watches, and its bounded send queue.

The connection itself is a `Link` (gateway/links.py): whichever WebSocket library carries it,
the session writes already framed bytes to the link's transport and asks it only whether it is
open, to wait for its buffer to drain, and to close.

Frames wait in a queue of at most `send_queue_max` for the connection's writer task, except
that a frame goes straight to the socket when nothing is waiting and the socket's buffer has
room: that is most frames, and it spares a task switch, a queue round trip and the library's
per-send coroutine (fan-out sends each market-data frame to every subscriber). Those frames
are framed here (a server's frames are unmasked: `text_frame`) and the ones of one loop turn
leave in one write at its end. Market
data is droppable: when the queue is full it is dropped and the subscription marked stale, to be
replaced by a fresh image once the client catches up. Replies and owner pushes are not
droppable: if even those overflow, the client is not reading at all and is disconnected rather
than allowed to grow memory without bound (its orders and money are untouched).
"""

import asyncio
import time

import orjson

CLOSE_SLOW_CONSUMER = 1008  # policy violation: the client stopped reading
# Requests of one connection in progress at once: reading its socket pauses at this many
INFLIGHT_MAX = 64
# Write straight to the socket only while its user-space buffer holds less than this; past it
# frames queue (bounded) and the writer task waits for the buffer to drain, as before.
DIRECT_BUFFER_MAX = 16 * 1024


# Frame headers by payload length (below 65,536), each made the first time it is needed: every
# reply and push is framed, and building the header each time (a tuple, or int.to_bytes, and a
# second concatenation) was a third of the framing's cost.
_HEADS: list = [None] * 65536


def text_frame(payload: bytes) -> bytes:
    """`payload` as one unmasked, unfragmented WebSocket text frame (RFC 6455 5.2), the way
    a server sends it: the bytes are the same for every connection."""
    n = len(payload)
    if n < 65536:
        head = _HEADS[n]
        if head is None:
            head = _HEADS[n] = (bytes((0x81, n)) if n < 126
                                else b"\x81\x7e" + n.to_bytes(2, "big"))
        return head + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


class Subscription:
    __slots__ = ("depth", "seq", "state", "stale")

    def __init__(self, depth: int, state: dict) -> None:
        self.depth = depth
        self.seq = 0
        self.state = state  # the market state this client was last brought up to
        self.stale = False  # market data was dropped: next send must be a fresh image


class Session:
    def __init__(self, link, queue_max: int, on_sent=None) -> None:
        self.link = link
        self.user: str | None = None
        self.roles: tuple[str, ...] = ()
        self.subs: dict[str, Subscription] = {}
        self.watching_orders = False
        self.watching_exposure = False
        self.slip = None
        self.cancel_on_disconnect = False
        # orders placed through this connection, kept only with cancel_on_disconnect (the
        # dead-man switch cancels what is left of them)
        self.placed: dict[str, None] = {}
        self.inflight = 0  # requests read and not yet answered
        self._room: asyncio.Future | None = None  # the reader, waiting for inflight to drop
        self._room_below = INFLIGHT_MAX
        self.sent_at = time.monotonic()
        self.closed = False
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=queue_max)
        self._queue_max = queue_max
        self._on_sent = on_sent
        self._writing = False  # the writer task is inside a send (it may be waiting to drain)
        self._direct = False  # frames may join this loop turn's write (see _direct_room)
        self._out: list[bytes] = []  # frames framed this loop turn, written at its end
        self._unflushed = 0  # the transport's buffer at the turn's first frame + _out's bytes
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
        if self._direct_room():
            wire = text_frame(frame)
            self._out.append(wire)
            self._unflushed += len(wire)
        else:
            if droppable and self._queue.qsize() >= self._queue_max // 2:
                return False  # market data gives way early: the other half is kept for replies
            if not self._enqueue(frame, droppable):
                return False
        if self._on_sent is not None:
            self._on_sent(op)
        return True

    def push_market(self, wire: bytes, payload: bytes) -> bool:
        """One market-data frame (droppable), given both as `payload` (the JSON) and `wire`
        (the same payload framed as an unmasked text frame, `text_frame(payload)`): fan-out
        frames a delta once and hands the very same bytes to every subscriber that gets it.
        False if it was dropped: the queue is half full, or the client was cut off."""
        if self._direct and self._unflushed < DIRECT_BUFFER_MAX:  # the common case
            self._out.append(wire)
            self._unflushed += len(wire)
        elif self.closed:
            return False
        elif self._direct_room():
            self._out.append(wire)
            self._unflushed += len(wire)
        else:
            if self._queue.qsize() >= self._queue_max // 2:
                return False  # market data gives way early: the other half is kept for replies
            if not self._enqueue(payload, True):
                return False
        if self._on_sent is not None:
            self._on_sent("mkt")
        return True

    def _enqueue(self, frame: bytes, droppable: bool) -> bool:
        """For the writer task; from now on this turn's later frames queue behind it."""
        self._direct = False
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            if not droppable:
                self.close(CLOSE_SLOW_CONSUMER, "send queue overflow: client is not reading")
            return False
        return True

    def _direct_room(self) -> bool:
        """May a frame join this loop turn's direct write? Only if that keeps it in order (no
        frame is queued or being written by the writer task before it) and within bounds (the
        connection is open and its user-space buffer, with what this turn already framed,
        holds less than DIRECT_BUFFER_MAX). The frames of one loop turn leave in one write at
        the end of it (a flush's deltas and a batch's replies and pushes to one connection are
        one system call, not one each)."""
        if self._direct:
            return self._unflushed < DIRECT_BUFFER_MAX
        if self.closed or self._writing or self._queue.qsize():
            return False
        link = self.link
        if not link.is_open():
            return False
        size = link.transport.get_write_buffer_size()
        if size >= DIRECT_BUFFER_MAX:
            return False
        self._direct = True
        self._unflushed = size
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return True

    def _flush(self) -> None:
        """End of the loop turn: this turn's frames, already framed, in one write straight to
        the transport (bypassing the library's per-send work: a server's frames are not masked,
        so the same bytes serve every subscriber). Frames the library writes itself (pongs,
        close) are control frames, which may come between messages; once it has started
        closing, nothing more is written."""
        self._flush_scheduled = False
        self._direct = False
        out = self._out
        if not out:
            return
        self._out = []
        self._unflushed = 0
        link = self.link
        if not link.is_open():
            return  # closing: the frames would follow a close frame
        try:
            link.transport.write(out[0] if len(out) == 1 else b"".join(out))
        except Exception:  # the connection broke: its reader side notices and cleans up
            self.closed = True
            return
        self.sent_at = time.monotonic()

    def close(self, code: int, reason: str) -> None:
        """Close the connection with `code`, after the frames this loop turn already framed."""
        if self.closed:
            return
        self._flush()
        self.closed = True
        self._writer.cancel()
        self.link.close(code, reason)

    async def _write(self) -> None:
        queue = self._queue
        link = self.link
        try:
            while True:
                frame = await queue.get()
                self._writing = True
                if not link.is_open():  # the reader side notices and cleans up
                    self.closed = True
                    return
                link.transport.write(text_frame(frame))
                await link.drain()
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
