"""The persister's fold runs compiled (persistence/fold.py with fold.pxd, setup.py): it must fold
exactly as its source does interpreted, and hand write_changes the same rows."""

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

from bench.workload import order_stream
from engine.config import EngineConfig
from engine.engine import Engine
from persistence import fold, readmodel

SOURCE = Path(fold.__file__).resolve().parent / "fold.py"


@pytest.fixture(scope="module")
def interpreted():
    """fold.py's source, run by the interpreter as a module of its own."""
    spec = importlib.util.spec_from_file_location("persistence.fold_interpreted", SOURCE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def _as_values(changes) -> dict:
    """Every field of a Changes, its rows as their tuples (the two modules' row classes differ)."""
    values = {}
    for f in dataclasses.fields(changes):
        value = getattr(changes, f.name)
        if f.name in ("orders", "order_deltas"):
            value = {k: dataclasses.astuple(row) for k, row in value.items()}
        values[f.name] = value
    return values


@pytest.mark.parametrize("batch", [1, 7, 1_000_000], ids=lambda n: f"batches of {n}")
def test_the_compiled_fold_folds_as_its_source(interpreted, engine_records, trading_commands,
                                               batch):
    """A trading day (every kind of event) and a stream of orders, folded in batches: rows
    first seen in a batch, and changes to rows of earlier batches (order deltas)."""
    _, day = engine_records(trading_commands)
    engine = Engine(EngineConfig(velocity_orders_max=0))
    stream = [(cmd.seq, cmd, engine.apply(cmd)) for cmd in order_stream(2_000, markets=3,
                                                                        users=20)]
    for records in (day, stream):
        for i in range(0, len(records), batch):
            compiled = fold.fold(records[i:i + batch])
            source = interpreted.fold(records[i:i + batch])
            assert type(compiled) is fold.Changes and type(source) is interpreted.Changes
            assert _as_values(compiled) == _as_values(source)


def test_a_rows_tuple_is_its_fields_in_the_tables_order():
    row = fold.OrderRow(*(f"{name}-value" for name in readmodel._ORDER_COLUMNS))
    assert [f.name for f in dataclasses.fields(row)] == list(readmodel._ORDER_COLUMNS)
    assert row.astuple() == dataclasses.astuple(row)
    delta = fold.OrderDelta(*(f"{f.name}-value" for f in dataclasses.fields(fold.OrderDelta)))
    assert delta.astuple() == dataclasses.astuple(delta)
