"""The engine's compiled modules run as the build of their current source and declarations
(setup.py): commands and events are frozen, slotted, keyword-only dataclasses, built several times
faster than interpreted ones, and the order path runs typed. A stale build would silently run old
field lists or old rules, and the uncompiled fallback is the slow path the benchmarks do not
measure, so both fail here."""

import dataclasses
import gc
import hashlib
import importlib
import importlib.machinery
import json
from pathlib import Path

import pytest

from engine import codec
from engine import commands as c
from engine import events as e

ROOT = Path(__file__).resolve().parent.parent
RECORD_TYPES = [*c.COMMAND_TYPES.values(), *e.EVENT_TYPES.values()]


COMPILED = [*(f"engine.{name}" for name in ("commands", "events", "money", "wallet", "exposure",
                                             "order", "book", "market", "user_risk", "engine")),
            "risk.rules", "risk.self_limits", "gateway.order_json", "engine.codec",
            "persistence.fold"]


@pytest.mark.parametrize("name", COMPILED)
def test_the_module_is_the_compiled_build_of_its_current_source(name):
    module = importlib.import_module(name)
    built = Path(module.__file__)
    assert built.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), (
        f"{module.__name__} runs from {built.name}, uncompiled: `pip install -e .` builds it")
    built_from = json.loads((ROOT / "engine" / "compiled-from.json").read_text())  # setup.py
    path = name.replace(".", "/")
    for source in (f"{path}.py", f"{path}.pxd"):
        if not (ROOT / source).exists():
            assert source not in built_from
            continue
        current = hashlib.sha256((ROOT / source).read_bytes()).hexdigest()
        assert built_from.get(source) == current, (
            f"{built.name} was built from another {source}: rebuild with `pip install -e .`")


def _sample(cls):
    return cls(**{f.name: f"{f.name}-value" for f in dataclasses.fields(cls)})


@pytest.mark.parametrize("cls", RECORD_TYPES, ids=lambda cls: cls.__name__)
def test_every_command_and_event_is_a_frozen_slotted_keyword_only_dataclass(cls):
    names = [f.name for f in dataclasses.fields(cls)]
    assert names[:2] == ["seq", "ts"]
    record = _sample(cls)
    assert not hasattr(record, "__dict__")
    for name in names:
        with pytest.raises(AttributeError):
            setattr(record, name, "changed")
        assert getattr(record, name) == f"{name}-value"
    with pytest.raises(TypeError):
        cls(*(f"{name}-value" for name in names))
    assert record == _sample(cls) and hash(record) == hash(_sample(cls))
    assert dataclasses.replace(record, seq=7) != record
    assert dataclasses.replace(record, seq=7).seq == 7


def test_stamping_copies_every_field_but_seq_and_ts():
    cmd = c.PlaceOrder(user="u", market="m", selection="s", side="lay", price=250,
                       size_minor=500, persistence="persist", tif="fok", min_fill_minor=100,
                       ref="r")
    stamped = c.stamped(cmd, 41, 1_700_000_000_041)
    assert (stamped.seq, stamped.ts) == (41, 1_700_000_000_041)
    assert dataclasses.replace(stamped, seq=0, ts=0) == cmd


def _declared(pxd: str) -> dict[str, list[str]]:
    """class name -> its own fields, as engine/<module>.pxd declares them."""
    declared: dict[str, list[str]] = {}
    current = None
    for line in (ROOT / "engine" / pxd).read_text().splitlines():
        if line.startswith("cdef class "):
            current = declared.setdefault(line[len("cdef class "):].split("(")[0].rstrip(":"), [])
        elif line.strip().startswith("cdef readonly object ") and current is not None:
            current += [n.strip() for n in line.split("object ", 1)[1].split(",")]
    return declared


@pytest.mark.parametrize("module", [c, e], ids=lambda m: m.__name__)
def test_the_declared_fields_are_the_dataclass_fields(module):
    """commands.pxd and events.pxd repeat fields for compiled code: a field added to a class
    and not to its declaration, or the other way round, fails here instead of building a
    record with a field missing."""
    declared = _declared(module.__name__.rsplit(".", 1)[1] + ".pxd")
    assert declared, "nothing declared"
    for name, own in declared.items():
        cls = getattr(module, name)
        parent = cls.__mro__[1]
        inherited = {f.name for f in dataclasses.fields(parent)} if parent is not object else set()
        assert own == [f.name for f in dataclasses.fields(cls) if f.name not in inherited], name


