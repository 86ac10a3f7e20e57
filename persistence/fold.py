"""Fold journaled events into read-model row changes, in memory, with no I/O.

A batch of records becomes a `Changes`: rows to insert (new markets, orders, fills, ledger
entries, wallet movements, ...) and net changes to rows written by earlier batches (order size
deltas, last wallet balance, last market status). Rows first seen in the batch absorb their
later events here, so each row is written once per batch. readmodel.py turns a `Changes` into
a few set-based SQL statements.

Wallet movements (a customer's statement): one row per WalletChanged of a customer, which the
engine emits once per wallet per command, after the command's other events. The row takes its
cause from the command, its amount from the command's MoneyMoved entries for that wallet (noted
as they are folded), and its market and order from the command's first event naming one of the
user's orders. So a place costs one movement row (the placer's hold), and a fill only when it
moves a maker's hold.
"""

from dataclasses import field

import cython

from engine import commands as c
from engine import events as ev
from engine.money import win_amount
from engine.engine import SYSTEM_ACCOUNTS
from risk.self_limits import NAMES as SELF_LIMIT_NAMES

from .journal import Record

EXECUTABLE = "EXECUTABLE"
EXECUTION_COMPLETE = "EXECUTION_COMPLETE"
_FINAL_STATUS = {ev.MarketSettled: "SETTLED", ev.MarketVoided: "VOIDED"}


@cython.no_gc  # strings, numbers and None only: never in a cycle (as engine/events.py)
@cython.dataclasses.dataclass
@cython.cclass
class OrderRow:
    order_id: str
    user_id: str
    market: str
    selection: str
    side: str
    price: int
    size_minor: int
    matched_minor: int
    remaining_minor: int
    cancelled_minor: int
    lapsed_minor: int
    matched_value: int
    matched_win_minor: int
    status: str
    persistence: str
    tif: str
    ref: str
    release_ts_ms: int
    replaced_by: str | None
    placed_seq: int
    placed_ts_ms: int
    updated_seq: int
    pool: bool = False  # a pool bet, staked (migration 0010: orders are read by market for these)

    def astuple(self) -> tuple:
        """dataclasses.astuple of the row (its fields in order: the orders table's columns),
        read in C for write_changes."""
        return (self.order_id, self.user_id, self.market, self.selection, self.side, self.price,
                self.size_minor, self.matched_minor, self.remaining_minor, self.cancelled_minor,
                self.lapsed_minor, self.matched_value, self.matched_win_minor, self.status,
                self.persistence, self.tif, self.ref, self.release_ts_ms, self.replaced_by,
                self.placed_seq, self.placed_ts_ms, self.updated_seq, self.pool)


@cython.no_gc  # strings, numbers and None only: never in a cycle (as engine/events.py)
@cython.dataclasses.dataclass
@cython.cclass
class OrderDelta:
    """Net change to an order row written by an earlier batch."""

    order_id: str
    matched_minor: int = 0
    remaining_minor: int = 0  # negative: size left the book
    cancelled_minor: int = 0
    lapsed_minor: int = 0
    matched_value: int = 0
    matched_win_minor: int = 0
    released: bool = False
    replaced_by: str | None = None
    seq: int = 0
    pool: bool = False  # staked into a pool (a delayed pool bet, released)

    def astuple(self) -> tuple:
        """dataclasses.astuple of the delta, read in C for write_changes."""
        return (self.order_id, self.matched_minor, self.remaining_minor, self.cancelled_minor,
                self.lapsed_minor, self.matched_value, self.matched_win_minor, self.released,
                self.replaced_by, self.seq, self.pool)


