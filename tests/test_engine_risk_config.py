"""Configure: engine settings that decide outcomes change only through the journal."""

from engine import commands as c
from engine import events as e
from engine.config import EngineConfig
from engine.engine import Engine
from tests.engine_helpers import Driver


def _configure(d: Driver, velocity: int) -> list:
    return d(c.Configure, velocity_orders_max=velocity, velocity_window_ms=1_000,
             house_default_liability_minor=1_000_000, house_back_ticks=0)


def _flood(d: Driver, n: int) -> list[str]:
    codes = []
    for _ in range(n):
        events = d(c.PlaceOrder, user="u", market="m", selection="a", side=c.BACK, price=300,
                   size_minor=100)
        codes.append(next((ev.code for ev in events if isinstance(ev, e.CommandRejected)), "OK"))
    return codes


def _market(d: Driver) -> None:
    d(c.CreateMarket, market="m", event="e", name="m", selections=(("a", "A"), ("b", "B")))
    d(c.SetMarketStatus, market="m", status="open")
    d(c.Deposit, user="u", currency="BDT", amount_minor=1_000_000, ref="u")


def test_configure_changes_the_velocity_limit_from_the_next_command():
    d = Driver(config=EngineConfig(velocity_orders_max=2))
    _market(d)
    assert _flood(d, 3) == ["OK", "OK", "RATE_LIMITED"]
    events = _configure(d, 4)
    assert isinstance(events[0], e.Configured)
    assert _flood(d, 5) == ["OK"] * 4 + ["RATE_LIMITED"]


def test_configure_zero_turns_velocity_off_and_replay_agrees():
    d = Driver(config=EngineConfig(velocity_orders_max=2))
    _market(d)
    _configure(d, 0)
    assert _flood(d, 10) == ["OK"] * 10
    fresh = Engine(EngineConfig(velocity_orders_max=2))
    for cmd, recorded in zip(d.log, d.event_log):
        assert fresh.apply(cmd) == recorded


def test_negative_settings_are_refused():
    d = Driver()
    events = _configure(d, -1)
    assert isinstance(events[0], e.CommandRejected) and events[0].code == "BAD_REQUEST"