@pytest.mark.parametrize("build, cls", [(e.order_placed, e.OrderPlaced),
                                        (e.bet_matched, e.BetMatched),
                                        (e.wallet_changed, e.WalletChanged),
                                        (c.place_order, c.PlaceOrder),
                                        (c.cancel_order, c.CancelOrder)],
                         ids=lambda x: getattr(x, "__name__", ""))
def test_an_order_path_builder_makes_the_keyword_built_event(build, cls):
    """The field-by-field builders (the engine's, the stampers' and the codec's) must give
    exactly the event or command the dataclass builds: every field set, equal, same hash, still
    frozen."""
    values = {f.name: f"{f.name}-value" for f in dataclasses.fields(cls)}
    built = build(**values)
    assert type(built) is cls
    assert built == cls(**values) and hash(built) == hash(cls(**values))
    assert [getattr(built, name) for name in values] == list(values.values())
    with pytest.raises(AttributeError):
        built.seq = 1


def _samples():
    """One instance of every command and event type, every field a distinct value."""
    for cls in RECORD_TYPES:
        yield cls(**{f.name: f"{f.name}-value" for f in dataclasses.fields(cls)})


@pytest.mark.parametrize("record", list(_samples()), ids=lambda r: type(r).__name__)
def test_every_record_builder_gives_the_generic_record(record):
    """The compiled record builders of the order path's commands and events (RECORD_BUILDERS)
    write exactly what the codec's generic builder does: the class name, then every field."""
    assert codec._to_record(record) == codec._generic_record_builder(type(record))(record)
    assert codec._to_record(record) == (type(record).__name__, *(
        getattr(record, f.name) for f in dataclasses.fields(record)))


@pytest.mark.parametrize("cls", list(codec.RECORD_MAKERS), ids=lambda cls: cls.__name__)
def test_every_record_maker_makes_what_the_generated_one_does(cls):
    """The codec's makers of the order path's records (RECORD_MAKERS, which its decoders use)
    make exactly what the generated maker does from a record, and refuse a record of another
    length as it does."""
    record = list(codec._to_record(_sample(cls)))
    fast, generated = codec.RECORD_MAKERS[cls], codec._record_maker(cls)
    made = fast(record)
    assert type(made) is cls and made == generated(record) == _sample(cls)
    assert not codec._tuple_fields(cls)  # no field a decoded list would have to become a tuple
    for wrong in (record[:-1], [*record, "extra"]):
        with pytest.raises(ValueError) as refused:
            fast(wrong)
        with pytest.raises(ValueError) as generated_refused:
            generated(wrong)
        assert str(refused.value) == str(generated_refused.value)
    decoders = codec._COMMAND_MAKERS if issubclass(cls, c.Command) else codec._EVENT_MAKERS
    assert decoders[cls.__name__] is fast


@pytest.mark.parametrize("cmd", [
    c.PlaceOrder(user="u", market="m", selection="s", side="lay", price=250, size_minor=500,
                 persistence="persist", tif="fok", min_fill_minor=100, ref="r"),
    c.CancelOrder(user="u", order="o7", size_reduction_minor=300),
    c.Deposit(user="u", currency="BDT", amount_minor=100, ref="pay")],
    ids=lambda cmd: type(cmd).__name__)
def test_every_stamper_copies_every_field_but_seq_and_ts(cmd):
    stamped = c.stamped(cmd, 41, 1_700_000_000_041)
    assert type(stamped) is type(cmd) and (stamped.seq, stamped.ts) == (41, 1_700_000_000_041)
    assert dataclasses.replace(stamped, seq=0, ts=0) == cmd


@pytest.mark.parametrize("record", list(_samples()), ids=lambda r: type(r).__name__)
def test_no_command_or_event_is_tracked_by_the_cyclic_collector(record):
    """They hold strings, numbers and tuples only, so they cannot be in a cycle; untracked,
    the sequencer's young generation is mostly futures (see events.py)."""
    assert not gc.is_tracked(record)
