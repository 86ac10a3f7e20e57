"""Money follows the bettor between shards (engine/transfers.py has the commands and the why).

A bettor has a wallet on every shard. Deposits land on the home shard (shards.py); an order is
checked against the wallet on its market's shard, alone, so the order path stays on one shard
and one journal. When that wallet is short (the place is refused INSUFFICIENT_FUNDS, which
changed nothing), the gateway (`Funder`) moves the shortfall there from the bettor's other
shards, then places again, once: the client sees only the outcome of that second place. So does
a withdrawal, on the home shard.

A transfer is exactly-once with an outbox, never a distributed transaction (`TransferDesk`, on
each shard):
1. the source journals TransferOut (refused beyond the available balance), then sends the
   destination TRANSFER_IN (wire.py) with the transfer as a TransferIn command;
2. the destination journals TransferIn (a repeat of a transfer id is TransferRepeated and
   changes nothing), then sends the source TRANSFER_CONFIRMED;
3. the source journals ConfirmTransfer and answers whoever asked for the transfer.
Until step 3 the transfer is pending in the source's engine state, which survives restarts
(snapshot + journal): the source sends TRANSFER_IN again for every transfer still pending after
RESEND_S, so a shard or the wire dying anywhere in between delays the money, never loses or
doubles it. Meanwhile it is in TRANSIT on the source: no shard lets the bettor spend it, and the
bettor's wallet (summed over the shards with each shard's net transfers) shows it all along.
"""

import asyncio
import logging

import orjson

from engine import commands as c
from engine import events as e
from engine.codec import decode_command, encode_command
from engine.money import win_amount
from engine.rejections import Code

from ..ops import OpError
from . import calls, wire

log = logging.getLogger(__name__)

RESEND_S = 2.0  # a transfer pending this long is delivered again


def worst_case_minor(cmd: c.PlaceOrder) -> int:
    """The most an order can add to its wallet's hold: a back's stake, a lay's liability."""
    if cmd.side == c.BACK:
        return cmd.size_minor
    return win_amount(cmd.size_minor, cmd.price)


# -- engine side ----------------------------------------------------------------------------------


def _transfer_id(engine, events: list) -> str:
    for ev in events:
        if type(ev) is e.FundsTransferredOut:
            return ev.transfer
        if type(ev) is e.CommandRejected:
            raise OpError(ev.code, ev.reason)
    raise OpError(Code.INTERNAL, "the transfer produced no event")


