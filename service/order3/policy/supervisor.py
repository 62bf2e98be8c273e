"""Running an OPA server on loopback for the service, and restarting it when it dies.

OPA runs with console decision logs on: that setting is what makes it return a
``decision_id`` with every answer, which the audit trail records. Its output goes to a log
file that the supervisor keeps bounded: once the file outgrows its limit, it is copied to
``<name>.1`` (replacing the older copy) and emptied in place, while OPA keeps appending to
it. Lines OPA writes during that copy are lost; the audit trail, not this log, is the record
of every decision.

The service starts it with a configuration file that makes it download the signed policy
bundle from the service, as a sidecar does (see `order3.policy.bundle_server`); it counts as
ready only once that bundle is activated (``/health?bundles``), so it never answers with no
policies loaded. Given a policy directory instead, it loads that directory, which the tests of
the supervisor itself use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import structlog

_INITIAL_BACKOFF = 0.2
_MAX_BACKOFF = 5.0
# A process that stayed up this long crashed for a new reason: start backing off afresh.
_STABLE_UPTIME = 30.0
_STOP_GRACE = 5.0
_PROBE_TIMEOUT = 1.0
_POLL_INTERVAL = 0.05
_READ_CHUNK = 65536
_TAIL_BYTES = 4000
LOG_LIMIT_BYTES = 64 * 1024 * 1024
"""How large OPA's log file grows before it is rotated; two files at most are kept."""
_LOG_CHECK_INTERVAL = 10.0
OPA_GOGC = "400"
"""Go's collector target for OPA, unless GOGC is set already. OPA allocates afresh for every
decision; collecting at four times the live heap rather than twice spends a few more
megabytes and about a quarter less CPU per decision (docs/benchmarks.md)."""


def opa_environment() -> dict[str, str]:
    """The environment to run OPA in: this one, with `OPA_GOGC` unless GOGC is set."""
    return {"GOGC": OPA_GOGC, **os.environ}


_log = structlog.get_logger(__name__)


class OpaStartError(RuntimeError):
    """OPA exited or did not become healthy in time."""


