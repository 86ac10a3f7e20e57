"""Engine side of the wire: a shard's command stream in, replies and pushes out per gateway.

Each connection a gateway sends work for gets a `RemoteSession` here, and the engine-side `Ops`,
`Hub` and feeds (P&L, catalogue, exposure) use it exactly as they use a connection's Session in
one process: they render replies and pushes at the same moments (a reply when its command is
journaled, pushes when their batch is), and what they hand the session goes, in that order,
onto the gateway's stream. So the frame order of one process holds across the wire.

Records are handled in arrival order, each synchronously up to its submit (the order ops go to
the sequencer right here; the others start their handler task, which submits before its first
await), so one connection's requests reach the sequencer in the order the client sent them.

A gateway that stops refreshing its liveness key (killed, cut off) or comes back as a new epoch
loses its sessions here: the dead-man switch of every `cancel_on_disconnect` connection it held
runs, as it would for a dropped connection. A lost entry (a gap) does the same, and the gateway
is told (RESYNC) to close the connections it had on this shard.
"""

import asyncio
import logging
import time

import orjson

from engine import commands as c
from engine.codec import decode_command

from .. import slips
from ..connection import cancel_left_resting
from ..protocol import ProtocolError, parse_object
from . import calls, funding, wire
from .wire import Entry, Sequence

log = logging.getLogger(__name__)

READ_COUNT = 500  # entries per XREAD
READ_BLOCK_MS = 1000
RESYNC = 0  # conn 0 of an ANSWERED record: the gateway must close its connections on this shard
HOLD_MAX_S = 10.0
_SESSION_WORK = frozenset({wire.ORDER, wire.REQUEST, wire.ORDER_FUNDED, wire.REQUEST_FUNDED})


