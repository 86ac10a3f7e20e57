"""A bettor's own limits and self-exclusion over the WebSocket, end to end against a real
server: `selflimits` shows them, `selflimits.set` lowers at once and queues a raise, orders and
deposits past a limit are refused with the limit's code and a reason that says what is left
and until when, `selfexclude` cancels open orders and blocks orders and deposits; every
connection of the bettor sees the same limits, and bad requests change nothing."""

import time

import orjson
import pytest

pytest.register_assert_rewrite("tests.ws_fixtures")

from gateway.webhooks import sign  # noqa: E402
from risk.self_limits import format_utc  # noqa: E402
from tests.ws_fixtures import (CURRENCY, WEBHOOK_SECRET, Harness, place, placed,  # noqa: E402
                               unique)

pytest_plugins = ["tests.ws_fixtures"]

COOLING_OFF_MS = 86_400_000
NAMES = ("daily_deposit", "weekly_deposit", "daily_stake", "weekly_stake", "daily_loss",
         "weekly_loss")


async def webhook(h: Harness, user: str, amount: str, ref: str) -> tuple[int, dict]:
    body = orjson.dumps({"ref": ref, "user": user, "amount": amount, "currency": CURRENCY,
                         "ts": int(time.time())})
    session = await h.http()
    async with session.post("/webhooks/deposits/testpay", data=body,
                            headers={"Content-Type": "application/json",
                                     "X-Signature": sign(WEBHOOK_SECRET, body)}) as resp:
        return resp.status, await resp.json()


