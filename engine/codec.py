"""Commands and events to and from bytes (orjson), for the journal and snapshots.

A record is `{"t": <class name>, ...fields}`; tuples come back as tuples so a decoded command is
equal to the original and replay is byte-for-byte.
"""

from dataclasses import fields

import orjson

from .commands import COMMAND_TYPES, Command
from .events import EVENT_TYPES, Event


def _tupled(value):
    if isinstance(value, list):
        return tuple(_tupled(v) for v in value)
    return value


_ENCODERS: dict[type, object] = {}


def _to_record(obj) -> dict:
    cls = type(obj)
    encoder = _ENCODERS.get(cls)
    if encoder is None:
        encoder = _ENCODERS[cls] = _record_builder(cls)
    return encoder(obj)


def _record_builder(cls):
    """A function returning {"t": <name>, field: value, ...} as one dict display: the journal
    encodes every event of every command, and a getattr loop cost several times as much."""
    items = ", ".join(f"{f.name!r}: obj.{f.name}" for f in fields(cls))
    namespace: dict = {}
    exec(f"def build(obj):\n    return {{'t': {cls.__name__!r}, {items}}}\n", namespace)
    return namespace["build"]


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
