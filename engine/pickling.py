"""Pickling for the compiled state classes, in the layout snapshots have always had.

Wallet, Position, Market and the book classes are extension types (setup.py). Left to itself
Cython pickles them in a layout of its own, and snapshots taken while they were plain slotted
classes would no longer load. These two functions keep the plain-class layout:
(copyreg.__newobj__, (cls,), (None, {slot: value})).
"""

import copyreg


def slot_state(obj) -> tuple:
    cls = type(obj)
    return (copyreg.__newobj__, (cls,),
            (None, {name: getattr(obj, name) for name in cls.__slots__}))


def restore_slots(obj, state: tuple) -> None:
    for name, value in state[1].items():
        setattr(obj, name, value)
