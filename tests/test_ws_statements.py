"""Statement and cleared orders over the WebSocket, end to end: a real server whose persister
folds the journal into Postgres; the ops wait for it, so what the bettor was just told about is
in the answer."""

import pytest

pytest.register_assert_rewrite("tests.ws_fixtures")

from tests.ws_fixtures import Harness, minor, placed, unique  # noqa: E402

pytest_plugins = ["tests.ws_fixtures"]

MOVEMENT_KEYS = {"seq", "ts", "currency", "kind", "amount", "commission", "held_change",
                 "balance", "held", "available", "market", "order", "ref"}


async def _settled_market(h: Harness) -> tuple:
    """alice backs s1 at 3.00 for 10.00 against bob's lay; s1 wins (5% commission)."""
    trader = await h.trader()
    market = await h.market(trader)
    alice, bob = await h.bettor("alice", "100.00"), await h.bettor("bob", "100.00")
    lay = await placed(bob, market, side="lay", price="3.00", size="10.00")
    back = await placed(alice, market, side="back", price="3.00", size="10.00")
    await trader.ok({"op": "market.settle", "market": market, "winners": ["s1"]}, "market")
    return market, alice, bob, back, lay


def test_a_statement_asked_right_after_a_settlement_shows_it(ws):
    async def scenario(h: Harness):
        market, alice, bob, back, _ = await _settled_market(h)
        reply = await alice.ok({"op": "statement", "id": "s"}, "statement")  # no pause at all
        assert reply["id"] == "s" and reply["next"] is None
        assert reply["as_of_seq"] > back["placed_seq"]
        newest, hold, deposit = reply["movements"]
        assert set(newest) == MOVEMENT_KEYS
        assert (newest["kind"], newest["market"], newest["amount"], newest["commission"],
                newest["held_change"], newest["balance"], newest["held"]) == (
            "settlement", market, "19.00", "1.00", "-10.00", "119.00", "0.00")
        assert (hold["kind"], hold["order"], hold["market"], hold["held_change"],
                hold["available"]) == ("hold", back["order"], market, "10.00", "90.00")
        assert (deposit["kind"], deposit["amount"], deposit["balance"]) == (
            "deposit", "100.00", "100.00")
        bob_reply = await bob.ok({"op": "statement", "sort": "oldest"}, "statement")
        assert [(m["kind"], m["amount"]) for m in bob_reply["movements"]] == [
            ("deposit", "100.00"), ("hold", "0.00"), ("settlement", "-20.00")]
    ws(scenario)


def test_cleared_lists_each_bets_profit_and_the_markets_commission(ws):
    async def scenario(h: Harness):
        market, alice, bob, back, lay = await _settled_market(h)
        reply = await alice.ok({"op": "cleared", "market": market}, "cleared")
        [bet] = reply["orders"]
        assert (bet["order"], bet["side"], bet["matched"], bet["avg_price_matched"],
                bet["result"], bet["profit"], bet["currency"]) == (
            back["order"], "back", "10.00", "3.00", "won", "20.00", "BDT")
        assert [(m["market"], m["outcome"], m["winners"], m["profit"], m["commission"],
                 m["net"]) for m in reply["markets"]] == [
            (market, "settled", ["s1"], "20.00", "1.00", "19.00")]
        bob_reply = await bob.ok({"op": "cleared"}, "cleared")
        assert [(b["order"], b["result"], b["profit"]) for b in bob_reply["orders"]] == [
            (lay["order"], "lost", "-20.00")]
    ws(scenario)