@cython.dataclasses.dataclass
@cython.cclass
class Changes:
    first_seq: int = 0
    last_seq: int = 0
    last_ts_ms: int = 0
    markets: dict = field(default_factory=dict)  # market -> row tuple (new markets)
    market_updates: dict = field(default_factory=dict)  # market -> {column: value}
    selections: list = field(default_factory=list)  # row tuples (new selections)
    selection_updates: dict = field(default_factory=dict)  # (market, selection) -> {column: value}
    orders: dict = field(default_factory=dict)  # order id -> OrderRow (new orders)
    order_deltas: dict = field(default_factory=dict)  # order id -> OrderDelta
    fills: dict = field(default_factory=dict)  # (seq, idx) -> row tuple (new fills)
    fill_updates: dict = field(default_factory=dict)  # (seq, idx) -> [price, win, was, seq]
    voided_selections: list = field(default_factory=list)  # (market, selection): void fills
    ledger: list = field(default_factory=list)
    settlements: list = field(default_factory=list)
    wallets: dict = field(default_factory=dict)  # (user, currency) -> (balance, held, seq)
    user_limits: dict = field(default_factory=dict)  # user -> row tuple
    market_limits: dict = field(default_factory=dict)  # market -> row tuple
    withdrawals: dict = field(default_factory=dict)  # id -> row list (new withdrawals)
    withdrawal_decisions: dict = field(default_factory=dict)  # id -> (status, seq, ts)
    movements: list = field(default_factory=list)  # wallet_movements row tuples
    # scratch of the record being folded, for its wallet movements
    command: object = None
    events: list = field(default_factory=list)
    moved: dict = field(default_factory=dict)  # (seq, user, currency) -> (amount, commission)
    subjects_seq: int = 0
    subjects: dict = field(default_factory=dict)  # user -> (order, market) in that seq
    self_limits: dict = field(default_factory=dict)  # (user, currency, limit) -> row tuple
    self_exclusions: dict = field(default_factory=dict)  # user -> row tuple
    refused_deposits: list = field(default_factory=list)


class UnknownEvent(Exception):
    """An event type with no fold: persisting it would silently drop what it says."""


def fold(records: list[Record]) -> Changes:
    ch = Changes()
    for seq, cmd, events in records:
        if not ch.first_seq:
            ch.first_seq = seq
        ch.last_seq, ch.last_ts_ms = seq, cmd.ts
        ch.command, ch.events = cmd, events
        for idx, event in enumerate(events):
            # the order path's events, most of a journal, in C calls (fold.pxd); _FOLDERS has
            # them too, with every other type
            kind = type(event)
            if kind is ev.OrderPlaced:
                _order_placed(ch, seq, idx, event)
            elif kind is ev.WalletChanged:
                _wallet_changed(ch, seq, idx, event)
            elif kind is ev.BetMatched:
                _bet_matched(ch, seq, idx, event)
            else:
                folder = _FOLDERS.get(kind)
                if folder is None:
                    raise UnknownEvent(f"no read-model fold for {kind.__name__} at seq {seq}")
                folder(ch, seq, idx, event)
    return ch


def _nothing_changed(ch, seq, idx, e):
    """A rejection or an idempotent repeat leaves the read model as it is."""


# -- markets ----------------------------------------------------------------------------------

def _market_created(ch: Changes, seq, idx, e: ev.MarketCreated):
    ch.markets[e.market] = [e.market, e.event, e.name, e.type, e.currency, e.commission_bp,
                            e.take_bp, "INACTIVE", False, 0, seq, e.ts, e.start_ts, seq]
    for position, (selection, name) in enumerate(e.selections):
        ch.selections.append((e.market, selection, name, position, seq))


def _update_market(ch: Changes, market: str, seq: int, **columns):
    row = ch.markets.get(market)
    if row is not None:  # created in this batch
        for name, value in columns.items():
            row[_MARKET_COLUMN_INDEX[name]] = value
        row[-1] = seq
    else:
        ch.market_updates.setdefault(market, {}).update(columns, updated_seq=seq)


_MARKET_COLUMN_INDEX = {"status": 7, "in_play": 8, "bet_delay_ms": 9}


def _market_status_changed(ch, seq, idx, e: ev.MarketStatusChanged):
    _update_market(ch, e.market, seq, status=e.status, in_play=e.in_play,
                   bet_delay_ms=e.bet_delay_ms)


def _market_settled(ch, seq, idx, e: ev.MarketSettled):
    _update_market(ch, e.market, seq, status=_FINAL_STATUS[type(e)])
    ch.settlements.append((e.market, seq, "settled", list(e.winners),
                           [list(d) for d in e.dead_heat], e.ts))


def _market_voided(ch, seq, idx, e: ev.MarketVoided):
    _update_market(ch, e.market, seq, status=_FINAL_STATUS[type(e)])
    ch.settlements.append((e.market, seq, "voided", [], [], e.ts))


