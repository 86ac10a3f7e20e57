"""The operators' live exposure page (/ops) in a real headless Chromium, against a real
`backlay serve` process (embedded Redis and Postgres), driven by Playwright.

The page is loaded with an operator+trader token in its URL fragment; bets go in through a
separate WebSocket client; the page must show the house's new position within a second of the
bet's acknowledgement, with no reload, and its Suspend button must suspend the market (seen on
the page and in a fresh market image). Screenshots are saved under each test's tmp_path.

Chromium comes from the Debian packages `chromium` (scripts/ensure_chromium.sh installs them);
when it is missing or cannot start, the browser tests skip and say why.
"""

import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace

import pytest
from websockets.sync.client import connect

from gateway.auth import make_token

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
JWT_SECRET = "ops-page-tests-jwt-secret-long-enough-for-hs256"
WEBHOOK_SECRET = "ops-page-tests-webhook-secret"
START_TIMEOUT_S = 120
REPLY_TIMEOUT_S = 10
SHOWN_WITHIN_MS = 1_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(user: str, *roles: str) -> str:
    return make_token(JWT_SECRET, user, list(roles))


# -- a real exchange --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exchange():
    """`python -m gateway.cli serve` with embedded storage, WebSocket port 0 (picked by the OS).

    The HTTP port is chosen here rather than left to the OS because the browser's Origin is
    that address, and the WebSocket only admits origins listed in BACKLAY_ALLOWED_ORIGINS,
    which must be known before the server starts. A second chosen port is allowed too, for
    the stand-alone page server used while /ops is not yet part of the server's HTTP app."""
    # not under pytest's basetemp, which another pytest run starting meanwhile may prune or
    # make private (the embedded Postgres runs as another user)
    tmp = Path(tempfile.mkdtemp(prefix="backlay-ops-exchange-"))
    tmp.chmod(0o755)
    http_port, page_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update({
        "BACKLAY_JWT_SECRET": JWT_SECRET,
        "BACKLAY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "BACKLAY_ALLOWED_ORIGINS": json.dumps([f"http://127.0.0.1:{http_port}",
                                               f"http://127.0.0.1:{page_port}"]),
        "PYTHONUNBUFFERED": "1",
    })
    log_path = tmp / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--var-dir", str(tmp / "var"),
             "--host", "127.0.0.1", "--ws-port", "0", "--http-port", str(http_port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        ws_url = http_url = None
        while time.monotonic() < deadline and not (ws_url and http_url):
            if proc.poll() is not None:
                pytest.fail(f"backlay serve exited {proc.returncode}:\n{log_path.read_text()}")
            text = log_path.read_text(errors="replace")
            ws_match = re.search(r"WebSocket\s+(ws://\S+)", text)
            http_match = re.search(r"HTTP\s+(http://[^\s/]+)", text)
            ws_url = ws_match and ws_match.group(1)
            http_url = http_match and http_match.group(1)
            time.sleep(0.1)
        if not (ws_url and http_url):
            pytest.fail(f"backlay serve did not start:\n{log_path.read_text()}")
        yield SimpleNamespace(ws_url=ws_url, http_url=http_url, page_port=page_port,
                              ws_port=int(ws_url.rsplit(":", 1)[1].split("/")[0]),
                              log_path=log_path)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this fixture started
            proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


def _serve_page_alone(port: int, ws_port: int):
    """The /ops routes on an aiohttp app of their own, in a thread, pointing at the real
    server's WebSocket port: for as long as the server's HTTP app does not include them."""
    import asyncio

    from aiohttp import web

    from gateway.ops_page import add_ops_routes

    ready = threading.Event()
    holder = {}

    def main():
        async def serve():
            app = web.Application()
            add_ops_routes(app, SimpleNamespace(ws_port=ws_port,
                                                settings=SimpleNamespace(ws_port=ws_port)))
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            holder["stop"] = asyncio.Event()
            ready.set()
            await holder["stop"].wait()
            await runner.cleanup()

        holder["loop"] = asyncio.new_event_loop()
        holder["loop"].run_until_complete(serve())

    thread = threading.Thread(target=main, name="ops-page", daemon=True)
    thread.start()
    ready.wait(10)

    def stop():
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)

    return stop


