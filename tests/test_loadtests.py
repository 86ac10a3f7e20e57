"""The load-test tooling: bots that speak the protocol, outcomes classified so that "zero
failures" means zero protocol/transport failures, and `backlay simulate` end to end.

Locust (gevent) is never imported into the pytest process, which runs asyncio tests too: the
user classes are loaded by Locust itself in a subprocess.
"""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.protocol import ProtocolError, parse
from loadtests.book import MarketView, hundredths
from loadtests.bots import BUSINESS_CODES, Bettor, Trader, classify
from loadtests.run import Summary, main, parse_args
from loadtests.world import MARKET_MIN_STAKE, PROFILES, World
from pricing.ladder import INDEX

ROOT = Path(__file__).resolve().parent.parent
SEEDS = range(40)


def image(market: str, seq: int = 1, status: str = "OPEN") -> dict:
    return {"op": "mkt", "market": market, "seq": seq, "img": True, "status": status,
            "in_play": False, "bet_delay_ms": 0, "selections": [
                {"id": "home", "to_back": [["2.10", "500.00"], ["2.08", "20.00"]],
                 "to_lay": [["2.16", "300.00"]], "ltp": "2.12", "traded": "10.00"},
                {"id": "draw", "to_back": [["3.35", "400.00"]], "to_lay": [["3.50", "90.00"]],
                 "ltp": None, "traded": "0.00"},
                {"id": "away", "to_back": [["3.75", "200.00"]], "to_lay": [],
                 "ltp": None, "traded": "0.00"}]}


def bettor(profile: str, seed: int = 0, markets=("m1", "m2")) -> Bettor:
    brain = Bettor(PROFILES[profile], list(markets), random.Random(seed))
    for i, market in enumerate(markets):
        brain.on_push(image(market, seq=1 + i))
    return brain


def placed(order_id: str, *, side="back", price="2.10", size="10.00", matched="0.00",
           market="m1", selection="home") -> dict:
    remaining = f"{(hundredths(size) - hundredths(matched)) / 100:.2f}"
    return {"order": order_id, "market": market, "selection": selection, "side": side,
            "price": price, "size": size, "matched": matched, "remaining": remaining,
            "cancelled": "0.00", "lapsed": "0.00", "avg_price_matched": price,
            "status": "EXECUTABLE" if remaining != "0.00" else "EXECUTION_COMPLETE"}


def assert_valid(request: dict) -> None:
    """The gateway's own parser accepts it: the bots speak the protocol."""
    try:
        parse(json.dumps({**request, "id": 1}))
    except ProtocolError as exc:
        pytest.fail(f"{request} is not a valid request: {exc.code} {exc.message}")


# -- outcomes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(BUSINESS_CODES))
def test_a_business_rejection_is_a_success_named_with_its_code(code):
    outcome = classify("place", {"op": "error", "id": 3, "code": code, "message": "no"})
    assert outcome.failure is None
    assert outcome.name == f"place [{code}]"


@pytest.mark.parametrize("code", ["BAD_REQUEST", "INTERNAL", "UNKNOWN_ORDER", "UNKNOWN_MARKET",
                                  "INVALID_ODDS", "FORBIDDEN", "UNAUTHENTICATED"])
def test_a_protocol_error_is_a_failure(code):
    outcome = classify("cancel", {"op": "error", "id": 3, "code": code, "message": "bad"})
    assert outcome.failure is not None and code in outcome.failure
    assert outcome.name == f"cancel [{code}]"


def test_replacing_an_order_that_just_filled_is_a_race_not_a_failure():
    reply = {"op": "error", "id": 1, "code": "INVALID_SIZE", "message": "nothing left"}
    assert classify("replace", reply).failure is None
    assert classify("place", reply).failure is not None


def test_a_reply_is_a_success_under_its_label():
    assert classify("slip.place", {"op": "slip.placed", "results": []}, "slip.place any") \
        .name == "slip.place any"
    assert classify("wallet", {"op": "wallet", "available": "1.00"}).name == "wallet"


def test_a_slip_is_named_by_its_first_rejected_leg_and_fails_only_on_protocol_errors():
    business = {"op": "slip.placed", "results": [
        {"leg": 0, "order": {}}, {"leg": 1, "error": {"code": "PRICE_CHANGED"}}]}
    assert classify("slip.place", business, "slip.place exact").name == \
        "slip.place exact [PRICE_CHANGED]"
    assert classify("slip.place", business).failure is None
    broken = {"op": "slip.placed", "results": [{"leg": 0, "error": {"code": "INTERNAL"}}]}
    assert classify("slip.place", broken).failure is not None


