"""Several currencies at the gateway, end to end: a wallet per currency, deposits and markets in
any configured currency (the test server runs BDT, the default, and USD), never in another."""

import time

import orjson
import pytest

from gateway.webhooks import sign

pytest.register_assert_rewrite("tests.ws_fixtures")

from tests.ws_fixtures import WEBHOOK_SECRET, Harness, placed, unique  # noqa: E402

pytest_plugins = ["tests.ws_fixtures"]


def _wallet(currency: str, balance: str, held: str = "0.00") -> dict:
    available = f"{(int(balance.replace('.', '')) - int(held.replace('.', ''))) / 100:.2f}"
    return {"currency": currency, "balance": balance, "held": held, "available": available}


def test_the_wallet_op_shows_every_wallet_or_the_one_asked_for(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("alice", "40.00")
        await h.deposit(alice.user, "12.50", currency="USD")
        every = await alice.ok({"op": "wallet"}, "wallet")
        assert every == {"op": "wallet", "id": every["id"], **_wallet("BDT", "40.00"),
                         "wallets": [_wallet("BDT", "40.00"), _wallet("USD", "12.50")]}
        usd = await alice.ok({"op": "wallet", "currency": "USD"}, "wallet")
        assert usd == {"op": "wallet", "id": usd["id"], **_wallet("USD", "12.50"),
                       "wallets": [_wallet("USD", "12.50")]}
        await alice.error({"op": "wallet", "currency": "EUR"}, "BAD_REQUEST")
        await alice.error({"op": "wallet", "currency": "usd"}, "BAD_REQUEST")
    ws(scenario)


def test_a_market_in_a_second_currency_holds_and_pays_that_wallet(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        alice = await h.bettor("alice", "40.00")
        # on alice's home shard, whose statement it is (docs/scale-out.md)
        market = await h.market(trader, currency="USD",
                                market=h.market_id(h.shards.of_user(alice.user)))
        await h.deposit(alice.user, "20.00", currency="USD")
        await alice.ok({"op": "orders"}, "orders")  # the wallet pushes from now on
        preview = await alice.ok({"op": "preview", "market": market, "selection": "s1",
                                  "side": "back", "price": "2.00", "size": "5.00"}, "preview")
        assert preview["wallet_after"] == _wallet("USD", "20.00", "5.00")
        await placed(alice, market, price="2.00", size="5.00")
        push = await alice.take("wallet")
        assert push == {"op": "wallet", **_wallet("USD", "20.00", "5.00")}
        every = await alice.ok({"op": "wallet"}, "wallet")
        assert every["wallets"] == [_wallet("BDT", "40.00"), _wallet("USD", "20.00", "5.00")]
        # too much for the USD wallet, whatever the BDT one holds
        await alice.error({"op": "place", "market": market, "selection": "s1", "side": "back",
                           "price": "2.00", "size": "30.00"}, "INSUFFICIENT_FUNDS")
        statement = await alice.ok({"op": "statement", "currency": "USD"}, "statement")
        assert [(m["kind"], m["currency"]) for m in statement["movements"]] == [
            ("hold", "USD"), ("deposit", "USD")]
    ws(scenario)


def test_markets_default_to_the_default_currency_and_refuse_one_not_configured(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        event = unique("e")
        plain = await h.market(trader, event=event)
        reply = await trader.ok({"op": "catalogue", "event": event}, "catalogue")
        assert [(m["market"], m["currency"]) for m in reply["markets"]] == [(plain, "BDT")]
        euro = unique("m")
        await trader.error({"op": "market.create", "market": euro, "event": unique("e"),
                            "name": "Match Odds", "currency": "EUR",
                            "selections": [{"id": "s1", "name": "S1"}]}, "BAD_REQUEST")
        await trader.error({"op": "market.status", "market": euro, "status": "open"},
                           "UNKNOWN_MARKET")  # nothing was created
    ws(scenario)


def test_a_deposit_in_a_currency_not_configured_is_refused(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("alice", "1.00")
        session = await h.http()
        body = orjson.dumps({"ref": unique("dep"), "user": alice.user, "amount": "5.00",
                             "currency": "EUR", "ts": int(time.time())})
        async with session.post("/webhooks/deposits/testpay", data=body, headers={
                "Content-Type": "application/json",
                "X-Signature": sign(WEBHOOK_SECRET, body)}) as resp:
            assert resp.status == 400
            assert (await resp.json())["code"] == "BAD_REQUEST"
        assert (await alice.ok({"op": "wallet"}, "wallet"))["wallets"] == [
            _wallet("BDT", "1.00"), _wallet("USD", "0.00")]
    ws(scenario)
