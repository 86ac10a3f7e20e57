"""Pre-trade preview: the fills, rest, delay, wallet and exposure a place would give, with no
state change; checked against actually placing the same order."""

from engine import commands as c
from engine.preview import Preview
from tests.engine_helpers import Driver, state_fingerprint


def _market(d: Driver) -> None:
    d(c.CreateMarket, market="m", event="e", name="m", selections=(("a", "A"), ("b", "B")))
    d(c.SetMarketStatus, market="m", status="open")
    for user in ("maker", "taker"):
        d(c.Deposit, user=user, currency="BDT", amount_minor=100_000, ref=user)
    d(c.PlaceOrder, user="maker", market="m", selection="a", side=c.LAY, price=252,
      size_minor=600)
    d(c.PlaceOrder, user="maker", market="m", selection="a", side=c.LAY, price=250,
      size_minor=1_000)


def _order(**fields) -> c.PlaceOrder:
    base = dict(user="taker", market="m", selection="a", side=c.BACK, price=250,
                size_minor=1_000)
    base.update(fields)
    return c.PlaceOrder(**base)


def test_preview_reports_fills_best_first_and_the_rest_without_changing_anything():
    d = Driver()
    _market(d)
    before = state_fingerprint(d.eng)
    p = d.eng.preview(_order())
    assert state_fingerprint(d.eng) == before
    assert p.code is None
    assert p.fills == ((252, 600), (250, 400))
    assert p.rest_minor == 0 and p.bet_delay_ms == 0


def test_preview_wallet_and_exposure_equal_what_placing_leaves():
    d = Driver()
    _market(d)
    p = d.eng.preview(_order(size_minor=2_000))
    d(c.PlaceOrder, **{f: getattr(_order(size_minor=2_000), f)
                       for f in ("user", "market", "selection", "side", "price", "size_minor")})
    wallet = d.eng.wallets[("taker", "BDT")]
    assert (p.balance_minor, p.held_after_minor) == (wallet.balance, wallet.held)
    assert p.exposure_after_minor == d.eng.markets["m"].positions["taker"].hold
    assert p.rest_minor == 400


def test_preview_of_an_order_that_would_be_rejected_gives_the_code():
    d = Driver()
    _market(d)
    p = d.eng.preview(_order(size_minor=10_000_000))
    assert isinstance(p, Preview) and p.code == "INSUFFICIENT_FUNDS" and p.fills == ()
    assert d.eng.preview(_order(price=201)).code == "INVALID_ODDS"
    assert d.eng.preview(_order(tif=c.FOK, size_minor=5_000)).code == "FOK_NOT_FILLED"


def test_preview_in_play_shows_the_bet_delay_and_no_fills_yet():
    d = Driver()
    _market(d)
    d(c.SetMarketStatus, market="m", in_play=True, bet_delay_ms=5_000)
    p = d.eng.preview(_order(persistence=c.PERSIST))
    assert p.bet_delay_ms == 5_000 and p.fills == () and p.rest_minor == 1_000
