"""Builds the compiled part of the engine: the command and event dataclasses, and the order
path (engine, book, order, exposure, wallet, market, money, user_risk, risk/rules and
risk/self_limits), the gateway's ORDER renderer (gateway/order_json.py, every order
reply), the server's per-request code around the engine (a frame's reader and validation, the
session's framing, the sequencer, the journal's encoding), and the persister's per-command work
(engine/codec.py's decoding, persistence/fold.py).
They stay plain Python source; Cython turns the classes into extension types, and the
`.pxd` file next to a module gives its attributes and hot locals C types (see
engine/engine.pxd for why). Everything else is in pyproject.toml."""

import hashlib
import json
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCES = [f"engine/{name}.py" for name in ("commands", "events", "money", "wallet", "exposure",
                                             "order", "book", "market", "user_risk", "engine")]
SOURCES += ["risk/rules.py", "risk/self_limits.py", "gateway/order_json.py"]
# the persister's per-command work: decoding journal entries and folding their events into rows
SOURCES += ["engine/codec.py", "persistence/fold.py"]
# the server's per-request code around the engine, compiled as it is: a frame's reader, rate
# limit and validation, its session's framing, the sequencer and the journal's encoding, and
# the ops with their replies.
# In-process order path under callgrind: 113,342 -> 109,839 instructions per order (the
# reader's three modules -1,660, the sequencer and journal -2,089; hub, ops and exchange
# compiled gave nothing and stay interpreted). The validation of place and cancel frames, the
# reader and the session have .pxd files of their own since (gateway/fast_requests.pxd:
# 101,060 -> 93,769; gateway/connection.pxd: -> 90,310; gateway/session.pxd: 88,857 -> 86,664),
# and ops.py is compiled with its replies as extension types (gateway/ops.pxd: -> 82,848), and
# metrics.py with its ack histogram (gateway/metrics.pxd: 81,937 -> 80,575) and the picows
# server's frame listener as it is (outside that bench: it is the sockets' side)
SOURCES += ["gateway/fast_requests.py", "gateway/connection.py", "gateway/session.py",
            "persistence/sequencer.py", "persistence/journal.py", "gateway/ops.py",
            "gateway/metrics.py", "gateway/ws_picows.py"]
# a module's .pxd declares its C types: a change to it changes the build as much as the source
DECLARATIONS = [p[:-3] + ".pxd" for p in SOURCES if Path(p[:-3] + ".pxd").exists()]
# What the compiled modules were built from, by content: tests/test_engine_records.py fails
# when a source no longer matches its build (modification times also change on a checkout).
BUILT_FROM = "engine/compiled-from.json"
# -g0: the generated module-init functions are huge, and with debug info gcc took two minutes
# per module instead of fifteen seconds
FLAGS = ["-O2", "-g0"]


def digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class BuildAndRecord(build_ext):
    def run(self) -> None:
        super().run()
        built = {p: digest(p) for p in SOURCES + DECLARATIONS}
        Path(BUILT_FROM).write_text(json.dumps(built, indent=1) + "\n")


setup(
    cmdclass={"build_ext": BuildAndRecord},
    ext_modules=cythonize(
        [Extension(p.removesuffix(".py").replace("/", "."), [p], extra_compile_args=FLAGS)
         for p in SOURCES],
        language_level=3,
        # the annotations document the fields; typed C attributes would change what a field
        # accepts (a list where a tuple is annotated, a bool where an int is)
        compiler_directives={"annotation_typing": False},
    ),
)
