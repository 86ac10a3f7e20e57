"""Gateway side of the wire: requests out to the shards, frames and call results back in.

A connection's session on a shard is opened with its first request there (who it is, its roles,
its dead-man switch) and closed when the connection goes. Frames come back on this gateway's
own stream, in the order each shard produced them, and are handed to the connection as they
are: a REPLY also answers one of its requests (the reader's in-flight count), DROPPABLE frames
may be dropped for a slow client like market data.

One XREAD reads this gateway's stream and every shard's market-data stream together: a reply
and the market state after it are then seen in that order (a shard writes market data after
the replies queued before it), and the replies of a read are handled before its market data.

Shards are watched through their liveness keys. A shard that is gone, restarted (a new epoch)
or lost entries on the way here (a gap) cannot answer what was sent to it, nor keep what the
connections registered there (order pushes, P&L watches, channels): those connections are
closed with 1012 (service restart) and reconnect, getting fresh images and orders; requests for
a shard that is down are answered INTERNAL at once.
"""

import asyncio
import itertools
import logging

import orjson

from engine.codec import encode_command

from . import wire
from .scatter import Gathering
from .wire import Entry, Sequence

log = logging.getLogger(__name__)

READ_COUNT = 1000  # entries per stream per XREAD
READ_BLOCK_MS = 1000
CLOSE_SERVICE_RESTART = 1012
CALL_TIMEOUT_S = 30.0  # a call a live shard never answers: only a guard, a bug if it fires


class ShardDown(Exception):
    """The shard is not running (or restarted and lost what it was asked)."""


def frame_op(frame: bytes) -> str:
    """A frame's op, for the frames-sent counter, without parsing the frame."""
    at = frame.find(b'"op":"')
    if at < 0:
        return ""
    at += 6
    return frame[at:frame.find(b'"', at)].decode()