def test_pages_follow_the_cursor_without_gaps_or_repeats(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("alice", "100.00")
        market = await h.market(market=h.market_id(h.shards.of_user(alice.user)))
        for price in ("5.00", "6.00", "7.00"):
            order = await placed(alice, market, price=price, size="1.00")
            await alice.ok({"op": "cancel", "order": order["order"]}, "cancelled")
        seen, cursor = [], None
        while True:
            request = {"op": "statement", "limit": 2, "sort": "oldest"}
            if cursor:
                request["cursor"] = cursor
            reply = await alice.ok(request, "statement")
            seen += [(m["seq"], m["kind"]) for m in reply["movements"]]
            cursor = reply["next"]
            if cursor is None:
                break
        assert [kind for _, kind in seen] == ["deposit"] + ["hold", "release"] * 3
        assert [seq for seq, _ in seen] == sorted({seq for seq, _ in seen})
    ws(scenario)


async def _pages(client, request: dict) -> list[dict]:
    """Every movement of the statement (bet of cleared), page by page (at most 20 pages)."""
    seen = []
    for _ in range(20):
        reply = await client.ok(request, request["op"])
        seen += reply["movements" if request["op"] == "statement" else "orders"]
        if reply["next"] is None:
            return seen
        request = {**request, "cursor": reply["next"]}
    raise AssertionError(f"the pages did not end: {seen}")


def test_the_running_balance_is_the_whole_wallet_across_markets_and_pages(ws):
    """With several shards alice's money moves to the other shard's market and back: the
    statement merges both shards' movements in time order, leaves the transfers out, and each
    balance is her whole wallet, so every page follows on from the one before."""
    async def scenario(h: Harness):
        trader = await h.trader()
        alice, bob = await h.bettor("alice", "100.00"), await h.bettor("bob", "100.00")
        home = h.shards.of_user(alice.user)
        here = await h.market(trader, market=h.market_id(home))
        there = await h.market(trader, market=h.market_id((home + 1) % h.shards.count))
        resting = await placed(alice, there, price="4.00", size="30.00")
        await placed(alice, here, price="3.00", size="20.00")
        await alice.ok({"op": "cancel", "order": resting["order"]}, "cancelled")
        await placed(bob, there, side="lay", price="2.00", size="40.00")
        await placed(alice, there, price="2.00", size="40.00")
        await trader.ok({"op": "market.settle", "market": there, "winners": ["s1"]}, "market")
        wallet = await alice.ok({"op": "wallet"}, "wallet")
        oldest = await _pages(alice, {"op": "statement", "limit": 2, "sort": "oldest"})
        newest = await _pages(alice, {"op": "statement", "limit": 3})
        assert oldest == newest[::-1]
        assert [m["kind"] for m in oldest] == [
            "deposit", "hold", "hold", "release", "hold", "settlement"]
        balance = held = 0
        for m in oldest:
            balance += minor(m["amount"])
            held += minor(m["held_change"])
            assert (minor(m["balance"]), minor(m["held"]), minor(m["available"])) == (
                balance, held, balance - held), m
        assert [m["ts"] for m in oldest] == sorted(m["ts"] for m in oldest)
        assert (oldest[-1]["balance"], oldest[-1]["held"]) == (wallet["balance"],
                                                               wallet["held"])
        assert oldest[-1]["balance"] == "138.00"  # won 40.00, 5% commission on it
        session = await h.http()  # the HTTP endpoint reads the same history
        async with session.get("/wallet/statement", params={"sort": "oldest", "limit": "100"},
                               headers={"Authorization": f"Bearer {h.token(alice.user)}"}
                               ) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["movements"] == oldest
        await placed(bob, here, side="lay", price="3.00", size="20.00")
        await trader.ok({"op": "market.settle", "market": here, "winners": ["s2"]}, "market")
        cleared = await _pages(alice, {"op": "cleared", "limit": 1, "sort": "oldest"})
        assert [(b["market"], b["profit"]) for b in cleared] == [(there, "40.00"),
                                                                 (here, "-20.00")]
        assert await _pages(alice, {"op": "cleared", "limit": 1}) == cleared[::-1]
        just_there = await alice.ok({"op": "statement", "market": there, "sort": "oldest"},
                                    "statement")
        assert [(m["kind"], m["balance"]) for m in just_there["movements"]] == [
            (m["kind"], m["balance"]) for m in oldest if m["market"] == there]
    ws(scenario)


@pytest.mark.parametrize("request_, code", [
    ({"op": "statement", "cursor": "c12.7"}, "BAD_REQUEST"),  # a cleared cursor
    ({"op": "statement", "cursor": "s12"}, "BAD_REQUEST"),
    ({"op": "cleared", "cursor": "s12.BDT"}, "BAD_REQUEST"),
    ({"op": "statement", "limit": 501}, "BAD_REQUEST"),
    ({"op": "cleared", "limit": 0}, "BAD_REQUEST"),
    ({"op": "statement", "currency": "EUR"}, "BAD_REQUEST"),  # not configured
    ({"op": "statement", "from_ts": 20, "to_ts": 10}, "BAD_REQUEST"),
    ({"op": "statement", "to_ts": 10 ** 19}, "BAD_REQUEST"),
    ({"op": "statement", "user": "someone-else"}, "BAD_REQUEST"),  # only one's own
    ({"op": "cleared", "market": "no-such-market"}, "UNKNOWN_MARKET"),
])
def test_bad_history_requests_are_refused_and_the_connection_stays_up(ws, request_, code):
    async def scenario(h: Harness):
        alice = await h.bettor("alice", "10.00")
        await alice.error(request_, code)
        reply = await alice.ok({"op": "statement"}, "statement")
        assert [m["kind"] for m in reply["movements"]] == ["deposit"]
    ws(scenario)


def test_a_bettor_sees_only_their_own_history(ws):
    async def scenario(h: Harness):
        market, alice, bob, _, _ = await _settled_market(h)
        stranger = await h.bettor("stranger", "0.00")
        assert (await stranger.ok({"op": "statement"}, "statement"))["movements"] == []
        assert (await stranger.ok({"op": "cleared"}, "cleared"))["orders"] == []
        mine = await alice.ok({"op": "statement", "market": market}, "statement")
        assert {m["order"] for m in mine["movements"]} <= {None} | {
            o["order"] for o in (await alice.ok({"op": "cleared"}, "cleared"))["orders"]}
    ws(scenario)


def test_statement_filters_by_currency_and_time(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("alice", "10.00")
        await h.deposit(alice.user, "7.00", currency="USD")
        usd = await alice.ok({"op": "statement", "currency": "USD"}, "statement")
        assert [(m["currency"], m["amount"]) for m in usd["movements"]] == [("USD", "7.00")]
        both = await alice.ok({"op": "statement", "sort": "oldest"}, "statement")
        first, second = both["movements"]
        later = await alice.ok({"op": "statement", "from_ts": second["ts"]}, "statement")
        assert second in later["movements"] and (first["ts"] == second["ts"]
                                                 or first not in later["movements"])
        none = await alice.ok({"op": "statement", "to_ts": first["ts"]}, "statement")
        assert none["movements"] == []
    ws(scenario)


def test_a_voided_markets_bets_are_cleared_as_void(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader, event=unique("e"))
        alice, bob = await h.bettor("alice", "50.00"), await h.bettor("bob", "50.00")
        await placed(bob, market, side="lay", price="2.00", size="5.00")
        back = await placed(alice, market, side="back", price="2.00", size="5.00")
        await trader.ok({"op": "market.void", "market": market}, "market")
        reply = await alice.ok({"op": "cleared"}, "cleared")
        assert [(b["order"], b["result"], b["profit"]) for b in reply["orders"]] == [
            (back["order"], "void", "0.00")]
        assert [(m["outcome"], m["net"]) for m in reply["markets"]] == [("voided", "0.00")]
        statement = await alice.ok({"op": "statement", "limit": 1}, "statement")
        assert [(m["kind"], m["held_change"]) for m in statement["movements"]] == [
            ("void", "-5.00")]
    ws(scenario)
