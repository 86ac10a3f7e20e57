"""Commands and events to and from bytes (orjson), for the journal and snapshots.

A record is `{"t": <class name>, ...fields}`; tuples come back as tuples so a decoded command is
equal to the original and replay is byte-for-byte. A journal entry holds a whole batch, encoded
in two orjson calls (its commands; its events, one list per command): encoding per command cost
four times as much, in orjson call overhead and in the many small fields Redis had to pack.
"""

from dataclasses import fields

import orjson

from .commands import COMMAND_TYPES, Command
from .events import EVENT_TYPES, Event


def _tupled(value):
    if isinstance(value, list):
        return tuple(_tupled(v) for v in value)
    return value


def _record_builder(cls):
    """A function returning {"t": <name>, field: value, ...} as one dict display: the journal
    encodes every event of every command, and a getattr loop cost several times as much."""
    items = ", ".join(f"{f.name!r}: obj.{f.name}" for f in fields(cls))
    namespace: dict = {}
    exec(f"def build(obj):\n    return {{'t': {cls.__name__!r}, {items}}}\n", namespace)
    return namespace["build"]


class _Builders(dict):
    """type -> its record builder, made on first use."""

    def __missing__(self, cls):
        builder = self[cls] = _record_builder(cls)
        return builder


_BUILDERS = _Builders()


def _to_record(obj) -> dict:
    return _BUILDERS[type(obj)](obj)


_TUPLE_FIELDS: dict[type, tuple[str, ...]] = {}


def _from_record(types: dict, record: dict):
    cls = types[record.pop("t")]
    names = _TUPLE_FIELDS.get(cls)
    if names is None:  # JSON has no tuples: only these fields come back as lists
        names = _TUPLE_FIELDS[cls] = tuple(f.name for f in fields(cls) if "tuple" in str(f.type))
    for name in names:
        value = record.get(name)
        if isinstance(value, list):
            record[name] = _tupled(value)
    return cls(**record)


def encode_command(cmd: Command) -> bytes:
    return orjson.dumps(_to_record(cmd))


def decode_command(data: bytes | str) -> Command:
    return _from_record(COMMAND_TYPES, orjson.loads(data))


def encode_events(events: list[Event]) -> bytes:
    return orjson.dumps([_to_record(e) for e in events])


def decode_events(data: bytes | str) -> list[Event]:
    return [_from_record(EVENT_TYPES, r) for r in orjson.loads(data)]


# -- whole batches (a journal entry) ----------------------------------------------------------


def encode_commands(cmds: list[Command]) -> bytes:
    """A JSON array of command records."""
    builders = _BUILDERS
    return orjson.dumps([builders[type(c)](c) for c in cmds])


def decode_commands(data: bytes | str) -> list[Command]:
    return [_from_record(COMMAND_TYPES, r) for r in orjson.loads(data)]


def encode_event_lists(event_lists: list[list[Event]]) -> bytes:
    """A JSON array holding, for each command of a batch, the array of its event records.

    orjson writes ints, strings, bools and nested arrays/objects deterministically, so
    `encode_event_lists(x[k:])` equals `orjson.dumps(orjson.loads(encode_event_lists(x))[k:])`:
    a slice of an entry can be compared byte for byte without decoding its events."""
    builders = _BUILDERS
    return orjson.dumps([[builders[type(e)](e) for e in events] for events in event_lists])


def decode_event_lists(data: bytes | str) -> list[list[Event]]:
    return [[_from_record(EVENT_TYPES, r) for r in events] for events in orjson.loads(data)]
