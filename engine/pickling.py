"""Pickling for the compiled state classes, in the layout snapshots have always had.

Wallet, Position, Market, the book classes, the user risk state and the limit records are
extension types (setup.py). Left to itself Cython pickles them in a layout of its own, and
snapshots taken while they were plain slotted classes (or slotted dataclasses) would no longer
load. These two functions keep that layout: (copyreg.__newobj__, (cls,), (None, {slot: value})).
"""

import copyreg
import dataclasses


def slot_state(obj) -> tuple:
    cls = type(obj)
    # a compiled dataclass has its fields and no __slots__ (defaults and slots would clash
    # when the same source runs uncompiled)
    names = (cls.__slots__ if hasattr(cls, "__slots__")
             else [f.name for f in dataclasses.fields(cls)])
    return (copyreg.__newobj__, (cls,), (None, {name: getattr(obj, name) for name in names}))


def restore_slots(obj, state: tuple) -> None:
    for name, value in state[1].items():
        setattr(obj, name, value)
