"""Builds the one compiled part: the command and event dataclasses (engine/commands.py and
engine/events.py, plain Python source that Cython turns into extension types; see events.py
for why). Everything else is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

# -g0: the generated module-init functions are huge, and with debug info gcc took two minutes
# per module instead of fifteen seconds
FLAGS = ["-O2", "-g0"]

setup(
    ext_modules=cythonize(
        [Extension(f"engine.{name}", [f"engine/{name}.py"], extra_compile_args=FLAGS)
         for name in ("commands", "events")],
        language_level=3,
        # the annotations document the fields; typed C attributes would change what a field
        # accepts (a list where a tuple is annotated, a bool where an int is)
        compiler_directives={"annotation_typing": False},
    ),
)
