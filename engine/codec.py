"""Commands and events to and from bytes (orjson), for the journal and snapshots.

A record is a JSON array: the class name, then every field's value in declaration order
(`["OrderPlaced", seq, ts, "o7", ...]`). Tuples come back as tuples, so a decoded command is
equal to the original and replay is byte-for-byte. A journal entry holds a whole batch,
encoded in two orjson calls (its commands; its events, one list per command): encoding per
command cost four times as much, in orjson call overhead and in the many small fields Redis
had to pack.

A field added to a command or event after journals were written with it comes last, with a
default, and is listed in ADDED_FIELDS: a record leaves such trailing fields out while they
hold their defaults, so an entry journaled before they existed decodes (they take their
defaults) and re-encodes byte for byte, as the replay check (persistence/recovery.py) needs.

Entries journaled before records were positional hold keyed records, `{"t": <class name>,
field: value, ...}`: about twice the bytes, and building a dict per event took twice as long
as a tuple. They still decode, and `keyed=True` re-encodes in that form, so such a journal
still replays and verifies byte for byte.
"""

from dataclasses import fields

import orjson

from . import commands, events
from .commands import COMMAND_TYPES, CancelOrder, Command, CreateMarket, PlaceOrder
from .commands import RECORD_BUILDERS as COMMAND_RECORD_BUILDERS
from .events import EVENT_TYPES, BetMatched, Event, MarketCreated, OrderPlaced, WalletChanged
from .events import RECORD_BUILDERS as EVENT_RECORD_BUILDERS

# class -> how many of its last fields were added after journals were written with it
ADDED_FIELDS: dict[type, int] = {CreateMarket: 1, MarketCreated: 1}


def _tupled(value):
    if isinstance(value, list):
        return tuple(_tupled(v) for v in value)
    return value


def _generated(cls, source: str, name: str, **namespace):
    namespace = {"_cls": cls, "_tupled": _tupled, **namespace}
    exec(source, namespace)
    return namespace[name]


def _record_builder(cls):
    """A function returning (<name>, field, field, ...) as one tuple display: the journal
    encodes every event of every command, and a getattr loop cost several times as much. The
    order path's commands and events bring compiled ones (RECORD_BUILDERS)."""
    compiled = COMMAND_RECORD_BUILDERS.get(cls) or EVENT_RECORD_BUILDERS.get(cls)
    if compiled is not None:
        return compiled
    return _generic_record_builder(cls)


def _generic_record_builder(cls):
    values = "".join(f", obj.{f.name}" for f in fields(cls))
    build = _generated(cls, f"def build(obj):\n    return ({cls.__name__!r}{values})\n", "build")
    added = _added_defaults(cls)
    if not added:
        return build

    def build_without_defaults(obj):
        record = build(obj)
        for default in added:  # from the last field back, while each holds its default
            if not _is_default(record[-1], default):
                break
            record = record[:-1]
        return record

    return build_without_defaults


def _keyed_builder(cls):
    """The same as a keyed record: {"t": <name>, field: value, ...} (entries of old journals)."""
    items = ", ".join(f"{f.name!r}: obj.{f.name}" for f in fields(cls))
    build = _generated(cls, f"def build(obj):\n    return {{'t': {cls.__name__!r}, {items}}}\n",
                       "build")
    added = _added_defaults(cls)
    if not added:
        return build
    names = [f.name for f in fields(cls)][::-1]

    def build_without_defaults(obj):
        record = build(obj)
        for name, default in zip(names, added):
            if not _is_default(record[name], default):
                break
            del record[name]
        return record

    return build_without_defaults


def _added_defaults(cls) -> list:
    """The defaults of `cls`'s ADDED_FIELDS, last field first."""
    return [f.default for f in fields(cls)[::-1][:ADDED_FIELDS.get(cls, 0)]]


def _is_default(value, default) -> bool:
    return value == default and type(value) is type(default)