@pytest.fixture(scope="module")
def page_url(exchange):
    """Where /ops is served: by the exchange itself when its HTTP app has the route, else by a
    stand-alone app that calls the same add_ops_routes."""
    try:
        with urllib.request.urlopen(f"{exchange.http_url}/ops", timeout=5) as response:
            if b"backlay-ws-port" in response.read():
                yield f"{exchange.http_url}/ops"
                return
    except urllib.error.HTTPError:
        pass
    stop = _serve_page_alone(exchange.page_port, exchange.ws_port)
    yield f"http://127.0.0.1:{exchange.page_port}/ops"
    stop()


# -- clients ----------------------------------------------------------------------------------


class Client:
    """A synchronous protocol client over a real WebSocket."""

    def __init__(self, url: str, jwt: str) -> None:
        self._stack = ExitStack()
        self.ws = self._stack.enter_context(connect(url, open_timeout=REPLY_TIMEOUT_S))
        self.next_id = 0
        self.pushes: list[dict] = []
        authed = self.rpc({"op": "auth", "token": jwt})
        assert authed["op"] == "authed", authed

    def rpc(self, msg: dict) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({**msg, "id": self.next_id}))
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while True:
            frame = json.loads(self.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if frame.get("id") == self.next_id:
                return frame
            self.pushes.append(frame)

    def ok(self, msg: dict) -> dict:
        reply = self.rpc(msg)
        assert reply["op"] != "error", (msg, reply)
        return reply

    def push(self, wanted) -> dict:
        """The first push (already received or coming) for which wanted(push) is true."""
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while not any(wanted(p) for p in self.pushes):
            self.pushes.append(json.loads(self.ws.recv(
                timeout=max(0.01, deadline - time.monotonic()))))
        return next(p for p in self.pushes if wanted(p))

    def close(self) -> None:
        self._stack.close()


def deposit(http_url: str, user: str, amount: str) -> None:
    body = json.dumps({"ref": f"dep-{user}-{time.time_ns()}", "user": user, "amount": amount,
                       "currency": "BDT", "ts": int(time.time())}).encode()
    signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(f"{http_url}/webhooks/deposits/testpay", data=body,
                                     method="POST", headers={"Content-Type": "application/json",
                                                             "X-Signature": signature})
    with urllib.request.urlopen(request, timeout=REPLY_TIMEOUT_S) as response:
        assert json.loads(response.read())["status"] == "credited"


def admin_exposure(http_url: str) -> dict:
    request = urllib.request.Request(f"{http_url}/admin/exposure", headers={
        "Authorization": f"Bearer {token('ops-check', 'operator')}"})
    with urllib.request.urlopen(request, timeout=REPLY_TIMEOUT_S) as response:
        return {m["market"]: m for m in json.loads(response.read())["markets"]}


def priced_market(ws_url: str, market: str) -> None:
    """A two-runner market the house quotes (fair 2.10 / 1.90, 5% margin, 1000.00 cap)."""
    trader = Client(ws_url, token("trader-setup", "trader"))
    try:
        trader.ok({"op": "market.create", "market": market, "event": "e-ops",
                   "name": f"Ops {market}", "selections": [{"id": "h", "name": "Home"},
                                                           {"id": "a", "name": "Away"}]})
        trader.ok({"op": "market.status", "market": market, "status": "open"})
        trader.ok({"op": "limits.set", "market": market, "max_liability": "1000.00"})
        trader.ok({"op": "prices.set", "market": market, "prices": {"h": "2.10", "a": "1.90"},
                   "margin": "0.05"})
    finally:
        trader.close()


def image(ws_url: str, market: str) -> dict:
    watcher = Client(ws_url, token("watcher", "bettor"))
    try:
        assert watcher.ok({"op": "subscribe", "markets": [market]})["op"] == "subscribed"
        return watcher.push(lambda p: p.get("op") == "mkt" and p.get("img"))
    finally:
        watcher.close()


def to_minor(text: str) -> int:
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


# -- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: run scripts/ensure_chromium.sh as root "
                    "(Debian packages chromium, chromium-driver)")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install playwright)")
    manager = sync_playwright().start()
    try:
        chromium = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Error as exc:
        manager.stop()
        pytest.skip(f"Chromium at {CHROMIUM} could not be launched: {exc}")
    yield chromium
    chromium.close()
    manager.stop()