def _prices_set(ch, seq, idx, e: ev.PricesSet):
    for selection, price in e.fair:
        ch.selection_updates.setdefault((e.market, selection), {}).update(
            fair_price=price, updated_seq=seq)
    for selection, price in e.offered:
        ch.selection_updates.setdefault((e.market, selection), {}).update(
            offered_price=price, updated_seq=seq)


def _selection_suspended(ch, seq, idx, e: ev.SelectionSuspended):
    ch.selection_updates.setdefault((e.market, e.selection), {}).update(
        house_suspended=True, updated_seq=seq)


def _selection_removed(ch, seq, idx, e: ev.SelectionRemoved):
    ch.selection_updates.setdefault((e.market, e.selection), {}).update(
        removed_seq=seq, removed_ts_ms=e.ts, reduction_bp=e.reduction_bp, updated_seq=seq)
    # every fill on it was matched before: voided in place, whichever batch wrote it
    ch.voided_selections.append((e.market, e.selection))


def _bet_repriced(ch, seq, idx, e: ev.BetRepriced):
    key = (e.fill_seq, e.fill_idx)
    row = ch.fills.get(key)
    if row is not None:  # matched in this batch: the row goes with its current terms
        original = e.was_price if row[14] is None else row[14]
        ch.fills[key] = (*row[:5], e.price, row[6], e.win_minor, *row[8:14], original, seq)
    else:
        update = ch.fill_updates.get(key)
        if update is None:
            ch.fill_updates[key] = [e.price, e.win_minor, e.was_price, seq]
        else:  # repriced again in this batch: the first was-price is the one matched at
            update[0], update[1], update[3] = e.price, e.win_minor, seq
    value = (e.price - e.was_price) * e.size_minor
    won = e.win_minor - win_amount(e.size_minor, e.was_price)  # the fill's win went from that
    for order in (e.taker_order, e.maker_order):
        _change_order(ch, order, seq, value=value, win=won)


# -- orders -----------------------------------------------------------------------------------

def _order_placed(ch: Changes, seq, idx, e: ev.OrderPlaced):
    ch.orders[e.order] = OrderRow(
        e.order, e.user, e.market, e.selection, e.side, e.price, e.size_minor, 0, e.size_minor,
        0, 0, 0, 0, EXECUTABLE, e.persistence, e.tif, e.ref, e.release_ts, None, seq, e.ts, seq)


@cython.locals(ch=Changes, row=OrderRow, d=OrderDelta)  # a def: called with keywords
def _change_order(ch: Changes, order: str, seq: int, matched=0, remaining=0, cancelled=0,
                  lapsed=0, value=0, win=0, released=False, replaced_by=None, pool=False):
    row = ch.orders.get(order)
    if row is not None:
        row.matched_minor += matched
        row.remaining_minor += remaining
        row.cancelled_minor += cancelled
        row.lapsed_minor += lapsed
        row.matched_value += value
        row.matched_win_minor += win
        if released:
            row.release_ts_ms = 0
        if replaced_by is not None:
            row.replaced_by = replaced_by
        if pool:
            row.pool = True
        row.status = EXECUTION_COMPLETE if row.remaining_minor == 0 else EXECUTABLE
        row.updated_seq = seq
        return
    d = ch.order_deltas.get(order)
    if d is None:
        d = ch.order_deltas[order] = OrderDelta(order)
    d.matched_minor += matched
    d.remaining_minor += remaining
    d.cancelled_minor += cancelled
    d.lapsed_minor += lapsed
    d.matched_value += value
    d.matched_win_minor += win
    d.released = d.released or released
    if replaced_by is not None:
        d.replaced_by = replaced_by
    if pool:
        d.pool = True
    d.seq = seq


def _pool_staked(ch: Changes, seq, idx, e: ev.PoolStaked):
    _change_order(ch, e.order, seq, matched=e.size_minor, remaining=-e.size_minor, pool=True)


def _bet_matched(ch: Changes, seq, idx, e: ev.BetMatched):
    value = e.price * e.size_minor
    for order in (e.taker_order, e.maker_order):
        _change_order(ch, order, seq, matched=e.size_minor, remaining=-e.size_minor, value=value,
                      win=e.win_minor)
    # the last three: voided, original_price and repriced_seq (a non-runner may change them)
    ch.fills[(seq, idx)] = (seq, idx, e.ts, e.market, e.selection, e.price, e.size_minor,
                            e.win_minor, e.taker_order, e.taker_user, e.taker_side, e.maker_order,
                            e.maker_user, False, None, None)


