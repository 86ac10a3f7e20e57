"""Connecting and authenticating on the trading WebSocket (PROTOCOL.md "Connect and
authenticate"), against a real `backlay serve` over loopback."""

import asyncio
import time

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

pytest.register_assert_rewrite("tests.ws_fixtures")

from tests.ws_fixtures import (ALLOWED_ORIGIN, AUTH_TIMEOUT_S, JWT_SECRET, Harness, make_token,
                               unique)  # noqa: E402

pytest_plugins = ["tests.ws_fixtures"]

CLOSE_AUTH = 4001


async def _refused(h: Harness, first_frame: str | None, *, url: str | None = None,
                   **connect_kwargs) -> tuple[list[dict], int | None]:
    """Connect, send `first_frame` (if any), and collect what arrives until the server closes."""
    client = await h.connect(url, **connect_kwargs)
    if first_frame is not None:
        await client.send_raw(first_frame)
    code = await client.wait_closed(AUTH_TIMEOUT_S + 5)
    return client.pushes + list(client.replies.values()), code


def test_auth_success_reply_has_user_and_roles(ws):
    async def scenario(h: Harness):
        user = unique("u")
        client = await h.connect()
        reply = await client.rpc({"op": "auth", "id": 1,
                                  "token": h.token(user, "bettor", "operator")})
        assert reply == {"op": "authed", "id": 1, "user": user, "roles": ["bettor", "operator"]}
        # and the connection is usable
        wallet = await client.rpc({"op": "wallet", "id": "w"})
        assert wallet["op"] == "wallet"
    ws(scenario)


def test_auth_bad_token_is_unauthenticated_and_closes_4001(ws):
    async def scenario(h: Harness):
        frames, code = await _refused(h, orjson.dumps(
            {"op": "auth", "id": 7, "token": "not-a-jwt"}).decode())
        assert code == CLOSE_AUTH
        assert [f["code"] for f in frames] == ["UNAUTHENTICATED"]
        assert frames[0]["op"] == "error" and frames[0]["id"] == 7
    ws(scenario)


def test_auth_token_signed_with_another_secret_is_refused(ws):
    async def scenario(h: Harness):
        token = make_token("some-other-secret-that-is-long-enough", "mallory", ["admin"])
        frames, code = await _refused(h, orjson.dumps(
            {"op": "auth", "id": 1, "token": token}).decode())
        assert code == CLOSE_AUTH
        assert frames[0]["code"] == "UNAUTHENTICATED"
    ws(scenario)


def test_auth_expired_token_is_refused(ws):
    async def scenario(h: Harness):
        token = make_token(JWT_SECRET, unique("u"), ["bettor"], ttl_s=-60)
        frames, code = await _refused(h, orjson.dumps(
            {"op": "auth", "id": 1, "token": token}).decode())
        assert code == CLOSE_AUTH
        assert frames[0]["code"] == "UNAUTHENTICATED"
    ws(scenario)


def test_auth_token_for_a_system_account_is_refused(ws):
    async def scenario(h: Harness):
        frames, code = await _refused(h, orjson.dumps(
            {"op": "auth", "id": 1, "token": h.token("house", "admin")}).decode())
        assert code == CLOSE_AUTH
        assert frames[0]["code"] == "UNAUTHENTICATED"
    ws(scenario)


def test_no_auth_within_the_timeout_closes_4001(ws):
    async def scenario(h: Harness):
        start = time.monotonic()
        frames, code = await _refused(h, None)
        waited = time.monotonic() - start
        assert code == CLOSE_AUTH
        assert [f["code"] for f in frames] == ["UNAUTHENTICATED"]
        assert AUTH_TIMEOUT_S * 0.8 <= waited < AUTH_TIMEOUT_S + 3
    ws(scenario)


def test_first_frame_not_auth_closes_4001(ws):
    async def scenario(h: Harness):
        frames, code = await _refused(h, orjson.dumps({"op": "wallet", "id": 3}).decode())
        assert code == CLOSE_AUTH
        assert frames[0]["code"] == "UNAUTHENTICATED" and frames[0]["id"] == 3
    ws(scenario)


def test_first_frame_not_json_closes_4001(ws):
    async def scenario(h: Harness):
        frames, code = await _refused(h, "hello")
        assert code == CLOSE_AUTH
        assert frames[0]["code"] == "UNAUTHENTICATED"
    ws(scenario)


def test_auth_again_after_authenticating_is_bad_request(ws):
    async def scenario(h: Harness):
        client = await h.client(unique("u"))
        await client.error({"op": "auth", "id": 2, "token": h.token(unique("v"), "admin")},
                           "BAD_REQUEST")
        assert not client.closed.is_set()
    ws(scenario)


def test_token_in_url_does_not_authenticate(ws):
    async def scenario(h: Harness):
        url = f"{h.ws_url}?token={h.token(unique('u'), 'admin')}"
        try:
            client = await h.connect(url)
        except InvalidStatus as exc:  # refusing the handshake outright is fine too
            assert exc.response.status_code in (400, 401, 403, 404)
            return
        await client.send_raw(orjson.dumps({"op": "wallet", "id": 1}).decode())
        assert await client.wait_closed(AUTH_TIMEOUT_S + 5) == CLOSE_AUTH
    ws(scenario)


def test_token_in_authorization_header_does_not_authenticate(ws):
    async def scenario(h: Harness):
        client = await h.connect(additional_headers={
            "Authorization": f"Bearer {h.token(unique('u'), 'admin')}"})
        await client.send_raw(orjson.dumps({"op": "wallet", "id": 1}).decode())
        assert await client.wait_closed(AUTH_TIMEOUT_S + 5) == CLOSE_AUTH
    ws(scenario)


def test_origin_not_in_allow_list_is_refused_403(ws):
    async def scenario(h: Harness):
        with pytest.raises(InvalidStatus) as refused:
            await connect(h.ws_url, origin="http://evil.example", open_timeout=5)
        assert refused.value.response.status_code == 403
    ws(scenario)


def test_origin_in_allow_list_is_accepted(ws):
    async def scenario(h: Harness):
        client = await h.client(unique("u"), origin=ALLOWED_ORIGIN)
        assert (await client.rpc({"op": "wallet"}))["op"] == "wallet"
    ws(scenario)


def test_no_origin_is_accepted(ws):
    async def scenario(h: Harness):
        client = await h.client(unique("u"))  # websockets sends no Origin unless told
        assert (await client.rpc({"op": "wallet"}))["op"] == "wallet"
    ws(scenario)


def test_path_other_than_ws_is_refused(ws):
    async def scenario(h: Harness):
        with pytest.raises(InvalidStatus) as refused:
            await connect(h.ws_url.replace("/ws", "/other"), open_timeout=5)
        assert refused.value.response.status_code == 404
    ws(scenario)


def test_many_connections_for_one_user_each_authenticate(ws):
    async def scenario(h: Harness):
        user = unique("u")
        clients = await asyncio.gather(*(h.client(user) for _ in range(5)))
        replies = await asyncio.gather(*(c.rpc({"op": "wallet"}) for c in clients))
        assert all(r["op"] == "wallet" for r in replies)
    ws(scenario)