def _tuple_fields(cls) -> set[str]:
    """JSON has no tuples: only these fields come back as lists and are made tuples again."""
    return {f.name for f in fields(cls) if "tuple" in str(f.type)}


def _record_maker(cls):
    """A function building `cls` from a positional record, field by field by keyword; a record
    without some of the ADDED_FIELDS leaves them at their defaults."""
    names = [f.name for f in fields(cls)]
    tupled = _tuple_fields(cls)
    args = ", ".join(f"{name}=_tupled(r[{i}])" if name in tupled else f"{name}=r[{i}]"
                     for i, name in enumerate(names, start=1))
    make = _generated(cls, f"def make(r):\n    if len(r) != {len(names) + 1}:\n"
                           f"        raise ValueError(f'{cls.__name__} record has {{len(r) - 1}} "
                           f"fields, not {len(names)}')\n"
                           f"    return _cls({args})\n", "make")
    added = ADDED_FIELDS.get(cls, 0)
    if not added:
        return make
    shortest = len(names) + 1 - added

    def make_without_defaults(r):
        if shortest <= len(r) <= len(names):
            return cls(**{name: _tupled(value) if name in tupled else value
                          for name, value in zip(names, r[1:])})
        return make(r)

    return make_without_defaults


class _Generated(dict):
    """type -> its generated function, made on first use."""

    def __init__(self, make) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, cls):
        fn = self[cls] = self.make(cls)
        return fn


# -- the order path's records, made in C -------------------------------------------------------
# Nearly every record the persister and replay decode is a place, a cancel, an order placed, a
# fill or a wallet change. Compiled, these make one through the field-by-field builders of
# commands.py and events.py, called in C (codec.pxd), instead of the generated maker's keyword
# call, which spends most of its time matching keywords to fields. A record of another length
# goes to the generated maker, which refuses it. tests/test_engine_records.py checks each against
# the generated one.


def _place_order(r):
    if len(r) != 13:
        return _MAKERS[PlaceOrder](r)
    return commands.place_order(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                                r[11], r[12])


def _cancel_order(r):
    if len(r) != 6:
        return _MAKERS[CancelOrder](r)
    return commands.cancel_order(r[1], r[2], r[3], r[4], r[5])


def _order_placed(r):
    if len(r) != 14:
        return _MAKERS[OrderPlaced](r)
    return events.order_placed(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                               r[11], r[12], r[13])


def _bet_matched(r):
    if len(r) != 13:
        return _MAKERS[BetMatched](r)
    return events.bet_matched(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                              r[11], r[12])


def _wallet_changed(r):
    if len(r) != 7:
        return _MAKERS[WalletChanged](r)
    return events.wallet_changed(r[1], r[2], r[3], r[4], r[5], r[6])


RECORD_MAKERS = {PlaceOrder: _place_order, CancelOrder: _cancel_order,
                 OrderPlaced: _order_placed, BetMatched: _bet_matched,
                 WalletChanged: _wallet_changed}

_BUILDERS = _Generated(_record_builder)
# The journal's encoders look every record's builder up in this plain dict, filled for every
# command and event class up front: a lookup in an exact dict is the interpreter's fast path (the
# _Generated subclass is not), and the encoders run once per command and event journaled.
_RECORD_BUILDERS = {cls: _BUILDERS[cls] for cls in (*COMMAND_TYPES.values(), *EVENT_TYPES.values())}
_KEYED_BUILDERS = _Generated(_keyed_builder)
_MAKERS = _Generated(_record_maker)
_TUPLE_FIELDS = _Generated(_tuple_fields)
# The decoders' fast path, by a record's type name, in plain dicts for the same reason: the
# persister and replay decode every command and event of the journal.
_COMMAND_MAKERS = {name: RECORD_MAKERS.get(cls) or _MAKERS[cls]
                   for name, cls in COMMAND_TYPES.items()}
_EVENT_MAKERS = {name: RECORD_MAKERS.get(cls) or _MAKERS[cls] for name, cls in EVENT_TYPES.items()}