class TransferDesk:
    """A shard's transfers in and out over the wire."""

    def __init__(self, shard: int, exchange, writer: wire.Writer, names) -> None:
        self.shard = shard
        self.exchange = exchange
        self.writer = writer
        self.names = names
        self.waiting: dict[str, tuple[bytes, int]] = {}  # transfer -> (gateway stream, call)
        self.sent = self.credited = self.confirmed = self.resent = 0
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.Task | None = None

    def start(self) -> None:
        self._loop = asyncio.create_task(self._resend_loop(), name="transfers-resend")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _send_in(self, transfer: str, user: str, currency: str, amount: int, to_shard: int):
        cmd = c.TransferIn(transfer=transfer, user=user, currency=currency, amount_minor=amount,
                           from_shard=self.shard)
        self.writer.add(self.names.cmd(to_shard), 0, wire.TRANSFER_IN, encode_command(cmd))

    def on_batch(self, records):
        """Sequencer renderer: each transfer journaled out goes to its destination once the
        batch is journaled (after the replies: the asker is noted as waiting first)."""
        out = [ev for _, _, events in records for ev in events
               if type(ev) is e.FundsTransferredOut]
        if not out:
            return None

        def release() -> None:
            for ev in out:
                self.sent += 1
                self._send_in(ev.transfer, ev.user, ev.currency, ev.amount_minor, ev.to_shard)

        return release

    def start_transfer(self, stream: bytes, corr: int, payload: bytes) -> None:
        """A gateway's CALL ["transfer", {user, currency, amount, to_shard}]: answered once the
        destination credited it (or at once, if this shard refuses it)."""
        args = orjson.loads(payload)[1]
        cmd = c.TransferOut(user=args["user"], currency=args["currency"],
                            amount_minor=args["amount"], to_shard=args["to_shard"])

        def deliver(ok: bool, value) -> None:
            if ok:
                self.waiting[value] = (stream, corr)
            else:
                self.writer.add(stream, corr, wire.RESULT, calls.encode_outcome(False, value))

        async def run() -> None:
            try:
                await self.exchange.submit(cmd, view=_transfer_id, deliver=deliver)
            except Exception as exc:  # not taken (busy, stopped): the asker hears so
                if not isinstance(exc, OpError):
                    deliver(False, exc)

        self._spawn(run())

    def on_record(self, kind: int, payload: bytes) -> None:
        if kind == wire.TRANSFER_IN:
            self._spawn(self._credit(decode_command(payload)))
        elif kind == wire.TRANSFER_CONFIRMED:
            self._spawn(self._confirmed(orjson.loads(payload)[0]))

    async def _credit(self, cmd: c.TransferIn) -> None:
        events = await self.exchange.submit(cmd)
        rejected = next((ev for ev in events if type(ev) is e.CommandRejected), None)
        if rejected is not None:  # a malformed transfer: it stays pending at its source
            log.critical("transfer %s refused here: %s %s", cmd.transfer, rejected.code,
                         rejected.reason)
            return
        self.credited += 1
        self.writer.add(self.names.cmd(cmd.from_shard), 0, wire.TRANSFER_CONFIRMED,
                        orjson.dumps([cmd.transfer]))

    async def _confirmed(self, transfer: str) -> None:
        if await self.exchange.read(lambda engine: transfer in engine.transfers.pending):
            await self.exchange.submit(c.ConfirmTransfer(transfer=transfer))
            self.confirmed += 1
        asker = self.waiting.pop(transfer, None)
        if asker is not None:
            self.writer.add(asker[0], asker[1], wire.RESULT,
                            calls.encode_outcome(True, transfer))

    async def _resend_loop(self) -> None:
        seen: set[str] = set()
        while True:
            await asyncio.sleep(RESEND_S)
            try:
                pending = await self.exchange.read(
                    lambda engine: dict(engine.transfers.pending))
            except Exception as exc:
                log.warning("pending transfers unknown: %r", exc)
                continue
            for transfer, (user, currency, amount, to_shard) in pending.items():
                if transfer in seen:  # pending since the last look: deliver it again
                    self.resent += 1
                    self._send_in(transfer, user, currency, amount, to_shard)
            seen = set(pending)


class FundsGate:
    """Engine side: may a place (or a slip) of the connection go to the engine now, or might
    the bettor's wallet here not cover it? Reading the engine now is quick but ahead of what the
    connection sent before and the sequencer has not applied yet: so places this shard took and
    has not applied are `promised` (their worst case, per user and currency). A place that does
    not fit in what is left is checked exactly between batches (intake: `_verify`)."""

    def __init__(self, exchange) -> None:
        self.engine = exchange.sequencer.engine
        self.promised: dict[tuple[str, str], int] = {}
        exchange.sequencer.add_renderer(self.on_batch)

    def _left(self, user: str, currency: str) -> int:
        w = self.engine.wallets.get((user, currency))
        return (w.available if w is not None else 0) - self.promised.get((user, currency), 0)

    def fits(self, cmd: c.PlaceOrder) -> bool:
        m = self.engine.markets.get(cmd.market)
        return m is None or self._left(cmd.user, m.currency) >= worst_case_minor(cmd)

    def slip_fits(self, user: str, legs: list) -> bool:
        return all(self._left(user, currency) >= need
                   for currency, need in _slip_needs(self.engine, legs).items())

    def promise(self, cmd: c.PlaceOrder) -> None:
        m = self.engine.markets.get(cmd.market)
        if m is not None:
            key = (cmd.user, m.currency)
            self.promised[key] = self.promised.get(key, 0) + worst_case_minor(cmd)

    def on_batch(self, records):
        """Sequencer renderer: applied places are no longer promises (any place of a user with
        promises counts, a slip's too: the gate only ever errs towards trying the engine)."""
        promised = self.promised
        if not promised:
            return None
        markets = self.engine.markets
        for _, cmd, _ in records:
            if type(cmd) is c.PlaceOrder:
                m = markets.get(cmd.market)
                key = (cmd.user, m.currency) if m is not None else None
                left = promised.get(key)
                if left is not None:
                    left -= worst_case_minor(cmd)
                    if left > 0:
                        promised[key] = left
                    else:
                        del promised[key]
        return None


