"""Serving the policy bundle to the OPA the service supervises, on loopback.

The supervised OPA loads its policies the way a sidecar does: it downloads the signed bundle
over OPA's bundle protocol and verifies it with the configured key. It does not download it
from the service's public port, for two reasons. The server binds that port only after the
service has started, and the service starts its OPA while starting, so OPA would begin with
nothing to load; and an in-process client (the test client) has no port at all. So the
process serves the same bundle here, from the same `PolicyDataWorkflow`, on a loopback port
of its own that is open before OPA starts.

Anyone on the host can reach a loopback port, so requests must carry a bearer token made
fresh for each start and handed to OPA only in its configuration file (mode 0600).
"""

from __future__ import annotations

import hmac
import secrets
import socket
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from order3.policy.bundles import BUNDLE_PATH, SignedBundle

log = structlog.get_logger(__name__)

BundleSource = Callable[[], Awaitable[SignedBundle]]


def bundle_answer(bundle: SignedBundle, if_none_match: str | None) -> tuple[int, dict[str, str]]:
    """The status and headers of an answer to a bundle download (the body is the archive
    unless the status is 304)."""
    headers = {"ETag": bundle.etag, "Cache-Control": "no-cache"}
    if bundle.matches(if_none_match):
        return 304, headers
    return 200, {**headers, "Content-Type": "application/gzip"}


class LoopbackBundleServer:
    """An HTTP server on ``127.0.0.1`` that answers only ``GET`` of the bundle path."""

    def __init__(self, source: BundleSource, host: str = "127.0.0.1") -> None:
        self._source = source
        self._host = host
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self.token = secrets.token_urlsafe(32)

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the bundle server is not started")
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(BUNDLE_PATH, self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self._host, 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        log.info("bundle.server_started", url=self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _download(self, request: web.Request) -> web.StreamResponse:
        offered = request.headers.get("Authorization", "")
        if not hmac.compare_digest(offered.encode(), f"Bearer {self.token}".encode()):
            return web.Response(status=401, text="a bearer token is required")
        try:
            bundle = await self._source()
        except Exception as exc:  # OPA keeps what it has and asks again on its next poll
            log.warning("bundle.unavailable", error=repr(exc))
            return web.Response(status=503, text="the bundle could not be built")
        status, headers = bundle_answer(bundle, request.headers.get("If-None-Match"))
        return web.Response(
            status=status, headers=headers, body=bundle.archive if status == 200 else None
        )
