"""Admin/trader/operator views over HTTP: who may see what, and that what they see is the
exchange's journaled state, money as strings."""

import pytest

from engine import commands as c
from gateway.auth import ROLES
from tests.http_fixtures import http_exchange  # noqa: F401  (pytest fixture)

OTHER_SECRET = "a-different-secret-just-as-long-as-ours"
BACKERS = {"u2": (5000, 100), "u3": (5500, 200), "u4": (6000, 300), "u5": (6500, 400),
           "u6": (7000, 500), "u7": (7500, 600)}  # user -> (price, stake) of a resting back


async def seed(x):
    """m1: the house quotes it within a 100.00 liability cap; u1 backs s1 into the house's lay,
    u2..u7 rest backs on s2 far above the house's price. m2 is settled, m3 a pool: neither is
    in the exposure picture."""
    await x.open_market("m1", "s1", "s2")
    await x.submit(c.SetMarketLimits(market="m1", max_liability_minor=10_000))
    await x.submit(c.SetPrices(market="m1", prices=(("s1", 210), ("s2", 190)), margin_bp=500))
    for user in ("u1", *BACKERS):
        await x.deposit(user, 100_000)
    await x.submit(c.PlaceOrder(user="u1", market="m1", selection="s1", side="back", price=200,
                                size_minor=1_000))
    for user, (price, stake) in BACKERS.items():
        await x.submit(c.PlaceOrder(user=user, market="m1", selection="s2", side="back",
                                    price=price, size_minor=stake))
    await x.submit(c.SetUserLimits(user="u7", max_stake_minor=50_000, stake_factor=(1, 2)))
    await x.open_market("m2", "y", "n")
    await x.submit(c.PlaceOrder(user="u1", market="m2", selection="y", side="back", price=200,
                                size_minor=500))
    await x.submit(c.PlaceOrder(user="u2", market="m2", selection="y", side="lay", price=200,
                                size_minor=500))
    await x.submit(c.SettleMarket(market="m2", winners=("n",)))
    await x.open_market("m3", "a", "b", type="pool")


def get(path: str, *roles: str, user: str = "staff"):
    async def scenario(x):
        await seed(x)
        response = await x.client.get(path, headers=x.auth(user, *roles) if roles else None)
        return response.status, await response.json()
    return scenario


# -- who may look -----------------------------------------------------------------------------

ENDPOINTS = {
    "/admin/exposure": {"operator", "admin"},
    "/admin/markets/m1": {"trader", "operator", "admin"},
    "/admin/users/u1": {"operator", "admin"},
}


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("role", ROLES)
def test_admin_views_answer_only_their_roles(http_exchange, path, role):
    status, body = http_exchange(get(path, role))
    if role in ENDPOINTS[path]:
        assert status == 200
    else:
        assert (status, body["code"]) == (403, "FORBIDDEN")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_admin_views_without_a_token_are_401(http_exchange, path):
    async def scenario(x):
        response = await x.client.get(path)
        return response.status, response.headers.get("WWW-Authenticate"), await response.json()

    status, challenge, body = http_exchange(scenario)
    assert status == 401
    assert challenge.startswith("Bearer")
    assert body["code"] == "UNAUTHENTICATED"
    assert body["message"]


@pytest.mark.parametrize("header", [
    "Bearer not-a-jwt",
    "Basic b3BlcmF0b3I6c2VjcmV0",
    "Bearer ",
    "wrong-secret",
    "expired",
    "system-account",
])
def test_a_bad_token_is_401_not_403(http_exchange, header):
    async def scenario(x):
        value = {
            "wrong-secret": f"Bearer {x.token('op', 'admin', secret=OTHER_SECRET)}",
            "expired": f"Bearer {x.token('op', 'admin', ttl_s=-10)}",
            "system-account": f"Bearer {x.token('house', 'admin')}",
        }.get(header, header)
        response = await x.client.get("/admin/exposure", headers={"Authorization": value})
        return response.status, (await response.json())["code"]

    assert http_exchange(scenario) == (401, "UNAUTHENTICATED")


# -- exposure ---------------------------------------------------------------------------------


def test_exposure_shows_house_liability_pnl_per_selection_and_top_five_users(http_exchange):
    status, body = http_exchange(get("/admin/exposure", "operator"))
    assert status == 200
    assert body == {"markets": [{
        "market": "m1", "name": "Market m1", "status": "OPEN", "matched": "10.00",
        # the house's lay on s1 (100.00 liability) is matched for 10.00 and quoted for the rest
        "house_liability": "100.00",
        "selections": [{"id": "s1", "house_pnl": "-10.00"}, {"id": "s2", "house_pnl": "10.00"}],
        "top_users": [{"user": "u1", "exposure": "10.00"}, {"user": "u7", "exposure": "6.00"},
                      {"user": "u6", "exposure": "5.00"}, {"user": "u5", "exposure": "4.00"},
                      {"user": "u4", "exposure": "3.00"}],
    }]}


