"""Builds the one compiled part: the command and event dataclasses (engine/commands.py and
engine/events.py, plain Python source that Cython turns into extension types; see events.py
for why). Everything else is in pyproject.toml."""

import hashlib
import json
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCES = ["engine/commands.py", "engine/events.py"]
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
        Path(BUILT_FROM).write_text(json.dumps({p: digest(p) for p in SOURCES}, indent=1) + "\n")


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
