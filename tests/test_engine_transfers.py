"""Money between shards (engine/transfers.py): a transfer leaves one engine's wallet through its
TRANSIT account and arrives, once, through the other's; and over two engines trading side by
side, with transfers delivered late, twice or out of order, no money appears or vanishes."""

import pickle

from hypothesis import given
from hypothesis import strategies as st

from engine import commands as c
from engine import events as e
from engine.engine import EXTERNAL, Engine
from engine.rejections import Code
from engine.transfers import TRANSIT
from tests.test_engine_properties import PRICES, SETTINGS

SPAN = 10**12  # each shard's seqs start at its own base (gateway/split/shards.py)


class Shard:
    def __init__(self, index: int) -> None:
        self.index = index
        self.engine = Engine()
        self.seq = index * SPAN
        self.ts = 1_700_000_000_000

    def apply(self, cls, **fields) -> list[e.Event]:
        self.seq += 1
        self.ts += 1
        events = self.engine.apply(cls(seq=self.seq, ts=self.ts, **fields))
        self.engine.validate()
        return events

    def balance(self, account: str) -> int:
        w = self.engine.wallets.get((account, "BDT"))
        return w.balance if w is not None else 0

    def available(self, account: str) -> int:
        w = self.engine.wallets.get((account, "BDT"))
        return w.available if w is not None else 0


def _rejected(events) -> str | None:
    return next((ev.code for ev in events if isinstance(ev, e.CommandRejected)), None)


def test_a_transfer_moves_available_money_out_through_transit_and_in_once():
    a, b = Shard(0), Shard(1)
    a.apply(c.Deposit, user="u", currency="BDT", amount_minor=10_000, ref="d1")
    out = a.apply(c.TransferOut, user="u", currency="BDT", amount_minor=4_000, to_shard=1)
    sent = next(ev for ev in out if isinstance(ev, e.FundsTransferredOut))
    assert sent.transfer == f"t{a.seq}" and sent.to_shard == 1
    assert (a.balance("u"), a.balance(TRANSIT)) == (6_000, 4_000)
    assert a.engine.transfers.pending == {sent.transfer: ("u", "BDT", 4_000, 1)}
    assert a.engine.transfers.net == {("u", "BDT"): 4_000}
    for _ in range(2):  # delivered twice: credited once
        b.apply(c.TransferIn, transfer=sent.transfer, user="u", currency="BDT",
                amount_minor=4_000, from_shard=0)
    assert (b.balance("u"), b.balance(TRANSIT)) == (4_000, -4_000)
    assert b.engine.transfers.net == {("u", "BDT"): -4_000}
    assert a.balance(TRANSIT) + b.balance(TRANSIT) == 0
    a.apply(c.ConfirmTransfer, transfer=sent.transfer)
    assert not a.engine.transfers.pending


def test_a_repeated_delivery_is_told_apart_and_changes_nothing():
    b = Shard(1)
    b.apply(c.TransferIn, transfer="t7", user="u", currency="BDT", amount_minor=100, from_shard=0)
    events = b.apply(c.TransferIn, transfer="t7", user="u", currency="BDT", amount_minor=100,
                     from_shard=0)
    assert [type(ev) for ev in events] == [e.TransferRepeated]


def test_a_transfer_beyond_what_is_available_is_refused_and_changes_nothing():
    a = Shard(0)
    a.apply(c.Deposit, user="u", currency="BDT", amount_minor=1_000, ref="d1")
    a.apply(c.CreateMarket, market="m", event="e", name="m", selections=(("s", "S"), ("t", "T")))
    a.apply(c.SetMarketStatus, market="m", status="open")
    a.apply(c.PlaceOrder, user="u", market="m", selection="s", side=c.BACK, price=200,
            size_minor=600)  # holds 6.00 of 10.00
    before = pickle.dumps(a.engine)
    events = a.apply(c.TransferOut, user="u", currency="BDT", amount_minor=401, to_shard=1)
    assert _rejected(events) == Code.INSUFFICIENT_FUNDS
    assert a.engine.transfers.pending == {} and a.balance("u") == 1_000
    assert _rejected(a.apply(c.TransferOut, user="house", currency="BDT", amount_minor=1,
                             to_shard=1)) == Code.FORBIDDEN
    assert _rejected(a.apply(c.TransferOut, user="u", currency="BDT", amount_minor=0,
                             to_shard=1)) == Code.INVALID_SIZE
    assert _rejected(a.apply(c.ConfirmTransfer, transfer="t404")) == Code.BAD_REQUEST
    assert pickle.loads(before).wallets[("u", "BDT")].balance == a.balance("u")


def test_a_snapshot_from_before_transfers_loads_with_none():
    a = Shard(0)
    a.apply(c.Deposit, user="u", currency="BDT", amount_minor=1_000, ref="d1")
    state = a.engine.__getstate__()
    del state["transfers"]
    old = Engine.__new__(Engine)
    old.__setstate__(state)
    assert not old.transfers.pending and not old.transfers.net and not old.transfers.credited
    old.validate()