@pytest.fixture
def open_page(browser, page_url):
    pages = []

    def open_with(jwt: str):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.console_errors = []
        page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
        page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
        page.goto(f"{page_url}#token={jwt}")
        page.wait_for_selector('#conn[data-state="live"]', timeout=REPLY_TIMEOUT_S * 1000)
        pages.append(context)
        return page

    yield open_with
    for context in pages:
        context.close()


def card(market: str) -> str:
    return f'[data-market="{market}"]'


def field(market: str, name: str) -> str:
    return f'{card(market)} [data-field="{name}"]'


def wait_value(page, selector: str, value: str, timeout_ms: int) -> None:
    page.wait_for_function(
        "([sel, want]) => { const n = document.querySelector(sel);"
        " return n !== null && n.dataset.value === want; }",
        arg=[selector, value], timeout=timeout_ms, polling="raf")


# -- tests ------------------------------------------------------------------------------------


def test_the_page_shows_the_house_position_live_and_suspends_the_market(
        exchange, open_page, tmp_path):
    market = "ops-live"
    priced_market(exchange.ws_url, market)
    deposit(exchange.http_url, "punter1", "500.00")
    page = open_page(token("ops-trader", "operator", "trader"))
    page.wait_for_selector(card(market))
    wait_value(page, field(market, "matched_liability"), "0.00", 2_000)
    assert page.inner_text(f"{card(market)} .name") == f"Ops {market}"
    assert page.get_attribute(field(market, "status"), "data-value") == "OPEN"
    assert page.is_visible(f'{card(market)} button[data-action="suspend"]')

    # the bettor backs Home at the house's offered price: the house lays 10.00 at those odds
    bettor = Client(exchange.ws_url, token("punter1", "bettor"))
    try:
        bettor.ok({"op": "subscribe", "markets": [market]})
        img = bettor.push(lambda p: p.get("op") == "mkt" and p.get("img"))
        offered = img["selections"][0]["to_back"][0][0]
        placed = bettor.ok({"op": "place", "market": market, "selection": "h", "side": "back",
                            "price": offered, "size": "10.00"})
        acked_at = time.monotonic()
        assert placed["order"]["matched"] == "10.00"
        house_loses = 10 * (to_minor(offered) - 100)  # 10.00 stake at odds p: 10 * (p - 1)
        wait_value(page, field(market, "matched_liability"), money(house_loses), SHOWN_WITHIN_MS)
        shown_after_ms = (time.monotonic() - acked_at) * 1000
    finally:
        bettor.close()
    assert shown_after_ms < SHOWN_WITHIN_MS
    home = f'{card(market)} .pnl tr[data-selection="h"] td.num'
    away = f'{card(market)} .pnl tr[data-selection="a"] td.num'
    assert page.get_attribute(home, "data-value") == money(-house_loses)
    assert page.get_attribute(away, "data-value") == "10.00"
    assert page.get_attribute(field(market, "matched"), "data-value") == "10.00"
    assert page.inner_text(f"{card(market)} .users tbody").split() == ["punter1", "10.00"]
    assert (page.get_attribute(field(market, "house_liability"), "data-value")
            == admin_exposure(exchange.http_url)[market]["house_liability"])
    page.screenshot(path=str(tmp_path / "ops-after-bet.png"), full_page=True)

    page.click(f'{card(market)} button[data-action="suspend"]')
    wait_value(page, field(market, "status"), "SUSPENDED", 2_000)
    assert image(exchange.ws_url, market)["status"] == "SUSPENDED"
    assert page.is_disabled(f'{card(market)} button[data-action="suspend"]')
    assert page.is_enabled(f'{card(market)} button[data-action="resume"]')
    assert "SUSPENDED" in page.inner_text(f"{card(market)} .msg")
    page.screenshot(path=str(tmp_path / "ops-suspended.png"), full_page=True)
    assert page.console_errors == []