class EngineClient:
    def __init__(self, *, redis, names, gateway: str, epoch: int, shards, writer: wire.Writer,
                 hub, mirror, peer_timeout_s: float) -> None:
        self.redis = redis
        self.reader = wire.Reader(redis)
        self.names = names
        self.gateway = gateway
        self.epoch = epoch
        self.shards = shards
        self.writer = writer
        self.hub = hub
        self.mirror = mirror
        self.peer_timeout_s = peer_timeout_s
        self.cmd_streams = [names.cmd(k) for k in shards.all]
        self.out_stream = names.out(gateway)
        self.md_streams = {names.md(k): k for k in shards.all}
        self.opened: dict[int, set[int]] = {}  # connection id -> shards it has a session on
        self.epochs: dict[int, int] = {}  # shard -> the epoch running it (absent: down)
        self.sequence = Sequence()
        self._calls: dict[int, tuple[int, asyncio.Future]] = {}  # correlation -> (shard, fut)
        self._corr = itertools.count(1)
        self._loops: list[asyncio.Task] = []
        self.frames_in = 0
        self.entries_in = 0
        self.gatherings: dict[int, Gathering] = {}  # connection -> scatters in progress
        # with several shards: what sums pushes over the shards and brings a bettor's money
        # where it is needed (gateway_ops.Sharded); None with one
        self.sharded = None

    async def start(self) -> None:
        await self._refresh_alive()
        await self._watch_shards_once()
        md = {stream: await wire.last_id(self.redis, stream) for stream in self.md_streams}
        # images after the cursors: a state published in between is read twice, and the mirror
        # keeps the newer
        await self.mirror.load(self.redis, [self.names.md_images(k) for k in self.shards.all])
        cursors = {self.out_stream: await wire.last_id(self.redis, self.out_stream), **md}
        self._loops = [asyncio.create_task(self._read(cursors), name="client-read"),
                       asyncio.create_task(self._keep_alive(), name="client-alive"),
                       asyncio.create_task(self._watch_shards(), name="client-shards")]

    async def stop(self) -> None:
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        try:
            await self.redis.delete(self.names.alive(self.gateway))
        except Exception:
            pass

    # -- requests -------------------------------------------------------------------------------

    def up(self, shard: int) -> bool:
        return shard in self.epochs

    def _open(self, session, shard: int) -> None:
        opened = self.opened.get(session.conn_id)
        if opened is None:
            opened = self.opened[session.conn_id] = set()
        if shard not in opened:
            opened.add(shard)
            self.writer.add(self.cmd_streams[shard], session.conn_id, wire.OPEN, orjson.dumps(
                {"user": session.user, "roles": list(session.roles),
                 "cod": session.cancel_on_disconnect}))

    def order(self, session, shard: int, request_id, cmd) -> None:
        """Place, cancel or replace, as its engine command; the shard replies."""
        self._open(session, shard)
        self.writer.add(self.cmd_streams[shard], session.conn_id, wire.ORDER,
                        orjson.dumps(request_id) + b"\n" + encode_command(cmd))

    def request(self, session, shard: int, obj: dict, legs: list | None = None) -> None:
        """Any other engine op, as the client sent it; the shard replies."""
        self._open(session, shard)
        self.writer.add(self.cmd_streams[shard], session.conn_id, wire.REQUEST,
                        orjson.dumps([obj, legs]))

    def closed(self, session) -> None:
        self.gatherings.pop(session.conn_id, None)
        if self.sharded is not None:
            self.sharded.closed(session)
        for shard in self.opened.pop(session.conn_id, ()):
            self.writer.add(self.cmd_streams[shard], session.conn_id, wire.CLOSE)

    async def call(self, shard: int, payload: bytes):
        """A named read or command (calls.py): its outcome's payload."""
        if shard not in self.epochs:
            raise ShardDown(f"shard {shard} is not running")
        corr = next(self._corr)
        future = asyncio.get_running_loop().create_future()
        self._calls[corr] = (shard, future)
        self.writer.add(self.cmd_streams[shard], corr, wire.CALL, payload)
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                return await future
        finally:
            self._calls.pop(corr, None)

    # -- frames in ------------------------------------------------------------------------------

    async def _read(self, cursors: dict[bytes, bytes]) -> None:
        out_stream = self.out_stream
        while True:
            try:
                reply = await self.reader.read(cursors, READ_COUNT, READ_BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("gateway: reading the wire failed: %r", exc)
                await asyncio.sleep(0.2)
                continue
            by_stream = {stream: entries for stream, entries in reply}
            out = by_stream.pop(out_stream, ())
            for entry_id, fields in out:
                cursors[out_stream] = entry_id
                self._entry(Entry(fields))
            if len(out) == READ_COUNT:
                continue  # more replies are waiting: market data only after all of them
            for stream, entries in by_stream.items():
                shard = self.md_streams[stream]
                for entry_id, fields in entries:
                    cursors[stream] = entry_id
                    self.mirror.apply(shard, Entry(fields))

    def _entry(self, entry: Entry) -> None:
        shard = int(entry.sender[1:])
        verdict = self.sequence.check(entry)
        if verdict == wire.REPEAT:
            return
        if verdict == wire.GAP:
            log.error("gateway: entries from shard %d were lost on the way", shard)
            self._shard_lost(shard, "lost frames")
        elif self.epochs.get(shard, entry.epoch) != entry.epoch:
            self._shard_lost(shard, "restarted")
        self.epochs[shard] = entry.epoch
        self.entries_in += 1
        for conn, kind, payload in entry.records():
            self.frames_in += 1
            try:
                self._record(shard, conn, kind, payload)
            except Exception:  # a bug: that frame is lost, not the ones after it
                log.exception("gateway: a record from shard %d failed", shard)

    def _record(self, shard: int, conn: int, kind: int, payload: bytes) -> None:
        if kind == wire.RESULT:
            call = self._calls.get(conn)
            if call is not None and not call[1].done():
                call[1].set_result(payload)
            return
        if kind == wire.ANSWERED and conn == 0:  # RESYNC: the shard dropped our sessions
            self._shard_lost(shard, "lost our requests")
            return
        session = self.hub.by_id.get(conn)
        if session is None:
            return  # closed meanwhile
        if kind == wire.FUNDS_NEEDED:  # not a frame: never waits behind one
            self.sharded.funds_needed(session, shard, payload)
            return
        gathering = self.gatherings.get(conn)
        if gathering is not None:
            if gathering.on_frame(shard, kind, payload,
                                  lambda h, k, p, s=session: self.deliver(s, h, k, p)):
                if gathering.idle:
                    del self.gatherings[conn]
                return
        self.deliver(session, shard, kind, payload)

    def deliver(self, session, shard: int | None, kind: int, payload: bytes) -> None:
        """A shard's frame (or answer) to its connection; shard None: a merged reply."""
        if (self.sharded is not None and shard is not None
                and self.sharded.intercepts(session, shard, kind, payload)):
            return
        if kind == wire.FRAME:
            session.push_frame(payload, frame_op(payload))
        elif kind == wire.REPLY:
            session.push_frame(payload, frame_op(payload))
            session.answered()
        elif kind == wire.ANSWERED:
            session.answered()
        elif kind == wire.DROPPABLE:
            session.push_frame(payload, frame_op(payload), droppable=True)

    def gathering(self, session) -> Gathering:
        """The connection's scatters in progress (scatter.py)."""
        gathering = self.gatherings.get(session.conn_id)
        if gathering is None:
            gathering = self.gatherings[session.conn_id] = Gathering()
        return gathering

    # -- shards coming and going ----------------------------------------------------------------

    def _shard_lost(self, shard: int, why: str) -> None:
        """What was asked of `shard` and what connections registered there is gone: fail the
        calls, close the connections (they reconnect and start afresh)."""
        for corr, (on, future) in list(self._calls.items()):
            if on == shard and not future.done():
                future.set_exception(ShardDown(f"shard {shard} {why}"))
        closing = [conn for conn, shards in self.opened.items() if shard in shards]
        if closing:
            log.warning("gateway: shard %d %s; closing %d connections that had work there",
                        shard, why, len(closing))
        for conn in closing:
            self.opened[conn].discard(shard)
            session = self.hub.by_id.get(conn)
            if session is not None:
                session.close(CLOSE_SERVICE_RESTART, f"shard {shard} {why}: reconnect")

    async def _watch_shards_once(self) -> None:
        values = await self.redis.mget([self.names.alive(f"s{k}") for k in self.shards.all])
        for shard, value in zip(self.shards.all, values):
            known = self.epochs.get(shard)
            if value is None:
                if known is not None:
                    del self.epochs[shard]
                    self._shard_lost(shard, "is down")
            elif known is not None and int(value) != known:
                self.epochs[shard] = int(value)
                self._shard_lost(shard, "restarted")
            else:
                self.epochs[shard] = int(value)

    async def _watch_shards(self) -> None:
        while True:
            await asyncio.sleep(self.peer_timeout_s / 3)
            try:
                await self._watch_shards_once()
            except Exception as exc:
                log.warning("gateway: shard liveness unknown: %r", exc)

    async def _refresh_alive(self) -> None:
        await self.redis.set(self.names.alive(self.gateway), self.epoch,
                             px=int(self.peer_timeout_s * 1000))

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.peer_timeout_s / 3)
            try:
                await self._refresh_alive()
            except Exception as exc:
                log.warning("gateway: liveness key not refreshed: %r", exc)