def _order_cancelled(ch, seq, idx, e: ev.OrderCancelled):
    _change_order(ch, e.order, seq, cancelled=e.size_minor, remaining=-e.size_minor)


def _order_lapsed(ch, seq, idx, e: ev.OrderLapsed):
    _change_order(ch, e.order, seq, lapsed=e.size_minor, remaining=-e.size_minor)


def _order_released(ch, seq, idx, e: ev.OrderReleased):
    _change_order(ch, e.order, seq, released=True)


def _order_replaced(ch, seq, idx, e: ev.OrderReplaced):
    _change_order(ch, e.order, seq, replaced_by=e.new_order)


# -- money ------------------------------------------------------------------------------------

TRADE = "trade"
SETTLEMENT = "settlement"
VOID = "void"
NON_RUNNER = "non_runner"  # a selection removed: holds taken again, no money moved
_CAUSES = {c.Deposit: "deposit", c.RequestWithdrawal: "withdrawal_requested",
           c.ApproveWithdrawal: "withdrawal_approved", c.RejectWithdrawal: "withdrawal_rejected",
           c.SettleMarket: SETTLEMENT, c.VoidMarket: VOID, c.RemoveSelection: NON_RUNNER,
           c.TransferOut: "transfer_out", c.TransferIn: "transfer_in"}


def _wallet_changed(ch, seq, idx, e: ev.WalletChanged):
    user = e.user
    ch.wallets[(user, e.currency)] = (e.balance_minor, e.held_minor, seq)
    if user in SYSTEM_ACCOUNTS:
        return
    cmd = ch.command
    kind = type(cmd)
    amount, commission = ch.moved.pop((seq, user, e.currency), (0, 0)) if ch.moved else (0, 0)
    market = order = ref = None
    cause = _CAUSES.get(kind, TRADE)
    if cause is TRADE:
        # most movements are a placer's or canceller's own hold: no need to map the record
        first = ch.events[0]
        if kind is c.PlaceOrder and type(first) is ev.OrderPlaced and first.user == user:
            order, market = first.order, first.market
        elif kind is c.CancelOrder and cmd.user == user:
            order = cmd.order
        else:
            order, market = _subject(ch, seq, user)
            market = market or getattr(cmd, "market", None) or None
    elif cause is SETTLEMENT or cause is VOID or cause is NON_RUNNER:
        market = cmd.market
    elif cause == "deposit":
        ref = cmd.ref
    elif cause == "withdrawal_requested":
        ref = _first_event(ch, ev.WithdrawalRequested).withdrawal
    elif cause == "transfer_out":  # between the user's wallets on two shards: the transfer id
        ref = _first_event(ch, ev.FundsTransferredOut).transfer
    elif cause == "transfer_in":
        ref = cmd.transfer
    else:
        ref = cmd.withdrawal
    ch.movements.append((user, seq, e.currency, e.ts, cause, market, order, ref, amount,
                         commission, e.balance_minor, e.held_minor))


def _first_event(ch: Changes, kind: type):
    """The record's first event of type `kind`."""
    return next(x for x in ch.events if type(x) is kind)


def _subject(ch: Changes, seq: int, user: str) -> tuple:
    """(order, market or None): the user's first order named by the record's events, mapped
    once per record (an in-play turn can lapse thousands of orders in one command)."""
    if ch.subjects_seq != seq:
        ch.subjects_seq = seq
        subjects = ch.subjects = {}
        for x in ch.events:
            kind = type(x)
            if kind is ev.OrderPlaced or kind is ev.PoolStaked:
                subjects.setdefault(x.user, (x.order, x.market))
            elif kind is ev.BetMatched:
                subjects.setdefault(x.taker_user, (x.taker_order, x.market))
                subjects.setdefault(x.maker_user, (x.maker_order, x.market))
            elif kind is ev.OrderCancelled or kind is ev.OrderLapsed or kind is ev.OrderReleased:
                subjects.setdefault(x.user, (x.order, None))
    return ch.subjects.get(user, (None, None))


def _money_moved(ch, seq, idx, e: ev.MoneyMoved):
    commission = e.kind == "commission"
    for entry, (account, amount) in enumerate(e.entries):
        ch.ledger.append((seq, idx, entry, e.ts, e.kind, e.ref, account, e.currency, amount))
        if account not in SYSTEM_ACCOUNTS:  # noted for the wallet's movement row
            key = (seq, account, e.currency)
            total, fee = ch.moved.get(key, (0, 0))
            ch.moved[key] = (total + amount, fee - amount if commission else fee)