def _to_record(obj) -> tuple:
    return _BUILDERS[type(obj)](obj)


def _from_record(types: dict, record):
    if isinstance(record, list):
        if not record or record[0] not in types:
            raise ValueError(f"not a record of a known type: {str(record)[:200]}")
        return _MAKERS[types[record[0]]](record)
    cls = types[record.pop("t")]  # keyed: an entry journaled before records were positional
    for name in _TUPLE_FIELDS[cls]:
        value = record.get(name)
        if isinstance(value, list):
            record[name] = _tupled(value)
    return cls(**record)


def is_keyed(encoded: bytes) -> bool:
    """Whether an encoded array of records (an entry's commands) holds keyed records."""
    return encoded[1:2] == b"{"


def encode_command(cmd: Command) -> bytes:
    return orjson.dumps(_to_record(cmd))


def decode_command(data: bytes | str) -> Command:
    return _from_record(COMMAND_TYPES, orjson.loads(data))


def encode_events(events: list[Event], keyed: bool = False) -> bytes:
    builders = _KEYED_BUILDERS if keyed else _BUILDERS
    return orjson.dumps([builders[type(e)](e) for e in events])


def decode_events(data: bytes | str) -> list[Event]:
    return [_from_record(EVENT_TYPES, r) for r in orjson.loads(data)]


# -- whole batches (a journal entry) ----------------------------------------------------------


def encode_commands(cmds: list[Command]) -> bytes:
    """A JSON array of command records."""
    builders = _RECORD_BUILDERS
    try:
        return orjson.dumps([builders[type(c)](c) for c in cmds])
    except KeyError:  # a class outside the table (a subclass): its generated builder
        builders = _BUILDERS
        return orjson.dumps([builders[type(c)](c) for c in cmds])


def decode_commands(data: bytes | str) -> list[Command]:
    records = orjson.loads(data)
    makers = _COMMAND_MAKERS
    try:
        return [makers[r[0]](r) for r in records]
    except (KeyError, TypeError):  # keyed (old) records, or not a record: the general path
        return [_from_record(COMMAND_TYPES, r) for r in records]


def decode_batch(commands_data: bytes | str, events_data: bytes | str) -> list[tuple]:
    """(seq, command, its events) for each command of a batch, from its commands' and its
    events' arrays (a journal entry's two fields)."""
    cmds = decode_commands(commands_data)
    lists = decode_event_lists(events_data)
    if len(cmds) != len(lists):
        raise ValueError(f"a batch of {len(cmds)} commands with events for {len(lists)}")
    records = []
    for i in range(len(cmds)):
        cmd = cmds[i]
        records.append((cmd.seq, cmd, lists[i]))
    return records


def encode_event_lists(event_lists: list[list[Event]], keyed: bool = False) -> bytes:
    """A JSON array holding, for each command of a batch, the array of its event records
    (keyed ones to compare with an old journal's entry).

    orjson writes ints, strings, bools and nested arrays/objects deterministically, so
    `encode_event_lists(x[k:])` equals `orjson.dumps(orjson.loads(encode_event_lists(x))[k:])`:
    a slice of an entry can be compared byte for byte without decoding its events."""
    if not keyed:
        builders = _RECORD_BUILDERS
        try:
            return orjson.dumps([[builders[type(e)](e) for e in events]
                                 for events in event_lists])
        except KeyError:  # a class outside the table (a subclass): its generated builder
            pass
    builders = _KEYED_BUILDERS if keyed else _BUILDERS
    return orjson.dumps([[builders[type(e)](e) for e in events] for events in event_lists])


def decode_event_lists(data: bytes | str) -> list[list[Event]]:
    lists = orjson.loads(data)
    makers = _EVENT_MAKERS
    try:
        return [[makers[r[0]](r) for r in events] for events in lists]
    except (KeyError, TypeError):  # keyed (old) records, or not a record: the general path
        return [[_from_record(EVENT_TYPES, r) for r in events] for events in lists]