# -- market data --------------------------------------------------------------------------------


def test_a_market_view_follows_an_image_then_deltas():
    view = MarketView("m1")
    assert view.apply(image("m1"))
    assert view.apply({"op": "mkt", "market": "m1", "seq": 2, "selections": [
        {"id": "home", "to_back": [["2.10", "0.00"], ["2.12", "50.00"]]}]})
    home = view.selections["home"]
    assert home.to_back == {212: 5000, 208: 2000}
    assert home.best_to_back() == 212 and home.best_to_lay() == 216
    assert view.favourite().id == "home"
    assert view.crossed() == []


def test_a_seq_gap_distrusts_the_view_until_the_next_image():
    view = MarketView("m1")
    view.apply(image("m1"))
    assert not view.apply({"op": "mkt", "market": "m1", "seq": 3, "status": "SUSPENDED"})
    assert view.gaps == 1 and not view.trusted
    assert view.apply(image("m1", seq=4))
    assert view.trusted and view.status == "OPEN"


def test_a_bettor_asks_to_resubscribe_after_a_gap():
    brain = bettor("casual")
    assert brain.on_push({"op": "mkt", "market": "m1", "seq": 9}) is True
    assert brain.resubscribe == {"m1"}
    brain.on_reply("subscribe", {"op": "subscribed", "markets": ["m1"]})
    assert brain.resubscribe == set()


def test_a_crossed_book_is_noticed():
    view = MarketView("m1")
    view.apply(image("m1"))
    view.apply({"op": "mkt", "market": "m1", "seq": 2, "selections": [
        {"id": "draw", "to_back": [["3.60", "5.00"]]}]})
    assert view.crossed() == ["draw"]


# -- bettors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_bettor_request_is_valid_protocol(profile):
    for seed in SEEDS:
        brain = bettor(profile, seed)
        brain.on_reply("place", {"op": "placed", "order": placed(f"o{seed}", matched="5.00")})
        for request in (brain.place(), brain.preview(), brain.cancel(), brain.replace(),
                        brain.cancel_all(), brain.slip()):
            if request is None:
                continue
            assert_valid(request)
            if "price" in request:
                assert hundredths(request["price"]) in INDEX
            for amount in [request.get("size")] + [leg["stake"] for leg in
                                                   request.get("legs", ())]:
                if amount is not None:
                    assert hundredths(amount) >= hundredths(MARKET_MIN_STAKE)
        assert brain.accept() in ("exact", "better", "any")


def test_most_stakes_are_small_and_a_minority_large():
    brain = bettor("casual", 7)
    stakes = [brain.stake_minor() for _ in range(2000)]
    large = [s for s in stakes if s > PROFILES["casual"].small_stakes[1] * 100 + 99]
    assert 0 < len(large) < len(stakes) * 0.15


def test_a_bettor_places_nothing_before_it_has_prices():
    brain = Bettor(PROFILES["casual"], ["m1"], random.Random(1))
    assert brain.place() is None and brain.slip() is None


def test_a_bettor_does_not_bet_into_a_suspended_market():
    brain = Bettor(PROFILES["favourite"], ["m1"], random.Random(1))
    brain.on_push(image("m1", status="SUSPENDED"))
    assert brain.place() is None


def test_a_favourite_backer_backs_the_lowest_odds_at_the_best_price():
    for seed in SEEDS:
        request = bettor("favourite", seed, markets=("m1",)).place()
        assert (request["selection"], request["side"], request["price"]) == \
            ("home", "back", "2.10")


def test_a_scalper_lays_what_it_backed_a_little_lower():
    brain = bettor("scalper", 3, markets=("m1",))
    brain.on_reply("place", {"op": "placed", "order": placed(
        "o5", side="back", price="3.35", size="40.00", matched="40.00", selection="draw")})
    lay = brain.place()
    assert (lay["market"], lay["selection"], lay["side"], lay["size"]) == \
        ("m1", "draw", "lay", "40.00")
    assert hundredths(lay["price"]) < 335 and hundredths(lay["price"]) in INDEX
    assert brain.place()["side"] == "back"  # then back to backing


def test_a_bettor_only_cancels_and_replaces_its_open_orders():
    brain = bettor("casual", 2)
    brain.on_reply("place", {"op": "placed", "order": placed("o1")})
    brain.on_reply("place", {"op": "placed", "order": placed("o2", matched="10.00")})
    assert set(brain.open) == {"o1"}
    assert brain.cancel()["order"] == "o1"
    replace = brain.replace()
    assert replace["order"] == "o1" and replace["price"] != "2.10"
    new = placed("o3", price="2.12")
    brain.on_reply("replace", {"op": "replaced", "cancelled": {**placed("o1"),
                                                               "remaining": "0.00"},
                               "order": new})
    assert set(brain.open) == {"o3"}
    brain.on_push({"op": "ord", "order": {**new, "remaining": "0.00"}})
    assert brain.open == {} and brain.cancel() is None and brain.replace() is None