def test_a_fresh_bettor_has_no_limits_and_sees_what_they_used(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("alice", "100.00")
        market = await h.market()
        await placed(alice, market, price="5.00", size="10.00")
        reply = await alice.ok({"op": "selflimits", "id": "s"}, "selflimits")
        assert reply["id"] == "s" and reply["currency"] == CURRENCY
        assert reply["excluded_until"] is None and reply["cooling_off_ms"] == COOLING_OFF_MS
        limits = reply["limits"]
        assert list(limits) == list(NAMES)
        assert limits["daily_deposit"]["used"] == "100.00"  # counted without any limit set
        assert limits["daily_stake"]["used"] == limits["weekly_stake"]["used"] == "10.00"
        loss = limits["daily_loss"]
        assert (loss["used"], loss["settled_loss"], loss["at_risk"]) == ("10.00", "0.00", "10.00")
        assert all(entry["limit"] is None and entry["left"] is None and entry["pending"] is None
                   for entry in limits.values())
        assert limits["daily_stake"]["resets_ts"] % 86_400_000 == 0
        assert limits["weekly_stake"]["resets_ts"] >= limits["daily_stake"]["resets_ts"]
    ws(scenario)


def test_a_lower_applies_at_once_and_a_raise_waits_the_cooling_off_period(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("alice", "500.00")
        market = await h.market(market=h.market_id(h.shards.of_user(alice.user)))  # see below
        reply = await alice.ok({"op": "selflimits.set", "daily_stake": "50.00",
                                "weekly_loss": "300.00"}, "selflimits")
        stake = reply["limits"]["daily_stake"]
        assert (stake["limit"], stake["used"], stake["left"]) == ("50.00", "0.00", "50.00")
        await placed(alice, market, price="5.00", size="30.00")
        error = await alice.error(place(market, price="5.00", size="20.01"), "SELF_STAKE_LIMIT")
        assert error["message"].startswith(
            "stake 20.01 would pass your daily stake limit 50.00: 20.00 left today, until ")
        raised = await alice.ok({"op": "selflimits.set", "daily_stake": "80.00"}, "selflimits")
        stake = raised["limits"]["daily_stake"]
        assert (stake["limit"], stake["left"]) == ("50.00", "20.00")
        effective = stake["pending"]["effective_ts"]
        assert stake["pending"] == {"limit": "80.00", "effective_ts": effective}
        # the raise's time as the home shard counts it (with several shards each counts the
        # cooling-off from its own command, milliseconds apart: docs/scale-out.md)
        error = await alice.error(place(market, price="5.00", size="20.01"), "SELF_STAKE_LIMIT")
        assert error["message"].endswith(
            f"; your raise to 80.00 takes effect at {format_utc(effective)}")
        await placed(alice, market, price="5.00", size="20.00")  # exactly at the limit
        again = await alice.ok({"op": "selflimits"}, "selflimits")
        assert again["limits"]["daily_stake"]["pending"]["effective_ts"] == effective
        assert again["limits"]["daily_stake"]["used"] == "50.00"
    ws(scenario)


def test_a_null_asks_to_remove_a_limit_after_the_cooling_off_period(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("alice")
        await alice.ok({"op": "selflimits.set", "weekly_deposit": "2000.00"}, "selflimits")
        reply = await alice.ok({"op": "selflimits.set", "weekly_deposit": None}, "selflimits")
        entry = reply["limits"]["weekly_deposit"]
        assert entry["limit"] == "2000.00" and entry["pending"]["limit"] is None
        assert entry["used"] == "1000.00" and entry["left"] == "1000.00"
    ws(scenario)


def test_a_deposit_past_the_limit_is_refused_for_good_and_credits_nothing(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("alice", "100.00")
        await alice.ok({"op": "selflimits.set", "daily_deposit": "150.00"}, "selflimits")
        ref = unique("pay")
        status, body = await webhook(h, alice.user, "50.01", ref)
        assert status == 409 and body["code"] == "SELF_DEPOSIT_LIMIT"
        assert body["message"].startswith("deposit 50.01 would pass your daily deposit limit "
                                          "150.00: 50.00 left today, until ")
        assert await webhook(h, alice.user, "50.01", ref) == (status, body)  # a retry
        status, _ = await webhook(h, alice.user, "50.00", unique("pay"))
        assert status == 200
        wallet = await alice.ok({"op": "wallet"}, "wallet")
        assert wallet["balance"] == "150.00"
    ws(scenario)


def test_self_exclusion_cancels_open_orders_and_blocks_orders_and_deposits(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("alice", "100.00")
        # with several shards: a market on the bettor's home shard (whose until the reply
        # shows) and one on another shard
        home = h.shards.of_user(alice.user)
        market = await h.market(market=h.market_id(home))
        elsewhere = await h.market(market=h.market_id((home + 1) % h.shards.count))
        await alice.ok({"op": "orders"}, "orders")
        order = await placed(alice, market, price="5.00", size="10.00", persistence="persist")
        other = await placed(alice, elsewhere, price="5.00", size="4.00")
        reply = await alice.ok({"op": "selfexclude", "id": "x", "days": 30}, "selfexcluded")
        until = reply["excluded_until"]
        assert sorted((o["order"], o["cancelled"]) for o in reply["cancelled"]) == sorted(
            [(order["order"], "10.00"), (other["order"], "4.00")])
        pushed = await alice.take("ord", lambda f: f["order"]["order"] == order["order"]
                                  and f["order"]["cancelled"] == "10.00")
        assert pushed["order"]["status"] == "EXECUTION_COMPLETE"
        error = await alice.error(place(market, size="1.00"), "SELF_EXCLUDED")
        assert error["message"] == (f"you are self-excluded until {format_utc(until)}: no "
                                    "orders or deposits until then")
        await alice.error(place(elsewhere, size="1.00"), "SELF_EXCLUDED")
        status, body = await webhook(h, alice.user, "5.00", unique("pay"))
        assert (status, body["code"]) == (409, "SELF_EXCLUDED")
        shown = await alice.ok({"op": "selflimits"}, "selflimits")
        assert shown["excluded_until"] == until
        shorter = await alice.error({"op": "selfexclude", "days": 29}, "BAD_REQUEST")
        assert "cannot be shortened" in shorter["message"]
        await alice.ok({"op": "cancel", "order": order["order"]}, "cancelled")
        wallet = await alice.ok({"op": "wallet"}, "wallet")
        assert (wallet["balance"], wallet["held"]) == ("100.00", "0.00")
        await alice.ok({"op": "selfexclude", "days": 31}, "selfexcluded")  # extended everywhere
        assert (await alice.ok({"op": "selflimits"}))["excluded_until"] > until
    ws(scenario)


def test_every_connection_of_the_bettor_sees_the_same_limits(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("alice")
        other = await h.client(alice.user, "bettor")
        market = await h.market()
        await alice.ok({"op": "selflimits.set", "daily_stake": "5.00"}, "selflimits")
        await other.error(place(market, size="5.01"), "SELF_STAKE_LIMIT")
        mine = await alice.ok({"op": "selflimits"}, "selflimits")
        theirs = await other.ok({"op": "selflimits"}, "selflimits")
        assert {k: v for k, v in mine.items() if k != "id"} == \
            {k: v for k, v in theirs.items() if k != "id"}
    ws(scenario)


def test_own_limits_hold_on_every_market_and_count_what_every_market_used(ws):
    """With several shards, the markets are on two of them: each refuses past the limit, and
    `selflimits` counts what was staked on both."""
    async def scenario(h: Harness):
        alice = await h.bettor("alice", "100.00")
        home = h.shards.of_user(alice.user)
        here = await h.market(market=h.market_id(home))
        there = await h.market(market=h.market_id((home + 1) % h.shards.count))
        reply = await alice.ok({"op": "selflimits.set", "daily_stake": "5.00",
                                "daily_loss": "50.00"}, "selflimits")
        assert reply["limits"]["daily_stake"]["limit"] == "5.00"
        for market in (here, there):
            await alice.error(place(market, price="5.00", size="5.01"), "SELF_STAKE_LIMIT")
        await placed(alice, here, price="5.00", size="2.00")
        await placed(alice, there, price="5.00", size="1.50")
        limits = (await alice.ok({"op": "selflimits"}, "selflimits"))["limits"]
        assert (limits["daily_stake"]["used"], limits["daily_stake"]["left"]) == ("3.50", "1.50")
        assert limits["daily_deposit"]["used"] == "100.00"
        loss = limits["daily_loss"]
        assert (loss["used"], loss["at_risk"], loss["settled_loss"], loss["left"]) == (
            "3.50", "3.50", "0.00", "46.50")
    ws(scenario)


def test_the_http_mirrors_show_and_change_what_the_websocket_does(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("alice", "100.00")
        home = h.shards.of_user(alice.user)
        there = await h.market(market=h.market_id((home + 1) % h.shards.count))
        order = await placed(alice, there, price="5.00", size="3.00")
        session = await h.http()
        mine = {"Authorization": f"Bearer {h.token(alice.user)}"}
        operator = {"Authorization": f"Bearer {h.token(unique('op'), 'operator')}"}
        async with session.post("/account/selflimits", headers=mine,
                                json={"weekly_stake": "40.00"}) as resp:
            assert resp.status == 200, await resp.text()
            set_ = await resp.json()
        async with session.get("/account/selflimits", headers=mine) as resp:
            shown = await resp.json()
        ws_view = await alice.ok({"op": "selflimits"}, "selflimits")
        assert shown == set_ == {k: v for k, v in ws_view.items() if k not in ("op", "id")}
        assert (shown["limits"]["weekly_stake"]["limit"],
                shown["limits"]["weekly_stake"]["used"]) == ("40.00", "3.00")
        async with session.get(f"/admin/users/{alice.user}", headers=operator) as resp:
            detail = await resp.json()
        [own] = [v for v in detail["self_limits"] if v["currency"] == CURRENCY]
        assert own["limits"]["weekly_stake"] == shown["limits"]["weekly_stake"]
        async with session.post(f"/admin/users/{alice.user}/selfexclusion", headers=operator,
                                json={"days": 2}) as resp:
            assert resp.status == 200, await resp.text()
            excluded = await resp.json()
        assert [o["order"] for o in excluded["cancelled"]] == [order["order"]]
        reply = await alice.ok({"op": "selflimits"}, "selflimits")
        assert reply["excluded_until"] == excluded["excluded_until"]
        await alice.error(place(there, size="1.00"), "SELF_EXCLUDED")
    ws(scenario)


@pytest.mark.parametrize("msg, code", [
    ({"op": "selflimits.set"}, "BAD_REQUEST"),  # nothing named
    ({"op": "selflimits.set", "daily_stake": "-1.00"}, "INVALID_SIZE"),
    ({"op": "selflimits.set", "daily_stake": 5}, "INVALID_SIZE"),
    ({"op": "selflimits.set", "monthly_stake": "5.00"}, "BAD_REQUEST"),
    ({"op": "selflimits.set", "daily_stake": "5.00", "currency": "EUR"}, "BAD_REQUEST"),
    ({"op": "selflimits", "currency": "bdt"}, "BAD_REQUEST"),
    ({"op": "selfexclude"}, "BAD_REQUEST"),
    ({"op": "selfexclude", "days": 0}, "BAD_REQUEST"),
    ({"op": "selfexclude", "days": 3651}, "BAD_REQUEST"),
    ({"op": "selfexclude", "days": 2, "until": 4_102_444_800_000}, "BAD_REQUEST"),
    ({"op": "selfexclude", "until": 1}, "BAD_REQUEST"),  # in the past
    ({"op": "selfexclude", "days": "2"}, "BAD_REQUEST"),
])
def test_a_bad_request_gets_its_code_changes_nothing_and_keeps_the_connection(ws, msg, code):
    async def scenario(h: Harness):
        alice = await h.bettor("alice")
        before = await alice.ok({"op": "selflimits"}, "selflimits")
        await alice.error(msg, code)
        after = await alice.ok({"op": "selflimits"}, "selflimits")
        assert {k: v for k, v in after.items() if k != "id"} == \
            {k: v for k, v in before.items() if k != "id"}
    ws(scenario)
