"""Money between shards: a bettor's wallet on one shard pays into their wallet on another.

The split shape runs markets on several engines (shards), each with its own wallets: a bettor
has a wallet on every shard, and money reaches the shard of the market they bet on by transfer
(gateway/split/funding.py decides when). A transfer is two journaled commands on two shards:

- `TransferOut` on the source: the user's available money moves to this shard's TRANSIT account
  (refused, changing nothing, beyond the available balance); the transfer is pending here, its
  id "t<seq>" unique across shards (each shard numbers its seqs from its own base);
- `TransferIn` on the destination: TRANSIT pays the user, once per transfer id ever (a repeat is
  TransferRepeated and changes nothing), so delivering it again after a crash is harmless;
- `ConfirmTransfer` on the source, once the destination credited it: no longer pending (the
  source re-delivers pending transfers until then).

Every movement is a balanced ledger movement on its own shard, so each shard's balances still
sum to zero (DESIGN.md §3.1) with TRANSIT among them: the source's TRANSIT holds what left, the
destination's owes what arrived, and across shards TRANSIT sums to the money in flight (zero once
every transfer arrived). Per user and currency the engine keeps `net`: transferred out minus in;
a wallet's balance plus its net is what the bettor's money on this shard would be had they never
moved any, and those figures summed over the shards are the bettor's whole balance at any moment,
in flight or not (gateway/views.py wallet_view shows it; a gateway sums the shards).
"""

from . import events as e
from .money import MAX_MINOR
from .rejections import Code, Rejected

TRANSIT = "transit"


class Transfers:
    """A shard's transfers: pending ones it sent, ids it credited, net per (user, currency)."""

    __slots__ = ("pending", "credited", "net")

    def __init__(self) -> None:
        # transfer id -> (user, currency, amount, destination shard): out, not yet confirmed
        self.pending: dict[str, tuple[str, str, int, int]] = {}
        self.credited: set[str] = set()  # transfer ids credited here, kept forever
        self.net: dict[tuple[str, str], int] = {}  # (user, currency) -> out minus in

    def __getstate__(self):
        return (self.pending, self.credited, self.net)

    def __setstate__(self, state) -> None:
        self.pending, self.credited, self.net = state

    def _add_net(self, user: str, currency: str, amount: int) -> None:
        key = (user, currency)
        net = self.net.get(key, 0) + amount
        if net:
            self.net[key] = net
        else:
            self.net.pop(key, None)


def _check_amount(cmd) -> None:
    from .engine import SYSTEM_ACCOUNTS  # engine.py imports this module

    if cmd.user in SYSTEM_ACCOUNTS:
        raise Rejected(Code.FORBIDDEN, f"{cmd.user!r} is a system account")
    if not 0 < cmd.amount_minor <= MAX_MINOR:
        raise Rejected(Code.INVALID_SIZE, "a transfer's amount must be positive")


def transfer_out(engine, cmd) -> None:
    _check_amount(cmd)
    w = engine.wallets.get((cmd.user, cmd.currency))
    if w is None or w.available < cmd.amount_minor:
        raise Rejected(Code.INSUFFICIENT_FUNDS, "transfer above the available balance")
    tid = f"t{engine._seq}"
    transfers = engine.transfers
    transfers.pending[tid] = (cmd.user, cmd.currency, cmd.amount_minor, cmd.to_shard)
    transfers._add_net(cmd.user, cmd.currency, cmd.amount_minor)
    engine._emit(e.FundsTransferredOut(seq=engine._seq, ts=engine._ts, transfer=tid,
                                       user=cmd.user, currency=cmd.currency,
                                       amount_minor=cmd.amount_minor, to_shard=cmd.to_shard))
    engine._move_money("transfer", tid, cmd.currency,
                       [(cmd.user, -cmd.amount_minor), (TRANSIT, cmd.amount_minor)])


def transfer_in(engine, cmd) -> None:
    _check_amount(cmd)
    transfers = engine.transfers
    if cmd.transfer in transfers.credited:
        engine._emit(e.TransferRepeated(seq=engine._seq, ts=engine._ts, transfer=cmd.transfer))
        return
    transfers.credited.add(cmd.transfer)
    transfers._add_net(cmd.user, cmd.currency, -cmd.amount_minor)
    engine._emit(e.FundsTransferredIn(seq=engine._seq, ts=engine._ts, transfer=cmd.transfer,
                                      user=cmd.user, currency=cmd.currency,
                                      amount_minor=cmd.amount_minor, from_shard=cmd.from_shard))
    engine._move_money("transfer", cmd.transfer, cmd.currency,
                       [(TRANSIT, -cmd.amount_minor), (cmd.user, cmd.amount_minor)])


def confirm_transfer(engine, cmd) -> None:
    if engine.transfers.pending.pop(cmd.transfer, None) is None:
        raise Rejected(Code.BAD_REQUEST, f"no pending transfer {cmd.transfer!r}")
    engine._emit(e.TransferConfirmed(seq=engine._seq, ts=engine._ts, transfer=cmd.transfer))


def validate(engine, fail) -> None:
    """TRANSIT holds exactly the users' net transfers, per currency."""
    nets: dict[str, int] = {}
    for (_, currency), net in engine.transfers.net.items():
        nets[currency] = nets.get(currency, 0) + net
    transit = {currency: w.balance for (account, currency), w in engine.wallets.items()
               if account == TRANSIT}
    for currency in set(nets) | set(transit):
        if nets.get(currency, 0) != transit.get(currency, 0):
            fail(f"{currency}: transit holds {transit.get(currency, 0)}, the users' net "
                 f"transfers are {nets.get(currency, 0)}")