def test_a_trader_op_the_server_refuses_shows_the_servers_error(exchange, open_page, tmp_path):
    market = "ops-refused"
    priced_market(exchange.ws_url, market)
    page = open_page(token("ops-trader2", "operator", "trader"))
    page.wait_for_selector(card(market))
    page.fill(f'{card(market)} .limits-form input[name="min_stake"]', "50.00")
    page.fill(f'{card(market)} .limits-form input[name="max_stake"]', "10.00")
    page.click(f'{card(market)} .limits-form button[type="submit"]')
    page.wait_for_selector(f"{card(market)} .msg.error", timeout=REPLY_TIMEOUT_S * 1000)
    assert "BAD_REQUEST" in page.inner_text(f"{card(market)} .msg")
    assert "min_stake above max_stake" in page.inner_text(f"{card(market)} .msg")
    page.screenshot(path=str(tmp_path / "ops-refused.png"), full_page=True)


def test_settling_from_the_page_takes_a_second_click_and_retires_the_market(
        exchange, open_page):
    market = "ops-settle"
    priced_market(exchange.ws_url, market)
    page = open_page(token("ops-trader3", "operator", "trader"))
    page.wait_for_selector(card(market))
    page.check(f'{card(market)} .winners input[name="a"]')
    settle = f'{card(market)} button[data-action="settle"]'
    page.click(settle)
    assert page.inner_text(settle).startswith("Confirm")
    assert page.get_attribute(field(market, "status"), "data-value") == "OPEN"
    page.click(settle)
    wait_value(page, field(market, "status"), "SETTLED", 2_000)
    assert "retired" in page.get_attribute(card(market), "class")
    assert image(exchange.ws_url, market)["status"] == "SETTLED"


def test_an_operator_without_the_trader_role_gets_no_controls(exchange, open_page):
    market = "ops-watch-only"
    priced_market(exchange.ws_url, market)
    page = open_page(token("ops-only", "operator"))
    page.wait_for_selector(card(market))
    assert page.inner_text("#who") == "ops-only · operator"
    assert not page.is_visible(f'{card(market)} button[data-action="suspend"]')
    assert not page.is_visible("#user-limits")


def test_a_bettor_token_is_told_it_needs_the_operator_role(browser, page_url):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{page_url}#token={token('just-a-punter', 'bettor')}")
        page.wait_for_selector('#conn[data-state="error"]', timeout=REPLY_TIMEOUT_S * 1000)
        assert "operator" in page.inner_text("#conn")
        assert "#token" not in page.url  # the token is taken out of the address bar
    finally:
        context.close()


def test_the_page_is_told_the_websocket_port_and_keeps_to_its_own_scripts(exchange, page_url):
    with urllib.request.urlopen(page_url, timeout=5) as response:
        html = response.read().decode()
        csp = response.headers["Content-Security-Policy"]
    assert f'<meta name="backlay-ws-port" content="{exchange.ws_port}">' in html
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    for asset, kind in (("ops.js", "text/javascript"), ("ops.css", "text/css")):
        with urllib.request.urlopen(page_url.replace("/ops", f"/static/ops/{asset}"),
                                    timeout=5) as response:
            assert response.headers["Content-Type"].startswith(kind)
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(page_url.replace("/ops", "/static/ops/ops.html"), timeout=5)
    assert missing.value.code == 404


def test_the_catalogue_lists_every_market_and_follows_status_changes_live(exchange, open_page):
    market = "ops-catalogue"
    page = open_page(token("ops-catalogue", "operator"))
    page.wait_for_selector("#catalogue:not([hidden])")
    priced_market(exchange.ws_url, market)  # created after the page subscribed: a push
    row = f'#catalogue tr[data-catalogue="{market}"]'
    wait_value(page, f'{row} [data-field="status"]', "OPEN", 2_000)
    assert page.inner_text(f'{row} [data-field="name"]') == f"Ops {market}"
    assert page.inner_text(f'{row} [data-field="event"]') == "e-ops"
    assert page.get_attribute(f'{row} [data-field="traded"]', "data-value") == "0.00"
    trader = Client(exchange.ws_url, token("trader-catalogue", "trader"))
    try:
        trader.ok({"op": "market.status", "market": market, "status": "suspended",
                   "in_play": True})
    finally:
        trader.close()
    wait_value(page, f'{row} [data-field="status"]', "SUSPENDED", 2_000)
    assert page.inner_text(f'{row} [data-field="in_play"]') == "in-play"
    assert page.console_errors == []