async def wait_healthy(url: str, timeout: float) -> None:  # noqa: ASYNC109 - polling deadline
    """Wait until ``GET <url>/health`` answers 200.

    Raises:
        TimeoutError: It did not within ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await _is_healthy(url):
        if loop.time() >= deadline:
            raise TimeoutError(f"OPA at {url} was not healthy within {timeout}s")
        await asyncio.sleep(_POLL_INTERVAL)


def free_loopback_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on ``host`` a moment ago."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class OpaSupervisor:
    """One OPA server process on a fixed loopback port, restarted with backoff if it dies.

    Output goes to ``log_path`` (appended, and rotated past ``log_limit`` bytes) when given;
    otherwise only the last lines are kept in memory, for error messages.
    """

    def __init__(
        self,
        binary: Path,
        policy_dir: Path | None = None,
        *,
        config_file: Path | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: Path | None = None,
        log_limit: int = LOG_LIMIT_BYTES,
        log_check_interval: float = _LOG_CHECK_INTERVAL,
    ) -> None:
        if (policy_dir is None) == (config_file is None):
            raise ValueError("give OPA either a policy directory or a configuration file")
        self._binary = binary
        self._policy_dir = policy_dir
        self._config_file = config_file
        self._host = host
        self._port = port if port is not None else free_loopback_port(host)
        self._log_path = log_path
        self._log_limit = log_limit
        self._log_check_interval = log_check_interval
        self._rotation: asyncio.Task[None] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._tail = bytearray()
        self._drain: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False
        self._restarts = 0
        self._ready_timeout = 15.0
        self._backoff = _INITIAL_BACKOFF
        self._up_since = 0.0

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._address()}"

    @property
    def pid(self) -> int | None:
        """The running process id, or None when OPA is not running."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    @property
    def restarts(self) -> int:
        return self._restarts

    async def start(self, timeout: float = 15.0) -> None:  # noqa: ASYNC109 - polling deadline
        """Start OPA, wait until it is healthy, then watch it.

        Raises:
            OpaStartError: OPA exited or was not healthy within ``timeout``; includes its output.
            RuntimeError: Already started.
        """
        if self._watch is not None:
            raise RuntimeError("OPA supervisor already started")
        self._stopping = False
        self._ready_timeout = timeout
        await self._spawn()
        await self._await_ready(timeout)
        _log.info("opa.started", pid=self.pid, port=self._port, url=self.url)
        self._watch = asyncio.create_task(self._watch_loop(), name="opa-supervisor")
        if self._log_path is not None:
            self._rotation = asyncio.create_task(self._rotation_loop(), name="opa-log-rotation")

    async def stop(self) -> None:
        """Stop watching and terminate OPA (killing it after a grace period). Idempotent."""
        self._stopping = True
        for task in (self._watch, self._rotation):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._watch = self._rotation = None
        await self._terminate()

    async def _spawn(self) -> None:
        log_file = self._open_log()
        try:
            process = await asyncio.create_subprocess_exec(
                str(self._binary),
                *self._arguments(),
                stdin=subprocess.DEVNULL,
                env=opa_environment(),
                stdout=subprocess.PIPE if log_file is None else log_file,
                stderr=subprocess.STDOUT,
            )
        finally:
            if log_file is not None:
                log_file.close()
        self._process = process
        self._up_since = asyncio.get_running_loop().time()
        if process.stdout is not None:
            self._drain = asyncio.create_task(self._drain_output(process.stdout))

    def _arguments(self) -> list[str]:
        if self._config_file is not None:
            source = ["--config-file", str(self._config_file)]
        else:
            assert self._policy_dir is not None
            # Policy tests are for `opa test`; they do not belong in the deciding policy set.
            source = ["--ignore", "*_test.rego", "--ignore", "schema.json", str(self._policy_dir)]
        return [
            "run",
            "--server",
            "--addr",
            self._address(),
            # Replaces the deprecated --disable-telemetry flag in OPA v1.
            "--skip-version-check",
            "--log-level",
            "error",
            "--set",
            "decision_logs.console=true",
            *source,
        ]

    def _address(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{self._port}"

    def _open_log(self) -> IO[bytes] | None:
        self._tail.clear()
        if self._log_path is None:
            return None
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        return self._log_path.open("ab")

    async def _drain_output(self, stream: asyncio.StreamReader) -> None:
        # Chunks, not lines: a decision log line can exceed the reader's line limit, and a
        # drain that stops would leave OPA blocked on a full pipe.
        while chunk := await stream.read(_READ_CHUNK):
            self._tail += chunk
            del self._tail[:-_TAIL_BYTES]

    async def _await_ready(self, within: float) -> None:
        process = self._process
        assert process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not await _is_healthy(self.url, bundles=self._config_file is not None):
            if process.returncode is not None:
                await self._finish_drain()
                raise OpaStartError(self._failure(f"exited with code {process.returncode}"))
            if loop.time() >= deadline:
                await self._terminate()
                raise OpaStartError(self._failure(f"was not healthy within {within}s"))
            await asyncio.sleep(_POLL_INTERVAL)

    def _failure(self, what: str) -> str:
        where = f"OPA ({self._binary}) on {self._address()}"
        return f"{where} {what}. Output tail:\n{self._tail_text()}"

    def _tail_text(self) -> str:
        if self._log_path is None:
            return self._tail.decode(errors="replace").rstrip() or "(no output)"
        with contextlib.suppress(OSError), self._log_path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - _TAIL_BYTES))
            return log.read().decode(errors="replace").rstrip()
        return f"(could not read {self._log_path})"

    async def _watch_loop(self) -> None:
        while True:
            process = self._process
            assert process is not None
            returncode = await process.wait()
            await self._finish_drain()
            if self._stopping:
                return
            _log.warning("opa.exited", pid=process.pid, port=self._port, returncode=returncode)
            await self._restart_until_ready()

    async def _rotation_loop(self) -> None:
        assert self._log_path is not None
        while True:
            await asyncio.sleep(self._log_check_interval)
            try:
                rotated = await asyncio.to_thread(_rotate_log, self._log_path, self._log_limit)
            except OSError as exc:
                _log.warning("opa.log_rotation_failed", path=str(self._log_path), error=str(exc))
                continue
            if rotated:
                _log.info("opa.log_rotated", path=str(self._log_path), bytes=rotated)

    async def _restart_until_ready(self) -> None:
        while True:
            await asyncio.sleep(self._next_backoff())
            try:
                await self._spawn()
                await self._await_ready(self._ready_timeout)
            except (OSError, OpaStartError) as exc:
                _log.error("opa.restart_failed", port=self._port, error=str(exc))
                continue
            self._restarts += 1
            _log.info("opa.restarted", pid=self.pid, port=self._port, restarts=self._restarts)
            return

    def _next_backoff(self) -> float:
        if asyncio.get_running_loop().time() - self._up_since >= _STABLE_UPTIME:
            self._backoff = _INITIAL_BACKOFF
        delay = self._backoff
        self._backoff = min(self._backoff * 2, _MAX_BACKOFF)
        return delay

    async def _terminate(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), _STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
            _log.info(
                "opa.stopped", pid=process.pid, port=self._port, returncode=process.returncode
            )
        await self._finish_drain()

    async def _finish_drain(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await drain


def _rotate_log(path: Path, limit: int) -> int:
    """Copy ``path`` to ``<name>.1`` and empty it, if it is over ``limit`` bytes; return the
    bytes moved, or 0.

    The writer keeps its descriptor: it opened the file for appending, so its next line lands
    at the start of the emptied file. A rename would leave it writing to the old copy.
    """
    if not path.exists() or path.stat().st_size <= limit:
        return 0
    rotated = path.with_name(path.name + ".1")
    with path.open("r+b") as current, rotated.open("wb") as copy:
        shutil.copyfileobj(current, copy)
        moved = current.tell()
        current.truncate(0)
    return moved


async def _is_healthy(url: str, *, bundles: bool = False) -> bool:
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if https else 80)
    # With `bundles`, OPA answers 200 only once every configured bundle is activated.
    path = parts.path.rstrip("/") + ("/health?bundles" if bundles else "/health")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=https), _PROBE_TIMEOUT
        )
    except (OSError, TimeoutError):
        return False
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
        writer.write(request.encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), _PROBE_TIMEOUT)
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    fields = status_line.split()
    return len(fields) >= 2 and fields[1] == b"200"
