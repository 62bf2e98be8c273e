"""Locating, and when needed building, the Open Policy Agent binary.

Lookup order: ``ORDER3_OPA_BINARY``, then ``opa`` on PATH, then ``<tools dir>/opa``.
Building uses ``go install`` of the pinned OPA module into the tools dir.

The pin is the newest OPA version the Go module proxy serves here (v1.23.0 is refused).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import structlog

PINNED_OPA_VERSION = "v1.22.4"  # newest the Go module proxy here serves; v1.23.0 is not
OPA_MODULE = "github.com/open-policy-agent/opa"

_REPO_ROOT = Path(__file__).resolve().parents[3]
_STDERR_TAIL_CHARS = 2000

_log = structlog.get_logger(__name__)


class OpaUnavailable(RuntimeError):
    """No usable OPA binary could be found or built."""


def default_tools_dir() -> Path:
    """Return where repo-local tools live: ``$ORDER3_TOOLS_DIR`` or ``<repo>/.tools/bin``."""
    override = os.environ.get("ORDER3_TOOLS_DIR")
    return Path(override) if override else _REPO_ROOT / ".tools" / "bin"


def find_opa(tools_dir: Path | None = None) -> Path | None:
    """Return an executable OPA binary, or None when there is none.

    Args:
        tools_dir: Directory holding a repo-local ``opa``; defaults to `default_tools_dir()`.

    Returns:
        ``$ORDER3_OPA_BINARY`` when set (None if it is not executable: an explicit choice is
        never silently replaced), else ``opa`` on PATH, else ``tools_dir/opa``.
    """
    explicit = os.environ.get("ORDER3_OPA_BINARY")
    if explicit:
        path = Path(explicit)
        return path if _is_executable(path) else None
    on_path = shutil.which("opa")
    if on_path:
        return Path(on_path)
    local = (tools_dir or default_tools_dir()) / "opa"
    return local if _is_executable(local) else None


def install_opa(tools_dir: Path) -> Path:
    """Build the pinned OPA with ``go install`` into ``tools_dir``.

    Returns:
        The path of the built binary, ``tools_dir/opa``.

    Raises:
        OpaUnavailable: ``go`` is not on PATH, or the build failed (with the stderr tail).
    """
    go = shutil.which("go")
    if go is None:
        raise OpaUnavailable(_how_to_get_opa(tools_dir, reason="Go is not installed"))
    tools_dir = tools_dir.resolve()
    tools_dir.mkdir(parents=True, exist_ok=True)
    target = f"{OPA_MODULE}@{PINNED_OPA_VERSION}"
    env = {**os.environ, "GOBIN": str(tools_dir), "CGO_ENABLED": "0"}
    _log.info("opa.build_started", target=target, tools_dir=str(tools_dir))
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [go, "install", target], env=env, capture_output=True, text=True, check=False
    )
    binary = tools_dir / "opa"
    if result.returncode != 0 or not _is_executable(binary):
        tail = result.stderr[-_STDERR_TAIL_CHARS:].strip()
        raise OpaUnavailable(f"`go install {target}` failed (exit {result.returncode}):\n{tail}")
    _log.info("opa.build_finished", binary=str(binary))
    return binary


def ensure_opa(tools_dir: Path | None = None, *, build: bool = True) -> Path:
    """Return a usable OPA binary, building the pinned version when Go is available.

    Args:
        tools_dir: Directory for the repo-local binary; defaults to `default_tools_dir()`.
        build: Whether a missing binary may be built with Go.

    Raises:
        OpaUnavailable: Nothing found and nothing could be built; the message says what to do.
    """
    tools_dir = tools_dir or default_tools_dir()
    explicit = os.environ.get("ORDER3_OPA_BINARY")
    if explicit and not _is_executable(Path(explicit)):
        raise OpaUnavailable(f"ORDER3_OPA_BINARY={explicit} is not an executable file")
    found = find_opa(tools_dir)
    if found is not None:
        return found
    if build and shutil.which("go") is not None:
        return install_opa(tools_dir)
    reason = "building was not allowed" if build is False else "Go is not installed"
    raise OpaUnavailable(_how_to_get_opa(tools_dir, reason=reason))


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _how_to_get_opa(tools_dir: Path, *, reason: str) -> str:
    return (
        f"No OPA binary found (looked at $ORDER3_OPA_BINARY, PATH and {tools_dir / 'opa'}), "
        f"and it could not be built: {reason}. Do one of:\n"
        f"  - install Go (https://go.dev/dl/) and re-run `order3 opa install`, which builds "
        f"OPA {PINNED_OPA_VERSION} into {tools_dir};\n"
        "  - put an `opa` v1.x binary on PATH "
        "(https://www.openpolicyagent.org/docs/#running-opa);\n"
        "  - set ORDER3_OPA_BINARY to the path of an `opa` v1.x binary."
    )