def test_user_positions_show_a_bettors_pnl_if_each_selection_wins(exchange, open_page):
    market = "ops-positions"
    priced_market(exchange.ws_url, market)
    deposit(exchange.http_url, "punter-pnl", "100.00")
    bettor = Client(exchange.ws_url, token("punter-pnl", "bettor"))
    try:
        # the house lays Away at its offered price; the bettor backs it for 10.00
        offered = bettor.ok({"op": "catalogue", "event": "e-ops", "status": ["open"]})
        assert market in [m["market"] for m in offered["markets"]]
        placed = bettor.ok({"op": "place", "market": market, "selection": "a",
                            "side": "back", "price": "1.01", "size": "10.00", "tif": "fok"})
        assert placed["order"]["matched"] == "10.00"
        mine = bettor.ok({"op": "pnl", "market": market})["selections"]
        locked = bettor.ok({"op": "cashout.quote", "market": market})["locked"]
    finally:
        bettor.close()
    page = open_page(token("ops-positions", "operator"))
    page.wait_for_selector("#user-positions:not([hidden])")
    page.fill('#user-positions-form input[name="user"]', "punter-pnl")
    page.click('#user-positions-form button[type="submit"]')
    row = f'#user-positions tr[data-position="{market}"]'
    page.wait_for_selector(row)
    shown = page.inner_text(f'{row} [data-field="pnl"]')
    assert shown == " · ".join(f"{s['id']} {s['if_win']} ({s['if_win_with_unmatched']})"
                               for s in mine)
    assert page.get_attribute(f'{row} [data-field="cash_out"]', "data-value") == locked
    assert page.console_errors == []
    page.fill('#user-positions-form input[name="user"]', "nobody-at-all")
    page.click('#user-positions-form button[type="submit"]')
    page.wait_for_function("() => document.querySelector('#user-positions-msg').textContent"
                           ".includes('UNKNOWN_USER')", polling="raf")  # (a logged 404)


def test_user_lookup_shows_wallets_and_the_last_statement_movements(
        exchange, open_page, tmp_path):
    market = "ops-statement"
    priced_market(exchange.ws_url, market)
    deposit(exchange.http_url, "punter-statement", "50.00")
    bettor = Client(exchange.ws_url, token("punter-statement", "bettor"))
    trader = Client(exchange.ws_url, token("trader-statement", "trader"))
    try:
        bettor.ok({"op": "place", "market": market, "selection": "a", "side": "back",
                   "price": "1.01", "size": "10.00", "tif": "fok"})  # the house lays it
        trader.ok({"op": "market.settle", "market": market, "winners": ["a"]})
        statement = bettor.ok({"op": "statement"})["movements"]
        wallet = bettor.ok({"op": "wallet"})
    finally:
        bettor.close()
        trader.close()
    assert [m["kind"] for m in statement] == ["settlement", "hold", "deposit"]
    page = open_page(token("ops-statement", "operator"))
    page.wait_for_selector("#user-positions:not([hidden])")
    page.fill('#user-positions-form input[name="user"]', "punter-statement")
    page.click('#user-positions-form button[type="submit"]')
    page.wait_for_selector("#user-statement:not([hidden])")
    rows = page.query_selector_all("#user-statement-rows tr")
    shown = [(row.get_attribute("data-movement"),
              row.query_selector('[data-field="kind"]').inner_text(),
              row.query_selector('[data-field="amount"]').get_attribute("data-value"),
              row.query_selector('[data-field="commission"]').get_attribute("data-value"),
              row.query_selector('[data-field="held_change"]').get_attribute("data-value"),
              row.query_selector('[data-field="balance"]').get_attribute("data-value"),
              row.query_selector('[data-field="available"]').get_attribute("data-value"))
             for row in rows]
    assert shown == [(f"{m['seq']}.{m['currency']}", m["kind"], m["amount"], m["commission"],
                      m["held_change"], m["balance"], m["available"]) for m in statement]
    assert page.inner_text("#user-wallets") == (
        f"Wallets: BDT {wallet['balance']} (available {wallet['available']})")
    page.screenshot(path=str(tmp_path / "user-statement.png"), full_page=True)


