"""Pre-trade preview: what a place would do now, computed without changing anything.

Runs the engine's own checks (`Engine._vet_place`), walks the book for the fills the order would
get (`SelectionBook.fills_for`), and applies them to a copy of the user's position, so the
preview's wallet and exposure are exactly what the real place would leave, as of now.
"""

from dataclasses import dataclass

from . import commands as c
from .exposure import Position
from .rejections import Rejected


@dataclass(frozen=True, slots=True)
class Preview:
    code: str | None  # the rejection a real place would get now, or None
    reason: str
    fills: tuple[tuple[int, int], ...]  # (price, size) best first
    rest_minor: int  # what would rest in the book (0 for FOK: the rest is cancelled)
    bet_delay_ms: int
    balance_minor: int
    held_after_minor: int
    exposure_after_minor: int  # the hold on this market after the order


def _copy(pos: Position) -> Position:
    twin = Position(len(pos.edge))
    twin.edge, twin.const, twin.hold = pos.edge[:], pos.const, pos.hold
    twin.win, twin.lose = pos.win[:], pos.lose[:]
    return twin


def preview(engine, cmd: c.PlaceOrder) -> Preview:
    saved_events = engine._events
    engine._events = []  # _vet_place may note a PlaceRepeated; a preview emits nothing
    try:
        vetted = engine._vet_place(cmd)
    except Rejected as r:
        return _empty(engine, cmd, r.code, r.reason)
    finally:
        engine._events = saved_events
    if vetted is None:
        return _empty(engine, cmd, None, "repeat of an existing order: nothing would change")
    m, sel, pos, wallet, _, delayed = vetted
    twin = _copy(pos)
    is_back = cmd.side == c.BACK
    size = cmd.size_minor
    fills: list[tuple[int, int]] = []
    if m.type == c.POOL:
        twin.add_pool_stake(size)
        rest = 0
    else:
        twin.add_unmatched(sel, is_back, cmd.price, 0, size)
        remaining = size
        if not delayed:
            fills = m.books[sel].fills_for(is_back, cmd.price, size)
            for price, filled in fills:
                twin.fill(sel, is_back, cmd.price, remaining, filled, filled * (price - 100) // 100)
                remaining -= filled
        rest = remaining
        if cmd.tif == c.FOK and not delayed:
            twin.add_unmatched(sel, is_back, cmd.price, remaining, 0)
            rest = 0
    hold_after = twin.needed_hold()
    balance = wallet.balance if wallet is not None else 0
    held = wallet.held if wallet is not None else 0
    return Preview(None, "", tuple(fills), rest, m.bet_delay_ms if delayed else 0, balance,
                   held + hold_after - pos.hold, hold_after)


def _empty(engine, cmd: c.PlaceOrder, code, reason: str) -> Preview:
    m = engine.markets.get(cmd.market)
    wallet = engine.wallets.get((cmd.user, m.currency)) if m is not None else None
    pos = m.positions.get(cmd.user) if m is not None else None
    return Preview(code, reason, (), 0, 0, wallet.balance if wallet else 0,
                   wallet.held if wallet else 0, pos.hold if pos else 0)