def _withdrawal_requested(ch, seq, idx, e: ev.WithdrawalRequested):
    ch.withdrawals[e.withdrawal] = [e.withdrawal, e.user, e.currency, e.amount_minor,
                                    "REQUESTED", seq, e.ts, None, None]


def _withdrawal_decided(ch, seq, idx, e):
    status = "APPROVED" if isinstance(e, ev.WithdrawalApproved) else "REJECTED"
    row = ch.withdrawals.get(e.withdrawal)
    if row is not None:
        row[4:] = [status, row[5], row[6], seq, e.ts]
    else:
        ch.withdrawal_decisions[e.withdrawal] = (status, seq, e.ts)


# -- limits -----------------------------------------------------------------------------------

def _user_limits_set(ch, seq, idx, e: ev.UserLimitsSet):
    num, den = e.stake_factor if e.stake_factor is not None else (None, None)
    ch.user_limits[e.user] = (e.user, e.max_stake_minor, e.daily_stake_minor,
                              e.weekly_stake_minor, num, den, e.max_exposure_minor, seq)


def _market_limits_set(ch, seq, idx, e: ev.MarketLimitsSet):
    ch.market_limits[e.market] = (e.market, e.max_liability_minor,
                                  e.selection_max_liability_minor, e.min_stake_minor,
                                  e.max_stake_minor, seq)


# -- the bettors' own limits ------------------------------------------------------------------

def _self_limits_set(ch, seq, idx, e: ev.SelfLimitsSet):
    pending = {name: (value, ts) for name, value, ts in e.pending}
    for name in SELF_LIMIT_NAMES:
        value, ts = pending.get(name, (None, None))
        ch.self_limits[(e.user, e.currency, name)] = (
            e.user, e.currency, name, getattr(e, name + "_minor"), value, ts, seq, e.ts)


def _self_excluded(ch, seq, idx, e: ev.SelfExcluded):
    ch.self_exclusions[e.user] = (e.user, e.until_ts, seq, e.ts)


def _deposit_refused(ch, seq, idx, e: ev.DepositRefused):
    ch.refused_deposits.append((e.ref, e.user, e.currency, e.amount_minor, e.code, e.reason,
                                seq, e.ts))


_FOLDERS = {
    ev.CommandRejected: _nothing_changed,
    ev.PlaceRepeated: _nothing_changed,
    ev.DepositRepeated: _nothing_changed,
    ev.Configured: _nothing_changed,
    # transfers between shards: their money is in the ledger and the wallet movements
    ev.FundsTransferredOut: _nothing_changed,
    ev.FundsTransferredIn: _nothing_changed,
    ev.TransferRepeated: _nothing_changed,
    ev.TransferConfirmed: _nothing_changed,
    ev.SelfLimitsConfigured: _nothing_changed,
    ev.MarketCreated: _market_created,
    ev.MarketStatusChanged: _market_status_changed,
    ev.MarketSettled: _market_settled,
    ev.MarketVoided: _market_voided,
    ev.PricesSet: _prices_set,
    ev.SelectionSuspended: _selection_suspended,
    ev.SelectionRemoved: _selection_removed,
    ev.BetRepriced: _bet_repriced,
    ev.OrderPlaced: _order_placed,
    ev.BetMatched: _bet_matched,
    ev.PoolStaked: _pool_staked,
    ev.OrderCancelled: _order_cancelled,
    ev.OrderLapsed: _order_lapsed,
    ev.OrderReleased: _order_released,
    ev.OrderReplaced: _order_replaced,
    ev.WalletChanged: _wallet_changed,
    ev.MoneyMoved: _money_moved,
    ev.WithdrawalRequested: _withdrawal_requested,
    ev.WithdrawalApproved: _withdrawal_decided,
    ev.WithdrawalRejected: _withdrawal_decided,
    ev.UserLimitsSet: _user_limits_set,
    ev.MarketLimitsSet: _market_limits_set,
    ev.SelfLimitsSet: _self_limits_set,
    ev.SelfExcluded: _self_excluded,
    ev.DepositRefused: _deposit_refused,
}