def test_a_trader_removes_a_non_runner_from_the_page_and_the_operator_sees_it(
        exchange, open_page, tmp_path):
    """The card's Remove form (a second click confirms) sends `selection.remove`; the card then
    names the non-runner with its factor, drops it from the house P&L and from the forms, and
    the catalogue lists it too, next to the market's start time."""
    market = "ops-nonrunner"
    trader = Client(exchange.ws_url, token("trader-nonrunner", "trader"))
    try:
        trader.ok({"op": "market.create", "market": market, "event": "e-ops-nr",
                   "name": f"Ops {market}", "start_ts": 1_767_229_200_000,
                   "selections": [{"id": "h", "name": "Home"}, {"id": "d", "name": "Draw"},
                                  {"id": "a", "name": "Away"}]})
        trader.ok({"op": "market.status", "market": market, "status": "open"})
    finally:
        trader.close()
    page = open_page(token("ops-trader-nr", "operator", "trader"))
    page.wait_for_selector(card(market))
    row = f'#catalogue tr[data-catalogue="{market}"]'
    page.wait_for_selector(row)
    assert page.inner_text(f'{row} [data-field="start_ts"]') == "2026-01-01 01:00"
    assert page.inner_text(f'{row} [data-field="removed"]') == ""
    assert not page.is_visible(field(market, "nonrunners"))

    page.select_option(f'{card(market)} .remove-form select', "d")
    page.fill(f'{card(market)} .remove-form input[name="reduction_factor"]', "0.125")
    remove = f'{card(market)} button[data-action="remove"]'
    page.click(remove)
    assert page.inner_text(remove).startswith("Confirm")
    page.click(remove)
    page.wait_for_function(
        "(sel) => document.querySelector(sel).textContent === 'Non-runners: d (12.5%)'",
        arg=field(market, "nonrunners"), timeout=REPLY_TIMEOUT_S * 1000, polling="raf")
    page.wait_for_function(
        "(sel) => document.querySelector(sel).textContent === 'd (12.5%)'",
        arg=f'{row} [data-field="removed"]', timeout=REPLY_TIMEOUT_S * 1000, polling="raf")
    page.wait_for_function(
        "(sel) => document.querySelectorAll(sel).length === 2",
        arg=f'{card(market)} .pnl tr[data-selection]', timeout=REPLY_TIMEOUT_S * 1000,
        polling="raf")  # the next exposure push lists the runners only
    assert page.is_disabled(f'{card(market)} .winners input[name="d"]')
    assert page.eval_on_selector_all(f'{card(market)} .remove-form option',
                                     "os => os.map(o => o.value)") == ["h", "a"]
    assert "selection.remove done" in page.inner_text(f"{card(market)} .msg")
    assert image(exchange.ws_url, market)["selections"][1]["removed"]["reduction_factor"] == \
        "0.125"
    page.screenshot(path=str(tmp_path / "ops-nonrunner.png"), full_page=True)


def test_the_user_lookup_shows_the_bettors_own_limits_and_self_exclusion(exchange, open_page):
    from risk.self_limits import format_utc

    def utc(ms: int) -> str:
        return format_utc(ms)[:16].replace("T", " ") + " UTC"

    deposit(exchange.http_url, "punter-limits", "100.00")
    bettor = Client(exchange.ws_url, token("punter-limits", "bettor"))
    try:
        bettor.ok({"op": "selflimits.set", "daily_stake": "50.00"})
        raised = bettor.ok({"op": "selflimits.set", "daily_stake": "80.00",
                            "weekly_loss": "200.00"})
        until = bettor.ok({"op": "selfexclude", "days": 30})["excluded_until"]
    finally:
        bettor.close()
    effective = raised["limits"]["daily_stake"]["pending"]["effective_ts"]
    page = open_page(token("ops-limits", "operator"))
    page.wait_for_selector("#user-positions:not([hidden])")
    page.fill('#user-positions-form input[name="user"]', "punter-limits")
    page.click('#user-positions-form button[type="submit"]')
    page.wait_for_selector("#user-self-limits:not([hidden])")
    assert page.inner_text("#user-self-limits") == (
        f"Own limits: self-excluded until {utc(until)} · BDT daily stake 50.00 (50.00 left), "
        f"raise to 80.00 from {utc(effective)} · BDT weekly loss 200.00 (200.00 left)")
    assert page.get_attribute("#user-self-limits", "data-excluded-until") == str(until)
    assert "excluded" in page.get_attribute("#user-self-limits", "class")
    assert page.console_errors == []
