"""The engine's compiled modules run as the build of their current source and declarations
(setup.py): commands and events are frozen, slotted, keyword-only dataclasses, built several times
faster than interpreted ones, and the order path runs typed. A stale build would silently run old
field lists or old rules, and the uncompiled fallback is the slow path the benchmarks do not
measure, so both fail here."""

import dataclasses
import hashlib
import importlib
import importlib.machinery
import json
from pathlib import Path

import pytest

from engine import commands as c
from engine import events as e

ROOT = Path(__file__).resolve().parent.parent
RECORD_TYPES = [*c.COMMAND_TYPES.values(), *e.EVENT_TYPES.values()]


COMPILED = ["commands", "events", "money", "wallet", "exposure", "order", "book", "market",
            "engine"]


@pytest.mark.parametrize("name", COMPILED)
def test_the_module_is_the_compiled_build_of_its_current_source(name):
    module = importlib.import_module(f"engine.{name}")
    built = Path(module.__file__)
    assert built.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), (
        f"{module.__name__} runs from {built.name}, uncompiled: `pip install -e .` builds it")
    built_from = json.loads((ROOT / "engine" / "compiled-from.json").read_text())  # setup.py
    for source in (f"engine/{name}.py", f"engine/{name}.pxd"):
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
