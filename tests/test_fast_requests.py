"""The order ops' shortcut (gateway/fast_requests.py) says yes exactly where the pydantic models
(and the op's own checks) say yes, with the same engine command; everything else goes to the
models for their error."""

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway import protocol as p
from gateway.fast_requests import order_command
from gateway.ops import ORDER_COMMANDS, OpError

MODELS = {"place": p.Place, "cancel": p.Cancel, "replace": p.Replace}
USER = "u1"

ids = st.one_of(st.sampled_from(["m1", "s-1", "a.b:c_d", "x" * 64]),
                st.text(alphabet="ab-:._9Z", min_size=1, max_size=70))
bad_ids = st.one_of(st.sampled_from(["", "x" * 65, "a b", "é", "m1\n", "\nm1"]),
                    st.integers(), st.none(), st.booleans(), st.lists(st.just("m1")))
amounts = st.one_of(
    st.sampled_from(["2.52", "2.5", "2", "0", "0.00", "1000", "10.50", "007", "1.", ".5",
                     "2.521", "-1", "1e2", " 2", "2 ", "", "1_000", "１", "9999999999999",
                     "99999999999999", "0.1"]),
    st.from_regex(r"[0-9]{1,3}(\.[0-9]{0,3})?", fullmatch=True),
    st.integers(), st.floats(allow_nan=False), st.none(), st.booleans())
request_ids = st.one_of(st.integers(min_value=-2**63, max_value=2**63 - 1), st.text(max_size=5),
                        st.none(), st.booleans(), st.floats(allow_nan=False), st.lists(st.just(1)))


def anything(good):
    return st.one_of(good, bad_ids, amounts)


good_ids = st.one_of(st.sampled_from(["m1", "s-1", "a.b:c_d", "x" * 64]),
                     st.from_regex(r"[A-Za-z0-9_.:\-]{1,64}", fullmatch=True))
good_amounts = st.one_of(st.sampled_from(["2.52", "2.5", "2", "0", "10.50", "1000"]),
                         st.from_regex(r"(0|[1-9][0-9]{0,5})(\.[0-9]{1,2})?", fullmatch=True))
GOOD = {
    "id": st.one_of(st.integers(min_value=-2**63, max_value=2**63 - 1), st.text(max_size=5),
                    st.none()),
    "market": good_ids, "selection": good_ids, "order": good_ids,
    "side": st.sampled_from(["back", "lay"]), "price": good_amounts, "size": good_amounts,
    "min_fill": st.one_of(st.none(), good_amounts),
    "size_reduction": st.one_of(st.none(), good_amounts),
    "persistence": st.sampled_from(["lapse", "persist"]), "tif": st.sampled_from(["gtc", "fok"]),
    "ref": st.one_of(st.none(), st.text(max_size=64), st.just("r" * 64)),
}
ANY = {
    "id": request_ids,
    "market": anything(ids), "selection": anything(ids), "order": anything(ids),
    "side": anything(st.sampled_from(["back", "lay", "BACK", "b"])),
    "price": amounts, "size": amounts, "min_fill": amounts, "size_reduction": amounts,
    "persistence": anything(st.sampled_from(["lapse", "persist", "Lapse"])),
    "tif": anything(st.sampled_from(["gtc", "fok", "ioc"])),
    "ref": st.one_of(st.none(), st.text(max_size=5), st.sampled_from(["r" * 64, "r" * 65]),
                     st.integers()),
    "extra": st.integers(), "user": st.just("someone-else"),
}
SHAPES = {"place": (["market", "selection", "side", "price", "size"],
                    ["id", "persistence", "tif", "min_fill", "ref"]),
          "cancel": (["order"], ["id", "size_reduction"]),
          "replace": (["order", "price"], ["id"])}


@st.composite
def frames(draw) -> dict:
    """A well-formed order frame (or another op's), then up to two things wrong with it."""
    op = draw(st.sampled_from(["place", "cancel", "replace", "preview", "Place", 1]))
    required, optional = SHAPES.get(op, (["market"], ["id"]))
    frame = {"op": op}
    for name in required + draw(st.lists(st.sampled_from(optional), unique=True)):
        frame[name] = draw(GOOD.get(name, ANY[name]))
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(sorted(ANY)))
        if name in frame and draw(st.booleans()):
            del frame[name]
        else:
            frame[name] = draw(ANY[name])
    return frame


def by_the_model(frame: dict):
    """(request id, command) as the op builds it from its model, or None if refused."""
    model = MODELS.get(frame["op"]) if isinstance(frame["op"], str) else None
    if model is None:
        return None
    try:
        req = model.model_validate(frame)
        return req.id, ORDER_COMMANDS[model](USER, req)
    except (ValidationError, OpError):
        return None


BASE_PLACE = {"op": "place", "market": "m1", "selection": "s1", "side": "back",
              "price": "2.52", "size": "10.00"}


@settings(max_examples=3000, deadline=None)
@given(frames())
@example({**BASE_PLACE, "ref": "r" * 65})
@example({**BASE_PLACE, "market": "x" * 65})
@example({**BASE_PLACE, "selection": ""})
@example({**BASE_PLACE, "side": "BACK"})
@example({**BASE_PLACE, "min_fill": "0.001"})
@example({**BASE_PLACE, "id": True})
@example({"op": "cancel", "order": "o1", "size_reduction": 4})
def test_the_shortcut_takes_exactly_the_frames_the_models_take_with_equal_values(frame):
    # the frame as it arrives: JSON round trip (orjson has no float/int ambiguity to lose)
    try:
        frame = orjson.loads(orjson.dumps(frame))
    except orjson.JSONEncodeError:  # an int orjson cannot write: never on the wire
        return
    fast = order_command(frame, USER)
    if fast is not None:
        assert fast == by_the_model(frame), frame
    else:
        assert by_the_model(frame) is None, frame


@pytest.mark.parametrize("frame", [
    {"op": "place", "id": 1, "market": "m1", "selection": "s1", "side": "back",
     "price": "2.52", "size": "10.00"},
    {"op": "place", "id": "a", "market": "m1", "selection": "s1", "side": "lay", "price": "3",
     "size": "5", "persistence": "persist", "tif": "fok", "min_fill": "2.50", "ref": "r-1"},
    {"op": "cancel", "id": 2, "order": "o17"},
    {"op": "cancel", "id": 2, "order": "o17", "size_reduction": "4.00"},
    {"op": "replace", "id": 3, "order": "o17", "price": "2.60"},
])
def test_the_usual_order_frames_take_the_shortcut(frame):
    fast = order_command(frame, USER)
    assert fast is not None and fast == by_the_model(frame)


@pytest.mark.parametrize("frame", [
    {"op": "place", "market": "m1", "selection": "s1", "side": "back", "price": "2.521",
     "size": "10.00"},
    {"op": "place", "market": "m1", "selection": "s1", "side": "back", "price": "2.52",
     "size": 10},
    {"op": "cancel", "order": "o1", "user": "someone-else"},
    {"op": "replace", "order": "o1", "price": "2.60", "id": True},
    {"op": "cancel", "order": "o1", "size_reduction": "0.00"},  # the op's own INVALID_SIZE
    {"op": "orders"},
])
def test_frames_the_shortcut_leaves_to_the_models(frame):
    assert order_command(frame, USER) is None
