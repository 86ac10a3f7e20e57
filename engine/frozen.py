"""A faster __init__ for the frozen, slotted, keyword-only dataclasses of commands and events.

A frozen dataclass's generated __init__ goes through object.__setattr__ for every field, which
costs about twice as much as writing through the slot descriptors; commands and events are
built on the matching, journal and replay hot paths. Semantics are unchanged: instances stay
frozen (assignment raises), and eq/hash/repr remain the dataclass's.
"""

from dataclasses import MISSING, fields


def fast_init(cls):
    params = []
    namespace = {}
    body = []
    for f in fields(cls):
        if f.default_factory is not MISSING:  # not used by commands or events: keep it simple
            raise TypeError(f"{cls.__name__}.{f.name}: default_factory is not supported")
        if f.default is MISSING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        namespace[f"_set_{f.name}"] = getattr(cls, f.name).__set__
        body.append(f"    _set_{f.name}(self, {f.name})\n")
    source = f"def __init__(self, *, {', '.join(params)}):\n" + ("".join(body) or "    pass\n")
    exec(source, namespace)
    cls.__init__ = namespace["__init__"]
    return cls