def test_exposure_of_an_exchange_with_no_markets_is_empty(http_exchange):
    async def scenario(x):
        response = await x.client.get("/admin/exposure", headers=x.auth("op", "operator"))
        return await response.json()

    assert http_exchange(scenario) == {"markets": []}


# -- market -----------------------------------------------------------------------------------


def test_market_view_shows_book_top_three_traded_limits_and_house_prices(http_exchange):
    status, body = http_exchange(get("/admin/markets/m1", "trader"))
    assert status == 200
    assert {k: body[k] for k in ("market", "type", "currency", "status", "in_play",
                                 "bet_delay_ms", "matched")} == {
        "market": "m1", "type": "exchange", "currency": "BDT", "status": "OPEN",
        "in_play": False, "bet_delay_ms": 0, "matched": "10.00"}
    assert body["limits"] == {"min_stake": None, "max_stake": None, "max_liability": "100.00",
                              "selection_max_liability": None}
    assert body["house"] == {"priced": True, "margin": "0.05", "liability": "100.00"}
    s1, s2 = body["selections"]
    assert (s1["id"], s1["traded"], s1["ltp"], s1["house_fair"]) == ("s1", "10.00", "2.00",
                                                                      "2.10")
    assert s1["to_back"][0][0] == s1["house_offered"]  # the house's lay is the best to back
    assert s1["to_lay"] == []
    # six resting backs on s2; a layer sees the three lowest
    assert s2["to_lay"] == [["50.00", "1.00"], ["55.00", "2.00"], ["60.00", "3.00"]]
    assert (s2["traded"], s2["ltp"], s2["house_fair"]) == ("0.00", None, "1.90")


def test_market_view_of_a_pool_market_shows_pool_stakes(http_exchange):
    status, body = http_exchange(get("/admin/markets/m3", "operator"))
    assert status == 200
    assert body["type"] == "pool"
    assert [s["pool_stake"] for s in body["selections"]] == ["0.00", "0.00"]
    assert body["house"]["priced"] is False


def test_market_view_of_an_unknown_market_is_404(http_exchange):
    assert http_exchange(get("/admin/markets/nope", "trader")) == (
        404, {"code": "UNKNOWN_MARKET", "message": "no market 'nope'"})


# -- user -------------------------------------------------------------------------------------


def test_user_view_shows_wallet_limits_positions_and_open_orders(http_exchange):
    status, body = http_exchange(get("/admin/users/u7", "operator"))
    assert status == 200
    assert body["user"] == "u7"
    assert body["wallets"] == [{"currency": "BDT", "balance": "1000.00", "held": "6.00",
                                "available": "994.00"}]
    assert body["limits"] == {"max_stake": "500.00", "daily_stake": None, "weekly_stake": None,
                              "stake_factor": "0.5", "max_exposure": None}
    # the resting back of 6.00 on s2 loses its stake at worst if s1 wins, nothing is matched
    assert body["positions"] == [{"market": "m1", "exposure": "6.00", "selections": [
        {"id": "s1", "if_win": "0.00", "if_win_with_unmatched": "-6.00"},
        {"id": "s2", "if_win": "0.00", "if_win_with_unmatched": "0.00"}], "cash_out": "0.00"}]
    [order] = body["open_orders"]
    assert {k: order[k] for k in ("market", "selection", "side", "price", "size", "matched",
                                  "remaining", "status")} == {
        "market": "m1", "selection": "s2", "side": "back", "price": "75.00", "size": "6.00",
        "matched": "0.00", "remaining": "6.00", "status": "EXECUTABLE"}


def test_user_view_leaves_out_settled_markets_and_filled_orders(http_exchange):
    status, body = http_exchange(get("/admin/users/u1", "admin"))
    assert status == 200
    # m2 settled against u1's matched 5.00 back; m1's back is fully matched
    assert body["wallets"][0]["balance"] == "995.00"
    assert body["positions"] == [{"market": "m1", "exposure": "10.00", "selections": [
        {"id": "s1", "if_win": "10.00", "if_win_with_unmatched": "10.00"},  # matched at 2.00
        {"id": "s2", "if_win": "-10.00", "if_win_with_unmatched": "-10.00"}],
        "cash_out": "-10.00"}]  # nobody offers to lay s1 against: nothing to lock in
    assert body["open_orders"] == []


def test_user_view_of_an_unknown_user_is_404(http_exchange):
    assert http_exchange(get("/admin/users/nobody", "operator")) == (
        404, {"code": "UNKNOWN_USER", "message": "no user 'nobody'"})