def shortfalls(engine, cmd: c.PlaceOrder) -> list:
    """[[currency, amount]] the user's wallet here lacks for this place now, or [] when it
    covers it (or the engine will refuse it for another reason): run between batches."""
    m = engine.markets.get(cmd.market)
    if m is None or engine.preview(cmd).code != Code.INSUFFICIENT_FUNDS:
        return []  # netting: a hedge may need less than its worst case
    w = engine.wallets.get((cmd.user, m.currency))
    return [[m.currency, worst_case_minor(cmd) - (w.available if w is not None else 0)]]


def _slip_needs(engine, legs: list) -> dict[str, int]:
    need: dict[str, int] = {}
    for market, _, side, stake, price in legs:
        m = engine.markets.get(market)
        if m is not None:
            worst = stake if side == c.BACK else win_amount(stake, price)
            need[m.currency] = need.get(m.currency, 0) + worst
    return need


def slip_shortfalls(engine, user: str, legs: list) -> list:
    """[[currency, amount], ...] a slip's legs (market, selection, side, stake, price) need here
    beyond what the user's wallets hold, at their worst case: run between batches."""
    shorts = []
    for currency, amount in _slip_needs(engine, legs).items():
        w = engine.wallets.get((user, currency))
        available = w.available if w is not None else 0
        if available < amount:
            shorts.append([currency, amount - available])
    return shorts


# -- gateway side ---------------------------------------------------------------------------------


class Funder:
    """Moves a bettor's money to the shard that needs it, from their other shards."""

    def __init__(self, client, shards) -> None:
        self.client = client
        self.shards = shards
        self.transfers = 0
        self.moved_minor = 0

    async def fund(self, user: str, shard: int, need: int, *, market: str | None = None,
                   currency: str | None = None) -> int:
        """Bring the user's available money on `shard` up to `need` if their other shards hold
        it (as much as they do); returns how much moved."""
        where = {"user": user, "market": market} if market else {"user": user,
                                                                  "currency": currency}
        here = calls.decode_outcome(await self.client.call(
            shard, calls.encode_read("funds", where)))
        if here["currency"] is None or need <= here["available"]:
            return 0
        return await self.move(user, shard, here["currency"], need - here["available"])

    async def move(self, user: str, shard: int, currency: str, amount: int) -> int:
        """`amount` is missing on `shard`: move the user's available money there from their
        other shards, all of it, not just `amount`. The money follows the bettor to where they
        bet, so their next orders there need no transfer of their own. Returns how much moved
        (once credited there)."""
        others = [k for k in self.shards.all if k != shard and self.client.up(k)]
        answers = await asyncio.gather(*(self.client.call(k, calls.encode_read(
            "funds", {"user": user, "currency": currency})) for k in others))
        available = {k: calls.decode_outcome(a)["available"] for k, a in zip(others, answers)}
        plan = [(k, available[k]) for k in others if available[k] > 0] if amount > 0 else []
        outcomes = await asyncio.gather(
            *(self.client.call(k, orjson.dumps(["transfer", {
                "user": user, "currency": currency, "amount": take, "to_shard": shard}]))
              for k, take in plan), return_exceptions=True)
        moved = 0
        for (k, take), outcome in zip(plan, outcomes):
            try:
                if isinstance(outcome, Exception):
                    raise outcome
                calls.decode_outcome(outcome)
            except OpError:  # spent meanwhile on its own shard: that part stays short
                continue
            except Exception as exc:
                log.warning("transfer for %s from shard %d failed: %r", user, k, exc)
                continue
            moved += take
            self.transfers += 1
        self.moved_minor += moved
        return moved
