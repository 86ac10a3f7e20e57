"""docs/protocol.md is checked against the code, so the protocol documentation cannot drift.

The document marks each fenced example with an HTML comment on the line before it (the
convention is explained at the top of the document): `request` and `bad-request CODE` examples
go through `gateway.protocol.parse`; `reply` and `push` examples must have exactly the keys, at
every level, of the frames a real `backlay serve` sends for that op (a scenario below produces
them); `http-request` / `http-response` examples must be valid against `/openapi.json`. Besides:
every op has a section with a request example mentioning every field, the error table lists
every rejection code in precedence order with its HTTP status, ORDER / wallet / market image /
delta / MARKET / LEG keys equal those of the views rendered from a real engine, and the
generated blocks (docs/gen_protocol.py) are up to date.
"""

import asyncio
import importlib.util
import re
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import orjson
import pytest
from pydantic import BaseModel

from engine import commands as c
from engine.rejections import Code
from gateway import protocol, session, slips, views
from gateway import connection
from gateway.split import client as split_client
from gateway.exposure import exposure_view
from gateway.http import STATUS_BY_CODE
from gateway.metrics import Metrics
from gateway.openapi import build_openapi
from tests.engine_helpers import CUR, Driver, accepted

pytest_plugins = ["tests.ws_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
DOC_PATH = ROOT / "docs" / "protocol.md"

EXAMPLE = re.compile(
    r"^<!-- (?P<kind>request|bad-request|reply|push|http-request|http-response)"
    r"(?: (?P<args>[^>]*?))? -->\n```(?P<lang>\w*)\n(?P<body>.*?)\n```",
    re.M | re.S)
HEADING = re.compile(r"^(?P<hashes>#{2,4}) (?P<title>.+)$", re.M)
GENERATED = re.compile(r"<!-- generated:[^ ]+ -->\n.*?<!-- /generated -->", re.S)
TABLE_ROW = re.compile(r"^\| `?(?P<first>[^|`]+)`? \|(?P<rest>.*)\|$", re.M)

CLOSE_CODES = {connection.CLOSE_AUTH: 4001, connection.CLOSE_RATE: 4029,
               session.CLOSE_SLOW_CONSUMER: 1008, connection.CLOSE_FULL: 1013,
               split_client.CLOSE_SERVICE_RESTART: 1012}
# closes done by the WebSocket library (or for it, gateway/ws_picows.py) and by shutdown
LIBRARY_CLOSE_CODES = {1009, 1001}


# -- reading the document ---------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    kind: str
    args: str
    lang: str
    body: str
    line: int
    section: str  # title of the nearest heading above

    @property
    def data(self):
        return orjson.loads(self.body)

    def __str__(self) -> str:
        return f"docs/protocol.md:{self.line} ({self.kind} in {self.section})"


@cache
def doc() -> str:
    return DOC_PATH.read_text(encoding="utf-8")


@cache
def headings() -> list[tuple[int, str, int]]:
    """(level, title, offset) of every ##..#### heading."""
    return [(len(m["hashes"]), m["title"].strip(), m.start()) for m in HEADING.finditer(doc())]


def title_at(offset: int) -> str:
    title = "(top)"
    for _, heading, start in headings():
        if start > offset:
            break
        title = heading
    return title


@cache
def examples() -> tuple[Example, ...]:
    text = doc()
    return tuple(Example(m["kind"], m["args"] or "", m["lang"], m["body"],
                         text.count("\n", 0, m.start()) + 2, title_at(m.start()))
                 for m in EXAMPLE.finditer(text))


def of_kind(*kinds: str) -> list[Example]:
    return [ex for ex in examples() if ex.kind in kinds]


def section(title: str, level: int) -> str:
    """The text under the heading `title` of `level`, up to the next heading of that level or
    higher."""
    hs = headings()
    for i, (lvl, heading, start) in enumerate(hs):
        if lvl == level and heading == title:
            end = next((s for lv, _, s in hs[i + 1:] if lv <= level), len(doc()))
            return doc()[start:end]
    raise AssertionError(f"docs/protocol.md has no {'#' * level} {title} section")


def op_section(op: str) -> str:
    return section(f"`{op}`", 3)


def table_rows(text: str) -> list[tuple[str, list[str]]]:
    """(first cell without backticks, other cells) of each body row of the tables in `text`."""
    rows = []
    for m in TABLE_ROW.finditer(text):
        first = m["first"].strip()
        if first.startswith("---") or first in ("code", "key", "marker", "field", "constant",
                                                "HTTP-only code"):
            continue
        rows.append((first, [cell.strip() for cell in m["rest"].split("|")]))
    return rows


def gen_protocol():
    spec = importlib.util.spec_from_file_location("gen_protocol", ROOT / "docs" / "gen_protocol.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def keys_in(value) -> set[str]:
    """Every dict key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_in(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_in(v)}
    return set()


# -- the convention itself ----------------------------------------------------------------------


def test_every_json_block_carries_a_marker_so_none_escapes_the_checks():
    marked = sum(1 for ex in examples() if ex.lang == "json")
    assert doc().count("```json\n") == marked, "a ```json block without a marker comment"


def test_reply_examples_carry_an_id_and_push_examples_do_not():
    for ex in of_kind("reply"):
        assert "id" in ex.data, f"{ex}: a reply echoes the request's id"
    for ex in of_kind("push"):
        assert "id" not in ex.data, f"{ex}: pushes carry no id"


# -- requests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", of_kind("request"), ids=str)
def test_every_request_example_parses(example):
    request = protocol.parse(example.body)
    assert request.op == example.data["op"]


@pytest.mark.parametrize("example", of_kind("bad-request"), ids=str)
def test_every_bad_example_is_refused_with_its_documented_code(example):
    code = Code(example.args)
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.parse(example.body)
    assert refused.value.code == code, refused.value.message


@pytest.mark.parametrize("op", sorted(protocol.BY_OP))
def test_every_op_has_a_section_with_a_request_example_of_that_op(op):
    text = op_section(op)
    ops = [ex.data["op"] for ex in of_kind("request") if ex.body in text]
    assert op in ops, f"### `{op}` has no <!-- request --> example of op {op}"
    assert set(ops) == {op}, f"### `{op}` holds request examples of other ops: {ops}"


def _nested_models(annotation) -> list[type[BaseModel]]:
    found = []
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            found.append(arg)
        else:
            found += _nested_models(arg)
    return found


@pytest.mark.parametrize("op", sorted(protocol.BY_OP))
def test_every_field_of_every_request_model_is_discussed_in_its_section(op):
    """Outside the generated field table: each field is a key of a request example there or is
    named in `backticks` in the prose, nested objects (slip legs, selections) included."""
    model = protocol.BY_OP[op]
    names = set(model.model_fields)
    for field in model.model_fields.values():
        for nested in _nested_models(field.annotation):
            names |= set(nested.model_fields)
    text = op_section(op)
    mentioned = {k for ex in of_kind("request") if ex.body in text for k in keys_in(ex.data)}
    mentioned |= set(re.findall(r"`([a-z_]+)`", GENERATED.sub("", text)))
    assert names <= mentioned, f"### `{op}` never discusses {sorted(names - mentioned)}"


@pytest.mark.parametrize("op", sorted(protocol.BY_OP))
def test_every_op_section_carries_its_generated_field_table(op):
    assert f"<!-- generated:fields:{op} -->" in op_section(op)


def test_the_trader_section_documents_exactly_the_ops_that_need_the_trader_role():
    text = section("Trader ops", 2)
    documented = set(re.findall(r"^### `([a-z_.]+)`$", text, re.M))
    assert documented == set(protocol.TRADER_OPS)


def test_generated_blocks_are_up_to_date():
    fresh = gen_protocol().render(doc())
    assert fresh == doc(), "run .venv/bin/python docs/gen_protocol.py and commit the result"


# -- error codes and close codes ------------------------------------------------------------------


def test_the_error_table_lists_every_code_in_precedence_order_with_its_http_status():
    rows = table_rows(section("Error codes", 2))
    assert [code for code, _ in rows] == [member.value for member in Code], \
        "the table must list engine/rejections.py Code, in that (precedence) order"
    for code, (when, http) in rows:
        assert when, f"{code} says nothing about when it happens"
        expected = str(STATUS_BY_CODE[code]) if code in STATUS_BY_CODE else "—"
        assert http == expected, f"{code}: HTTP {http} documented, gateway/http.py uses {expected}"


def test_the_http_only_codes_are_documented_with_their_status():
    text = section("HTTP endpoints", 2)
    rows = {code: cells[0] for code, cells in table_rows(text) if code.isupper()}
    http_only = {code: str(status) for code, status in STATUS_BY_CODE.items()
                 if code not in {member.value for member in Code}}
    assert rows == http_only


def test_the_close_code_table_lists_every_close_the_server_makes():
    for constant, code in CLOSE_CODES.items():
        assert constant == code, "a close code constant changed: update docs/protocol.md"
    rows = table_rows(section("Close codes", 3))
    assert {int(code) for code, _ in rows} == set(CLOSE_CODES.values()) | LIBRARY_CLOSE_CODES


def _slug(title: str) -> str:
    """A heading's anchor as GitHub writes it."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def test_every_link_inside_the_document_points_at_a_heading():
    anchors: set[str] = set()
    for _, title, _ in headings():
        slug = _slug(title)
        n = 0
        while (slug if n == 0 else f"{slug}-{n}") in anchors:
            n += 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    links = set(re.findall(r"\]\(#([^)]+)\)", doc()))
    assert links and links <= anchors, f"dangling links: {sorted(links - anchors)}"


def test_every_metric_named_in_the_document_exists():
    exposition = Metrics().render().decode()
    for name in set(re.findall(r"\bbacklay_[a-z_]+", doc())):
        assert name in exposition, f"docs/protocol.md names a metric {name} that does not exist"


# -- shapes against views rendered from a real engine --------------------------------------------

ORDER_PLACES = {"placed": ("order",), "cancelled": ("order",), "ord": ("order",),
                "replaced": ("cancelled", "order"), "cancelled_all": ("orders[]",),
                "orders": ("orders[]",), "slip.placed": ("results[].order",),
                "selfexcluded": ("cancelled[]",)}


def _at(value, path: str) -> list:
    """The values at a dotted path; `name[]` steps into every item of a list."""
    found = [value]
    for step in path.split("."):
        many = step.endswith("[]")
        step = step.removesuffix("[]")
        found = [v[step] for v in found if isinstance(v, dict) and step in v]
        if many:
            found = [item for v in found for item in v]
    return found


def documented(op: str, *kinds: str) -> list[dict]:
    return [ex.data for ex in of_kind(*kinds or ("reply", "push")) if ex.data.get("op") == op]


def documented_orders() -> list[dict]:
    orders = [o for op, paths in ORDER_PLACES.items() for frame in documented(op)
              for path in paths for o in _at(frame, path)]
    orders += [o for ex in of_kind("http-response") for o in _at(ex.data, "open_orders[]")]
    return orders


def documented_wallets() -> list[dict]:
    wallets = [{k: v for k, v in frame.items() if k not in ("op", "id", "wallets")}
               for frame in documented("wallet")]
    wallets += [w for frame in documented("wallet", "reply") for w in frame["wallets"]]
    wallets += [w for frame in documented("preview") for w in _at(frame, "wallet_after")]
    for ex in of_kind("http-response"):
        wallets += _at(ex.data, "wallets[]") + [w for w in _at(ex.data, "wallet") if w]
    return wallets


@pytest.fixture(scope="module")
def engine_views() -> dict:
    """Views of a small, real engine state: a market with resting and matched bets, then a
    second market state after a match, a lapse at the in-play turn and a suspension."""
    d = Driver()
    d.create_market("m1", selections=("s1", "s2", "s3"))
    d.deposit("u1", 100_000)
    d.deposit("u2", 100_000)
    d(c.SetUserLimits, user="u1", max_stake_minor=50_000, stake_factor=(1, 2))
    accepted(d.lay("u2", 252, 8_000, persistence="persist"))
    accepted(d.lay("u2", 250, 12_000))
    accepted(d.back("u2", 260, 5_000))
    oid = accepted(d.back("u1", 250, 10_000, ref="client-ref"))
    accepted(d.back("u1", 340, 1_000, selection="s2"))
    before = views.market_state(d.eng, "m1")
    accepted(d.lay("u1", 260, 1_000))  # a match at another price: ltp moves
    d.status("m1", "suspended", in_play=True, bet_delay_ms=100)
    d.remove("s2", 2_500)  # a non-runner: its levels go, its `removed` comes
    after = views.market_state(d.eng, "m1")
    change = views.delta("m1", before, after, 3)
    return {
        "order": views.order_view(d.eng, oid),
        "wallet": views.wallet_view(d.eng, "u1", CUR),
        "image": views.image("m1", before, 3, 1), "delta": change,
        "market": views.market_view(d.eng, "m1"),
        "limits": views.user_limits_view(d.eng, "u1"),
        "exposure": exposure_view(d.eng)["markets"],
        "leg": slips.price_leg(slips.Leg("m1", "s1", "back", 1_000), before)[0],
    }


def test_documented_orders_have_exactly_the_keys_of_order_view(engine_views):
    orders = documented_orders()
    assert len(orders) >= len(ORDER_PLACES), "an op that carries ORDER lost its example"
    for order in orders:
        assert set(order) == set(engine_views["order"]), order["order"]


def test_documented_wallets_have_exactly_the_keys_of_wallet_view(engine_views):
    wallets = documented_wallets()
    assert wallets
    for wallet in wallets:
        assert set(wallet) == set(engine_views["wallet"]), wallet


def test_documented_market_images_have_exactly_the_keys_of_views_image(engine_views):
    image = engine_views["image"]
    images = [f for f in documented("mkt", "push") if f.get("img")]
    assert images
    for frame in images:
        assert set(frame) == set(image)
        for selection in frame["selections"]:
            assert set(selection) == set(image["selections"][0])


def test_documented_deltas_use_only_keys_views_delta_produces(engine_views):
    change = engine_views["delta"]
    selection_keys = set().union(*(set(s) for s in change["selections"]))
    deltas = [f for f in documented("mkt", "push") if not f.get("img")]
    assert deltas
    for frame in deltas:
        assert {"op", "market", "seq"} <= set(frame) <= set(change)
        for selection in frame.get("selections", []):
            assert "id" in selection and set(selection) <= selection_keys


def test_documented_trader_replies_have_exactly_the_keys_of_market_and_limits_views(
        engine_views):
    market = engine_views["market"]
    for frame in documented("market", "reply"):
        assert set(frame) == {"op", "id", "market"}
        assert set(frame["market"]) == set(market)
        assert set(frame["market"]["limits"]) == set(market["limits"])
        for selection in frame["market"]["selections"]:
            assert set(selection) == set(market["selections"][0])
    limits = documented("limits", "reply")
    assert limits
    for frame in limits:
        assert set(frame) == {"op", "id", "user", "limits"}
        assert set(frame["limits"]) == set(engine_views["limits"])


def test_documented_exposure_and_slip_legs_have_exactly_the_keys_of_their_views(engine_views):
    entry = engine_views["exposure"][0]
    frames = documented("exposure") + [ex.data for ex in of_kind("http-response")
                                       if ex.args.endswith("/admin/exposure")]
    assert frames
    for frame in frames:
        for market in frame["markets"]:
            assert set(market) == set(entry)
            assert all(set(s) == set(entry["selections"][0]) for s in market["selections"])
            assert all(set(u) == set(entry["top_users"][0]) for u in market["top_users"])
    legs = [leg for op in ("slip",) for frame in documented(op) for leg in frame["legs"]]
    assert legs
    for leg in legs:
        assert set(leg) == set(engine_views["leg"])


# -- every reply and push against what a real server sends ----------------------------------------

SCALAR = "scalar"


def shape(value):
    """The key structure of a JSON value: dicts keep their keys, lists merge their items."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        merged = None
        for item in value:
            merged = merge(merged, shape(item))
        return [] if merged is None else [merged]
    return SCALAR


def merge(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: merge(a.get(k), b.get(k)) for k in a.keys() | b.keys()}
    if isinstance(a, list) and isinstance(b, list):
        return [merge(a[0] if a else None, b[0] if b else None)] if a or b else []
    return b if a == SCALAR else a  # a structure beats a null seen elsewhere


def differences(doc_shape, real_shape, path: str = "") -> list[str]:
    if isinstance(doc_shape, dict) and isinstance(real_shape, dict):
        out = []
        if doc_shape.keys() - real_shape.keys():
            out.append(f"{path or '.'}: documented but never sent: "
                       f"{sorted(doc_shape.keys() - real_shape.keys())}")
        if real_shape.keys() - doc_shape.keys():
            out.append(f"{path or '.'}: sent but not documented: "
                       f"{sorted(real_shape.keys() - doc_shape.keys())}")
        for k in doc_shape.keys() & real_shape.keys():
            out += differences(doc_shape[k], real_shape[k], f"{path}.{k}")
        return out
    if isinstance(doc_shape, list) and isinstance(real_shape, list) and doc_shape and real_shape:
        return differences(doc_shape[0], real_shape[0], path + "[]")
    return []


def group(frame: dict) -> tuple[str, str]:
    """(reply|push, op), market data split into images and deltas."""
    kind = "reply" if "id" in frame else "push"
    op = frame.get("op", "?")
    if op == "mkt":
        op = "mkt image" if frame.get("img") else "mkt delta"
    return kind, op


def shapes_by_group(frames) -> dict:
    out: dict = {}
    for frame in frames:
        key = group(frame)
        out[key] = merge(out.get(key), shape(frame))
    return out


async def _exercise_every_op(h) -> list[dict]:
    """A session touching every reply and push of the protocol; returns every frame received."""
    from tests.ws_fixtures import unique

    async def ok(client, msg: dict) -> dict:
        reply = await client.rpc(msg)
        assert reply["op"] != "error", f"{msg} -> {reply}"
        return reply

    anon = await h.connect()
    await ok(anon, {"op": "auth", "id": "auth", "token": h.token(unique("u"), "bettor")})
    trader = await h.trader()
    ops = await h.client(unique("ops"), "operator")
    alice = await h.bettor("alice", "1000.00")
    bob = await h.bettor("bob", "1000.00")
    await ok(alice, {"op": "subscribe", "channel": "catalogue"})

    m, priced = unique("m"), unique("m")
    for market in (m, priced):
        await ok(trader, {"op": "market.create", "market": market, "event": unique("e"),
                          "name": "Match Odds", "selections": [
                              {"id": s, "name": s.upper()} for s in ("s1", "s2", "s3")]})
        await ok(trader, {"op": "market.status", "market": market, "status": "open"})
    await ok(trader, {"op": "limits.set", "market": m, "max_liability": "50000.00"})
    await ok(trader, {"op": "limits.set", "user": alice.user, "max_stake": "500.00",
                      "stake_factor": "0.5"})
    await ok(trader, {"op": "prices.set", "market": priced,
                      "prices": {"s1": "2.10", "s2": "3.40", "s3": "3.80"}, "margin": "0.05"})

    await ok(alice, {"op": "catalogue", "status": ["open"], "limit": 1})
    await alice.take("catalogue")
    await ok(alice, {"op": "orders"})
    await ok(alice, {"op": "wallet"})
    await ok(alice, {"op": "subscribe", "markets": [m], "depth": 3})
    await ok(alice, {"op": "pnl", "market": m})
    await ok(ops, {"op": "subscribe", "channel": "exposure"})

    await ok(bob, {"op": "place", "market": m, "selection": "s1", "side": "lay", "price": "2.52",
                   "size": "80.00", "persistence": "persist"})
    await ok(bob, {"op": "place", "market": m, "selection": "s1", "side": "lay", "price": "2.50",
                   "size": "120.00"})
    await ok(alice, {"op": "preview", "market": m, "selection": "s1", "side": "back",
                     "price": "2.50", "size": "100.00"})
    await ok(alice, {"op": "place", "market": m, "selection": "s1", "side": "back",
                     "price": "2.50", "size": "100.00", "ref": unique("ref")})
    order = (await ok(alice, {"op": "place", "market": m, "selection": "s2", "side": "back",
                              "price": "3.40", "size": "10.00"}))["order"]["order"]
    await alice.take("pnl")
    await ok(alice, {"op": "cancel", "order": order, "size_reduction": "4.00"})
    await ok(alice, {"op": "replace", "order": order, "price": "3.50"})
    await ok(alice, {"op": "cancel_all", "market": m})
    await alice.error({"op": "place", "market": m, "selection": "s1", "side": "back",
                       "price": "2.51", "size": "10.00"}, "INVALID_ODDS")  # off the ladder

    await ok(alice, {"op": "slip.set", "legs": [
        {"market": m, "selection": "s1", "side": "back", "stake": "10.00"},
        {"market": m, "selection": "s2", "side": "lay", "stake": "10.00"}]})
    await ok(bob, {"op": "place", "market": m, "selection": "s1", "side": "lay", "price": "2.54",
                   "size": "50.00"})
    await alice.take("slip")
    await ok(alice, {"op": "slip.place", "accept": "exact"})
    await ok(alice, {"op": "slip.place", "accept": "any"})

    await ok(bob, {"op": "place", "market": m, "selection": "s3", "side": "back", "price": "5.00",
                   "size": "10.00"})
    await alice.take("mkt", lambda f: not f.get("img") and "to_lay" in str(f.get("selections")))
    await ops.take("exposure", lambda f: "id" not in f)  # a push, not the first snapshot
    await ok(trader, {"op": "market.status", "market": m, "status": "suspended",
                      "in_play": True, "bet_delay_ms": 100})
    await alice.take("mkt", lambda f: not f.get("img") and "in_play" in f)
    await ok(trader, {"op": "selection.remove", "market": m, "selection": "s3",
                      "reduction_factor": "0.25"})
    await alice.take("mkt", lambda f: not f.get("img") and any(
        s.get("removed") for s in f.get("selections", [])))
    await alice.take("catalogue", lambda f: "reduction_factor" in str(f))

    await ok(ops, {"op": "unsubscribe", "channel": "exposure"})
    cash = unique("m")
    await ok(trader, {"op": "market.create", "market": cash, "event": unique("e"),
                      "name": "Match Odds", "selections": [
                          {"id": s, "name": s.upper()} for s in ("s1", "s2", "s3")]})
    await ok(trader, {"op": "market.status", "market": cash, "status": "open"})
    await ok(bob, {"op": "place", "market": cash, "selection": "s1", "side": "lay",
                   "price": "3.00", "size": "10.00"})
    await ok(alice, {"op": "place", "market": cash, "selection": "s1", "side": "back",
                     "price": "3.00", "size": "10.00"})
    await ok(bob, {"op": "place", "market": cash, "selection": "s1", "side": "back",
                   "price": "2.00", "size": "50.00"})
    await ok(alice, {"op": "place", "market": cash, "selection": "s2", "side": "back",
                     "price": "5.00", "size": "1.00"})
    quote = await ok(alice, {"op": "cashout.quote", "market": cash})
    await ok(alice, {"op": "cashout", "market": cash, "tolerance": 1,
                     "prices": {o["selection"]: o["price"] for o in quote["orders"]}})
    # own limits: read, a lower and a raise (pending), an exclusion that cancels an order
    quitter = await h.bettor("quitter", "100.00")
    await ok(quitter, {"op": "selflimits", "currency": "BDT"})
    await ok(quitter, {"op": "selflimits.set", "daily_stake": "50.00", "weekly_loss": "200.00"})
    await ok(quitter, {"op": "selflimits.set", "daily_stake": "80.00", "weekly_loss": None})
    await ok(quitter, {"op": "place", "market": cash, "selection": "s3", "side": "back",
                       "price": "5.00", "size": "10.00", "persistence": "persist"})
    await ok(quitter, {"op": "selfexclude", "days": 30})
    await ok(alice, {"op": "unsubscribe", "markets": [m]})
    await ok(alice, {"op": "orders"})
    await ok(trader, {"op": "market.settle", "market": priced, "winners": ["s1"]})
    await ok(trader, {"op": "market.void", "market": m})
    await ok(trader, {"op": "market.settle", "market": cash, "winners": ["s1"]})
    await ok(alice, {"op": "wallet", "currency": "USD"})
    await ok(alice, {"op": "statement", "limit": 2})
    await ok(alice, {"op": "cleared", "sort": "oldest", "limit": 2})
    await alice.error({"op": "statement", "cursor": "c1.2"}, "BAD_REQUEST")

    async with asyncio.timeout(10):
        while not anon.heartbeats:
            await asyncio.sleep(0.1)
    return [frame for client in h.clients for frame in client.frames]


def test_documented_replies_and_pushes_have_the_keys_the_server_sends(ws):
    real = shapes_by_group(ws(_exercise_every_op))
    docs = shapes_by_group(ex.data for ex in of_kind("reply", "push"))
    unseen, undocumented = sorted(docs.keys() - real.keys()), sorted(real.keys() - docs.keys())
    assert not unseen, f"documented, but the scenario never produced it (extend it): {unseen}"
    assert not undocumented, f"the server sends these; docs/protocol.md lacks them: {undocumented}"
    problems = {f"{kind} {op}": differences(docs[(kind, op)], real[(kind, op)])
                for kind, op in docs}
    assert not {k: v for k, v in problems.items() if v}


# -- HTTP examples against /openapi.json ---------------------------------------------------------

_JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool,
               "null": type(None)}


def _is(value, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _JSON_TYPES[kind])


def schema_errors(value, schema: dict, root: dict, path: str = "$") -> list[str]:
    """A small JSON-schema check, enough for gateway/openapi.py; unknown keys are errors unless
    the schema allows additional properties explicitly."""
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return schema_errors(value, target, root, path)
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            if any(not schema_errors(value, s, root, path) for s in schema[combinator]):
                return []
            return [f"{path}: matches no alternative of {combinator}"]
    if "const" in schema and value != schema["const"]:
        return [f"{path}: {value!r} is not {schema['const']!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} not in {schema['enum']}"]
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is(value, k) for k in kinds):
            return [f"{path}: {value!r} is not {kinds}"]
    errors = []
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        errors += [f"{path}: missing {k}" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            if k in properties:
                errors += schema_errors(v, properties[k], root, f"{path}.{k}")
            elif "properties" in schema and schema.get("additionalProperties") is not True:
                errors.append(f"{path}: {k} is not in the schema")
    if isinstance(value, list):
        if "prefixItems" in schema:
            for i, (item, sub) in enumerate(zip(value, schema["prefixItems"])):
                errors += schema_errors(item, sub, root, f"{path}[{i}]")
        elif "items" in schema:
            for i, item in enumerate(value):
                errors += schema_errors(item, schema["items"], root, f"{path}[{i}]")
        if len(value) > schema.get("maxItems", len(value)):
            errors.append(f"{path}: more than {schema['maxItems']} items")
    return errors


@pytest.mark.parametrize("example", of_kind("http-request", "http-response"), ids=str)
def test_http_examples_are_valid_against_openapi(example):
    spec = build_openapi()
    words = example.args.split()
    if example.kind == "http-request":
        method, path = words
        operation = spec["paths"][path][method.lower()]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
    else:
        status, method, path = words
        operation = spec["paths"][path][method.lower()]
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
    assert not schema_errors(example.data, schema, spec)


def test_every_http_endpoint_of_openapi_is_documented():
    text = section("HTTP endpoints", 2)
    for path, operations in build_openapi()["paths"].items():
        for method in operations:
            assert f"`{method.upper()} {path}`" in text, f"{method.upper()} {path} undocumented"