class RemoteSession:
    """A gateway's connection as the engine side sees it: who it is and what it watches here;
    what is pushed to it is queued for the gateway's stream."""

    def __init__(self, writer: wire.Writer, stream: bytes, gateway: str, epoch: int, conn: int,
                 user: str, roles: tuple[str, ...], cancel_on_disconnect: bool) -> None:
        self.writer = writer
        self.stream = stream
        self.gateway = gateway
        self.epoch = epoch
        self.conn = conn
        self.user = user
        self.roles = roles
        self.cancel_on_disconnect = cancel_on_disconnect
        self.subs: dict = {}  # market data is the gateway's: never subscribed here
        self.watching_orders = False
        self.watching_exposure = False
        self.slip = None
        self.placed: dict[str, None] = {}  # orders placed through the connection (dead-man)
        self.inflight = 0
        self.sent_at = time.monotonic()
        self.closed = False
        # while a place waits for the bettor's money from other shards: the records sent after
        # it, held in order (funding.py); with the held one and since when
        self.barrier: list[tuple[int, bytes]] | None = None
        self.held: tuple[int, bytes] | None = None
        self.held_since = 0.0

    def can(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles

    def has_room(self) -> bool:
        return True  # the gateway bounds its queue and drops market data itself

    def asked(self) -> None:
        self.inflight += 1

    def answered(self) -> None:
        """The frame just pushed answered a request (or, with none, the request is answered)."""
        self.inflight -= 1
        records = self.writer.records(self.stream)
        if records and records[-1][0] == self.conn and records[-1][1] == wire.FRAME:
            records[-1] = (self.conn, wire.REPLY, records[-1][2])
        else:
            records.append((self.conn, wire.ANSWERED, b""))

    def push(self, message: dict, droppable: bool = False) -> bool:
        if self.closed:
            return False
        return self.push_frame(orjson.dumps(message), message.get("op", ""), droppable)

    def push_frame(self, frame: bytes, op: str, droppable: bool = False) -> bool:
        if self.closed:
            return False
        self.writer.records(self.stream).append(
            (self.conn, wire.DROPPABLE if droppable else wire.FRAME, frame))
        return True

    def close(self, code: int, reason: str) -> None:
        self.closed = True

    def stop(self) -> None:
        self.closed = True


class Intake:
    """Reads the shard's command stream and runs what it says against the local exchange."""

    def __init__(self, *, shard: int, shards: int, redis, names, writer: wire.Writer, exchange,
                 hub, ops, transfers, peer_timeout_s: float) -> None:
        self.shard = shard
        # with several shards, places may need the bettor's money from another (funding.py)
        self.gate = funding.FundsGate(exchange) if shards > 1 else None
        self.redis = redis
        self.reader = wire.Reader(redis)
        self.names = names
        self.writer = writer
        self.exchange = exchange
        self.hub = hub
        self.ops = ops
        self.peer_timeout_s = peer_timeout_s
        self.stream = names.cmd(shard)
        self.sessions: dict[tuple[str, int], RemoteSession] = {}
        self.gateways: dict[str, int] = {}  # gateway -> the epoch its sessions belong to
        self.sequence = Sequence()
        self.tasks: set[asyncio.Task] = set()
        self._loops: list[asyncio.Task] = []
        self.records_read = 0
        self.entries_read = 0
        self.transfers = transfers  # funding.TransferDesk

    async def start(self) -> None:
        # from the stream's end: what was queued while this shard was down was never answered,
        # and the gateways closed the connections that sent it
        cursor = await wire.last_id(self.redis, self.stream)
        self._loops = [asyncio.create_task(self._read(cursor), name="intake"),
                       asyncio.create_task(self._watch_gateways(), name="intake-liveness")]

    async def stop(self) -> None:
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)  # referenced until done: a task only the loop knows may be collected
        task.add_done_callback(self.tasks.discard)

    # -- reading --------------------------------------------------------------------------------

    async def _read(self, cursor: bytes) -> None:
        streams = {self.stream: cursor}
        while True:
            try:
                reply = await self.reader.read(streams, READ_COUNT, READ_BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarting: the journal fails the same way
                log.warning("intake: reading %s failed: %r", self.stream.decode(), exc)
                await asyncio.sleep(0.2)
                continue
            for _, entries in reply:
                for entry_id, fields in entries:
                    streams[self.stream] = entry_id
                    self._entry(Entry(fields))

    def _entry(self, entry: Entry) -> None:
        sender = entry.sender
        verdict = self.sequence.check(entry)
        if verdict == wire.REPEAT:
            return
        if sender.startswith("g"):
            if verdict == wire.GAP:
                log.error("intake: entries from %s were lost; dropping its sessions", sender)
                self._drop_gateway(sender, resync=True)
            elif verdict == wire.NEW and self.gateways.get(sender, entry.epoch) != entry.epoch:
                self._drop_gateway(sender)  # it restarted: its old connections are gone
            self.gateways[sender] = entry.epoch
        self.entries_read += 1
        for conn, kind, payload in entry.records():
            self.records_read += 1
            try:
                self._record(sender, entry.epoch, conn, kind, payload)
            except Exception:  # a bug: that record is lost, not the ones after it
                log.exception("intake: a record from %s failed", sender)

    def _record(self, sender: str, epoch: int, conn: int, kind: int, payload: bytes) -> None:
        if kind in _SESSION_WORK:
            session = self.sessions.get((sender, conn))
            if session is None:
                return  # dropped (its gateway was presumed dead): nobody waits for it
            if session.barrier is None:
                self._work(session, kind, payload)
            elif kind in (wire.ORDER_FUNDED, wire.REQUEST_FUNDED):
                self._release(session, kind, payload)
            else:
                session.barrier.append((kind, payload))
        elif kind == wire.OPEN:
            info = orjson.loads(payload)
            self.sessions[(sender, conn)] = RemoteSession(
                self.writer, self.names.out(sender), sender, epoch, conn, info["user"],
                tuple(info["roles"]), info["cod"])
        elif kind == wire.CLOSE:
            session = self.sessions.pop((sender, conn), None)
            if session is not None:
                self._close(session)
        elif kind == wire.CALL:
            if payload.startswith(b'["transfer"'):
                self.transfers.start_transfer(self.names.out(sender), conn, payload)
            else:
                self._call(self.names.out(sender), conn, payload)
        elif kind in (wire.TRANSFER_IN, wire.TRANSFER_CONFIRMED):
            self.transfers.on_record(kind, payload)
        else:
            log.warning("intake: unknown record kind %d from %s", kind, sender)

    def _work(self, session: RemoteSession, kind: int, payload: bytes) -> None:
        """An order or request of the connection, in the order it sent them."""
        gate = self.gate
        if kind == wire.ORDER or kind == wire.ORDER_FUNDED:
            rid, _, record = payload.partition(b"\n")
            cmd = decode_command(record)
            if gate is not None and type(cmd) is c.PlaceOrder:
                if kind == wire.ORDER and not gate.fits(cmd):
                    self._verify(session, kind, payload,
                                 lambda engine: funding.shortfalls(engine, cmd))
                    return
                gate.promise(cmd)
            session.asked()
            self.ops.submit_order(session, orjson.loads(rid), cmd)
        else:
            obj, legs = orjson.loads(payload)
            if (legs and gate is not None and kind == wire.REQUEST
                    and not gate.slip_fits(session.user, legs)):
                user = session.user
                self._verify(session, kind, payload,
                             lambda engine: funding.slip_shortfalls(engine, user, legs))
                return
            self._request(session, obj, legs)

    def _verify(self, session: RemoteSession, kind: int, payload: bytes, shortfalls) -> None:
        """The bettor's wallet here may not cover this: the connection's later work waits while
        `shortfalls(engine)` is read between batches (after everything sent before it), then
        the gateway is asked for the money (FUNDS_NEEDED), or it goes on as it is."""
        session.barrier = []
        session.held = (kind, payload)
        session.held_since = time.monotonic()
        funded = wire.ORDER_FUNDED if kind == wire.ORDER else wire.REQUEST_FUNDED

        async def verify() -> None:
            try:
                shorts = await self.exchange.read(shortfalls)
            except Exception as exc:  # stopped: the connection's gateway hears of it
                log.warning("intake: funds of %s unknown: %r", session.user, exc)
                shorts = []
            if session.closed:
                return
            if shorts:
                self.writer.add(session.stream, session.conn, wire.FUNDS_NEEDED,
                                orjson.dumps([shorts, kind]) + b"\n" + payload)
            else:
                self._release(session, funded, payload)

        self._spawn(verify())

    def _release(self, session: RemoteSession, kind: int, payload: bytes) -> None:
        """The held record, back funded (or as far as the bettor's money went): it goes to the
        engine, then what waited behind it, until one of those has to wait again."""
        queued, session.barrier, session.held = session.barrier, None, None
        self._work(session, kind, payload)
        for i, (k, p) in enumerate(queued):
            if session.barrier is not None:
                session.barrier.extend(queued[i:])
                return
            if k in (wire.ORDER_FUNDED, wire.REQUEST_FUNDED):
                k = wire.ORDER if k == wire.ORDER_FUNDED else wire.REQUEST
            self._work(session, k, p)

    def _request(self, session: RemoteSession, obj: dict, legs: list | None) -> None:
        if legs is not None:  # slip.place: the slip the gateway priced
            slip = slips.Slip([slips.Leg(m, s, side, stake) for m, s, side, stake, _ in legs])
            for leg, (*_, price) in zip(slip.legs, legs):
                leg.price = price
            session.slip = slip
        try:
            req = parse_object(obj)
        except ProtocolError as err:  # the gateway validated it: a version mismatch
            session.asked()
            session.push({"op": "error", "id": err.request_id, "code": str(err.code),
                          "message": err.message})
            session.answered()
            return
        session.asked()
        self._spawn(self.ops.handle(session, req))

    def _call(self, stream: bytes, corr: int, payload: bytes) -> None:
        """A named read or command; its outcome is queued the moment it is final (between
        batches, or once journaled), so it takes its place among the gateway's other frames."""
        sent = False

        def deliver(ok: bool, value) -> None:
            nonlocal sent
            if sent:
                return
            sent = True
            try:
                outcome = calls.encode_outcome(ok, value)
            except Exception as exc:  # a value JSON cannot carry: a bug in the call
                log.exception("call result not encodable")
                outcome = calls.encode_outcome(False, exc)
            self.writer.add(stream, corr, wire.RESULT, outcome)

        async def run() -> None:
            try:
                await calls.run(self.exchange, payload, deliver)
            except Exception as exc:
                deliver(False, exc)

        self._spawn(run())

    # -- connections and gateways that are gone -------------------------------------------------

    def _close(self, session: RemoteSession) -> None:
        session.closed = True
        self.hub.remove(session)
        self.ops.catalogue_feed.watchers.discard(session)
        if session.cancel_on_disconnect and session.placed:
            self._spawn(cancel_left_resting(self.exchange, session))

    def _drop_gateway(self, gateway: str, resync: bool = False) -> None:
        for key in [key for key in self.sessions if key[0] == gateway]:
            self._close(self.sessions.pop(key))
        self.gateways.pop(gateway, None)
        if resync:
            self.writer.add(self.names.out(gateway), RESYNC, wire.ANSWERED)

    def _expire_holds(self) -> None:
        """A held place whose funds never came (a bug, or a gateway that died unnoticed) goes
        to the engine as it is after HOLD_MAX_S: the engine's own check decides."""
        now = time.monotonic()
        for session in list(self.sessions.values()):
            if session.held is not None and now - session.held_since > HOLD_MAX_S:
                kind, payload = session.held
                log.error("intake: funds for %s never came; placing as it is", session.user)
                self._release(session, wire.ORDER_FUNDED if kind == wire.ORDER
                              else wire.REQUEST_FUNDED, payload)

    async def _watch_gateways(self) -> None:
        every_s = self.peer_timeout_s / 3
        while True:
            await asyncio.sleep(every_s)
            self._expire_holds()
            gateways = list(self.gateways)
            if not gateways:
                continue
            try:
                alive = await self.redis.mget([self.names.alive(g) for g in gateways])
            except Exception as exc:
                log.warning("intake: gateway liveness unknown: %r", exc)
                continue
            for gateway, value in zip(gateways, alive):
                if value is None or int(value) != self.gateways.get(gateway):
                    log.warning("intake: gateway %s is gone; its %d sessions here end", gateway,
                                sum(1 for key in self.sessions if key[0] == gateway))
                    self._drop_gateway(gateway)

