"""Throwaway servers for the test suite and the benchmark: a PostgreSQL cluster, an
operator-run OPA, and `order3 serve` processes."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from order3.policy.binary import find_opa
from order3.policy.supervisor import free_loopback_port, opa_environment

POSTGRES_URL_ENV = "ORDER3_TEST_POSTGRES_URL"
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TAIL_BYTES = 3000


def free_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago."""
    return free_loopback_port("127.0.0.1")


def libpq_url(url: str) -> str:
    """Turn a SQLAlchemy ``postgresql+psycopg://`` URL into one psycopg/libpq accepts."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=parts.scheme.split("+", 1)[0]))


class PostgresServer:
    """A PostgreSQL server for the suite: ``$ORDER3_TEST_POSTGRES_URL``, or a temp cluster.

    The temp cluster uses trust auth on 127.0.0.1 and a unix socket in its temp dir, with
    ``fsync=off`` (a crash loses nothing the suite needs) and ``max_connections=200``.
    """

    def __init__(self) -> None:
        self._url: str | None = None
        self._bindir: Path | None = None
        self._root: Path | None = None

    @staticmethod
    def available() -> bool:
        """Tell whether `start()` can work: the env URL is set or server binaries exist."""
        return bool(os.environ.get(POSTGRES_URL_ENV)) or _postgres_bindir() is not None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database."""
        if self._url is None:
            raise RuntimeError("PostgresServer is not started")
        return self._url

    def start(self) -> None:
        """Use the env URL, or create and start a temp cluster.

        Raises:
            RuntimeError: No env URL and no PostgreSQL server binaries, or the cluster failed.
        """
        external = os.environ.get(POSTGRES_URL_ENV)
        if external:
            self._url = external
            return
        bindir = _postgres_bindir()
        if bindir is None:
            raise RuntimeError(
                f"No PostgreSQL for the tests: set {POSTGRES_URL_ENV} to a "
                "postgresql+psycopg:// URL, or install the server (apt-get install postgresql)."
            )
        self._bindir = bindir
        self._root = Path(tempfile.mkdtemp(prefix="order3-pg-"))
        _give_to_postgres(self._root)
        try:
            port = self._init_and_start()
        except BaseException:
            self.stop()
            raise
        self._url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        if not _DATABASE_NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        with psycopg.connect(libpq_url(self.url), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return urlunsplit(urlsplit(self.url)._replace(path=f"/{name}"))

    def over_unix_socket(self, url: str) -> str:
        """``url`` rewritten to reach this temp cluster through its Unix socket, which costs
        both ends less CPU per statement than loopback TCP. An env URL is returned as is."""
        if self._root is None:
            return url
        parts = urlsplit(url)
        query = f"host={self._root}&port={parts.port}"
        user = f"{parts.username}@" if parts.username else ""
        return urlunsplit(parts._replace(netloc=user, query=query))

    def stop(self) -> None:
        """Stop and delete the temp cluster (nothing to do for an env URL). Idempotent."""
        root, self._root = self._root, None
        self._url = None
        if root is None:
            return
        try:
            if (root / "data" / "postmaster.pid").exists():
                self._pg_ctl(root, "stop", "-m", "fast", "-w")
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _init_and_start(self) -> int:
        assert self._root is not None
        assert self._bindir is not None
        data = self._root / "data"
        initdb = [str(self._bindir / "initdb"), "-D", str(data), "-U", "postgres"]
        _run_as_postgres([*initdb, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"])
        port = free_port()
        options = f"-p {port} -h 127.0.0.1 -k {self._root} -c fsync=off -c max_connections=200"
        self._pg_ctl(self._root, "start", "-w", "-t", "60", "-l", str(self._log()), "-o", options)
        return port

    def _pg_ctl(self, root: Path, *args: str) -> None:
        assert self._bindir is not None
        try:
            _run_as_postgres([str(self._bindir / "pg_ctl"), "-D", str(root / "data"), *args])
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\nserver log tail:\n{_tail(self._log(root))}") from None

    def _log(self, root: Path | None = None) -> Path:
        base = root or self._root
        assert base is not None
        return base / "server.log"


class OpaServer:
    """An OPA started like an operator would, outside the service (external mode)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._log_path: Path | None = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("OpaServer is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def start(self, policy_dir: Path, timeout: float = 15.0) -> None:
        """Run ``opa run --server`` on a free loopback port and wait until it is healthy.

        Raises:
            RuntimeError: No OPA binary, or OPA exited or stayed unhealthy (with its log tail).
        """
        binary = find_opa()
        if binary is None:
            raise RuntimeError("No OPA binary for the tests: run `order3 opa install`")
        self._port = free_port()
        fd, log_name = tempfile.mkstemp(prefix="order3-opa-", suffix=".log")
        self._log_path = Path(log_name)
        argv = [str(binary), "run", "--server", "--addr", f"127.0.0.1:{self._port}"]
        argv += [
            "--skip-version-check",
            "--log-level",
            "error",
            "--set",
            "decision_logs.console=true",
        ]
        # schema.json describes the policy data; loaded, it would merge into data.settings.
        argv += ["--ignore", "*_test.rego", "--ignore", "schema.json", str(policy_dir)]
        with os.fdopen(fd, "wb") as log:
            self._process = subprocess.Popen(
                argv,
                env=opa_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_healthy(timeout)
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        """Terminate OPA (kill after 5s) and delete its log. Idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_healthy(self, timeout: float) -> None:
        assert self._process is not None
        assert self._log_path is not None
        deadline = time.monotonic() + timeout
        while not _http_ok(f"{self.url}/health"):
            if self._process.poll() is not None:
                failure = f"exited with code {self._process.returncode}"
            elif time.monotonic() >= deadline:
                failure = f"was not healthy within {timeout}s"
            else:
                time.sleep(0.05)
                continue
            raise RuntimeError(f"OPA on {self.url} {failure}:\n{_tail(self._log_path)}")


def _postgres_bindir() -> Path | None:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    installed = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted((Path(p) for p in installed), key=_major_version, reverse=True)
    return next((c for c in candidates if (c / "initdb").is_file()), None)


def _major_version(bindir: Path) -> int:
    version = bindir.parent.name
    return int(version) if version.isdigit() else -1


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _give_to_postgres(path: Path) -> None:
    # initdb and postgres refuse to run as root, so root hands the cluster to `postgres`.
    if _as_root():
        shutil.chown(path, user="postgres", group="postgres")


def _run_as_postgres(argv: list[str]) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if _as_root() else []
    result = subprocess.run(
        prefix + argv, capture_output=True, text=True, check=False, cwd=tempfile.gettempdir()
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-_TAIL_BYTES:].strip()
        raise RuntimeError(f"{Path(argv[0]).name} failed (exit {result.returncode}):\n{output}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 - loopback http
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - _TAIL_BYTES))
            return log.read().decode(errors="replace").rstrip()
    except OSError:
        return f"(no log at {path})"


ORDER3 = Path(sys.executable).parent / "order3"


@contextlib.contextmanager
def order3_services(
    env: dict[str, str], count: int = 1, command: list[str] | None = None
) -> Iterator[list[str]]:
    """``count`` separate ``order3 serve`` processes with ``env``; yields their base URLs.

    ``command`` runs another server instead; it is given ``--port N`` and must answer
    ``GET /healthz``.

    Raises:
        RuntimeError: A process exited or did not become healthy (with its output).
    """
    processes: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    try:
        for _ in range(count):
            port = free_port()
            log_path = Path(tempfile.mkstemp(prefix="order3-serve-", suffix=".log")[1])
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [*(command or [str(ORDER3), "serve"]), "--port", str(port)],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            processes.append((f"http://127.0.0.1:{port}", process, log_path))
        for base, process, log_path in processes:
            _wait_for_service(base, process, log_path)
        yield [base for base, _, _ in processes]
    finally:
        for _, process, _ in processes:
            process.terminate()
        for _, process, log_path in processes:
            process.wait(timeout=30)
            log_path.unlink(missing_ok=True)


def _wait_for_service(base: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while not _http_ok(f"{base}/healthz"):
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{_tail(log_path)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server was not healthy within 60 s:\n{_tail(log_path)}")
        time.sleep(0.1)