def test_the_orders_reply_replaces_what_a_bettor_believed_was_open():
    brain = bettor("casual")
    brain.on_reply("place", {"op": "placed", "order": placed("o1")})
    brain.on_reply("orders", {"op": "orders", "orders": [placed("o7"),
                                                         placed("o8", matched="10.00")]})
    assert set(brain.open) == {"o7"}


def test_a_bettor_short_of_money_frees_some():
    brain = bettor("casual")
    brain.on_reply("place", {"op": "placed", "order": placed("o1")})
    brain.on_push({"op": "wallet", "currency": "BDT", "balance": "10.00", "held": "9.00",
                   "available": "1.00"})
    assert brain.short_of_money()


# -- traders -------------------------------------------------------------------------------------


def test_a_trader_walks_prices_on_the_ladder_and_sets_valid_limits():
    world = World(markets=4)
    trader = Trader({s.market: s.fair for s in world.market_specs()}, random.Random(5))
    for _ in range(300):
        request = trader.prices()
        assert_valid(request)
        assert all(hundredths(p) in INDEX and 120 <= hundredths(p) <= 2000
                   for p in request["prices"].values())
        assert_valid(trader.limits())
    assert trader.market() in world.market_ids()


# -- the world -----------------------------------------------------------------------------------


def test_the_world_is_the_same_wherever_it_is_computed():
    world = World(prefix="x", markets=9, bots=3, workers=2, jwt_secret="s")
    assert World.from_env(world.env()) == world
    assert world.market_ids()[0] == "x-m00" and len(world.market_specs()) == 9
    assert all(p in INDEX for spec in world.market_specs() for p in spec.fair.values())
    assert len(world.bettors()) == 3 * len(PROFILES)


def test_workers_claim_distinct_identities_until_the_pool_wraps():
    world = World(bots=100, workers=3)
    claims = [world.claim(n, w) for w in range(3) for n in range(20)]
    assert len(set(claims)) == len(claims)
    assert {world.bot("casual", k) for k in claims} <= {u for u, _ in world.bettors()}


def test_every_market_has_exactly_one_trader():
    world = World(markets=7)
    owned = [m for t in range(3) for m in world.markets_of_trader(t, 3)]
    assert sorted(owned) == world.market_ids()


# -- the tools -----------------------------------------------------------------------------------


def test_locust_loads_the_weighted_user_classes():
    out = subprocess.run([sys.executable, "-m", "locust", "-f",
                          str(ROOT / "loadtests" / "locustfile.py"), "--list"],
                         capture_output=True, text=True, timeout=60, cwd="/")
    assert out.returncode == 0, out.stderr
    listed = set(out.stdout.split())
    assert {"CasualBettor", "WhaleBettor", "ScalperBettor", "FavouriteBettor", "SlipBettor",
            "Trader", "Operator", "Watcher"} <= listed


def test_simulate_refuses_nonsense_arguments():
    for argv in (["--seconds", "0"], ["--users", "1"], ["--spawn-rate", "0"]):
        with pytest.raises(SystemExit):
            parse_args(argv)


def test_a_run_with_failures_or_a_broken_check_does_not_pass():
    assert Summary(seconds=1, users=1, markets=1).passed
    assert not Summary(seconds=1, users=1, markets=1, problems=["3 failed requests"]).passed


@pytest.mark.slow
def test_a_short_simulation_has_no_failures_and_balanced_books(tmp_path):
    out = tmp_path / "report"
    status = main(["--seconds", "12", "--users", "12", "--spawn-rate", "12", "--markets", "4",
                   "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    assert status == 0, (out / "summary.txt").read_text()
    assert summary["passed"] and summary["failures"] == 0 and summary["exceptions"] == 0
    assert summary["requests"] > 50
    names = {row["name"] for row in summary["rows"]}
    assert {"connect", "auth", "subscribe", "place", "prices.set"} <= names
    assert all(check["ok"] for check in summary["checks"])
    assert summary["counts"].get("push.mkt", 0) > 0 and summary["server_exit"] == 0
    for report in ("locust_stats.csv", "locust_failures.csv", "report.html", "server.log"):
        assert (out / report).exists()