@SETTINGS
@given(st.data())
def test_money_is_conserved_across_two_shards_whatever_the_order_of_deliveries(data):
    users = ("ann", "ben", "cat")
    shards = [Shard(0), Shard(1)]
    for shard in shards:
        for market in ("m1", "m2"):
            shard.apply(c.CreateMarket, market=f"{market}-{shard.index}", event="e",
                        name=market, selections=(("h", "H"), ("a", "A")))
            shard.apply(c.SetMarketStatus, market=f"{market}-{shard.index}", status="open")
    in_flight: list[tuple[int, c.TransferIn]] = []  # (destination, its credit), not delivered
    delivered: list[tuple[int, c.TransferIn]] = []
    external = 0  # money brought in by deposits minus what approved withdrawals took out

    def users_total() -> int:  # every account but EXTERNAL, both shards: TRANSIT included
        return sum(w.balance for shard in shards for (acct, _), w in shard.engine.wallets.items()
                   if acct != EXTERNAL)

    for _ in range(data.draw(st.integers(5, 60), label="steps")):
        shard = shards[data.draw(st.integers(0, 1), label="shard")]
        user = data.draw(st.sampled_from(users), label="user")
        kind = data.draw(st.sampled_from(["deposit", "place", "place", "place", "out", "out",
                                          "deliver", "redeliver", "confirm", "settle",
                                          "withdraw"]), label="kind")
        if kind == "deposit":
            amount = data.draw(st.integers(1, 20_000), label="amount")
            events = shard.apply(c.Deposit, user=user, currency="BDT", amount_minor=amount,
                                 ref=f"d{shard.seq}")
            external += amount if not _rejected(events) else 0
        elif kind == "place":
            shard.apply(c.PlaceOrder, user=user, market=f"m{data.draw(st.integers(1, 2))}-"
                        f"{shard.index}", selection=data.draw(st.sampled_from("ha")),
                        side=data.draw(st.sampled_from([c.BACK, c.LAY])),
                        price=data.draw(st.sampled_from(PRICES[:6])),
                        size_minor=data.draw(st.integers(1, 5_000)))
        elif kind == "out":
            amount = data.draw(st.integers(1, 15_000), label="amount")
            events = shard.apply(c.TransferOut, user=user, currency="BDT", amount_minor=amount,
                                 to_shard=1 - shard.index)
            for ev in events:
                if isinstance(ev, e.FundsTransferredOut):
                    in_flight.append((1 - shard.index, c.TransferIn(
                        transfer=ev.transfer, user=user, currency="BDT", amount_minor=amount,
                        from_shard=shard.index)))
        elif kind == "deliver" and in_flight:
            dest, credit = in_flight.pop(data.draw(st.integers(0, len(in_flight) - 1)))
            shards[dest].apply(type(credit), **{f: getattr(credit, f) for f in (
                "transfer", "user", "currency", "amount_minor", "from_shard")})
            delivered.append((dest, credit))
        elif kind == "redeliver" and delivered:
            dest, credit = delivered[data.draw(st.integers(0, len(delivered) - 1))]
            events = shards[dest].apply(c.TransferIn, transfer=credit.transfer,
                                        user=credit.user, currency="BDT",
                                        amount_minor=credit.amount_minor,
                                        from_shard=credit.from_shard)
            assert [type(ev) for ev in events] == [e.TransferRepeated]
        elif kind == "confirm" and delivered:
            dest, credit = delivered[data.draw(st.integers(0, len(delivered) - 1))]
            source = shards[credit.from_shard]
            if credit.transfer in source.engine.transfers.pending:
                source.apply(c.ConfirmTransfer, transfer=credit.transfer)
        elif kind == "settle":
            market = f"m{data.draw(st.integers(1, 2))}-{shard.index}"
            if shard.engine.markets[market].status == "OPEN":
                shard.apply(c.SettleMarket, market=market,
                            winners=(data.draw(st.sampled_from("ha")),))
        elif kind == "withdraw":
            amount = data.draw(st.integers(1, 10_000), label="amount")
            events = shard.apply(c.RequestWithdrawal, user=user, currency="BDT",
                                 amount_minor=amount)
            for ev in events:
                if isinstance(ev, e.WithdrawalRequested):
                    shard.apply(c.ApproveWithdrawal, withdrawal=ev.withdrawal)
                    external -= amount
        # conservation across the shards, in flight or not
        assert users_total() == external
        pending = sum(credit.amount_minor for _, credit in in_flight)
        assert sum(s.balance(TRANSIT) for s in shards) == pending
        for u in users:  # what each shard shows (balance + net) sums to the whole balance
            shown = sum(s.balance(u) + s.engine.transfers.net.get((u, "BDT"), 0) for s in shards)
            mine = sum(credit.amount_minor for _, credit in in_flight if credit.user == u)
            assert shown == sum(s.balance(u) for s in shards) + mine
    for dest, credit in in_flight:  # everything arrives in the end
        shards[dest].apply(c.TransferIn, transfer=credit.transfer, user=credit.user,
                           currency="BDT", amount_minor=credit.amount_minor,
                           from_shard=credit.from_shard)
    assert sum(s.balance(TRANSIT) for s in shards) == 0
    assert users_total() == external
