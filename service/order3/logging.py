"""structlog set-up: key/value events, with secrets dropped before anything is written."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Keys whose values are secrets wherever they appear in an event.
_SECRET_KEYS = frozenset(
    {
        "token",
        "secret",
        "authorization",
        "signing_key",
        "private_key",
        "password",
        "signing_key_pem",
    }
)


def _drop_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in _SECRET_KEYS.intersection(event):
        event[key] = "[redacted]"
    return event


def _stderr_logger(*_: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    """Send structlog events to stderr as console lines or JSON."""
    # Tracebacks are rendered as plain text: the fancy renderers show local variables, and
    # locals can hold request headers with tokens in them.
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_stderr_logger,
        # Uncached, so each event goes to whatever stderr is now (tests redirect it).
        cache_logger_on_first_use=False,
    )
