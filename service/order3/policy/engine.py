"""Asking OPA for decisions, and knowing which policy revision answered.

The policy revision is a hash over what OPA has loaded: the sorted sources of the policy
modules it reports at ``/v1/policies`` and the policy data under ``data.settings`` (see
`order3.policy.revisions`). It is read when the engine starts and refreshed in the background,
so a sidecar whose policies change is noticed within one refresh interval.

A revision the engine has not seen before is handed to ``keep_revision`` (the service stores it)
before any decision names it. Until that succeeds, decisions name no revision at all
(``unknown``) rather than one that could not be re-run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog
from opa_client.opa_async import AsyncOpaClient

from order3.domain.decisions import Action, Decision, EngineFailure, parse_result
from order3.policy.revisions import PolicyRevision, RevisionContent

log = structlog.get_logger(__name__)

DECISION_PACKAGE = "order3"
DECISION_RULE = "decision"
SETTINGS_PATH = "settings"

KeepRevision = Callable[[PolicyRevision], Awaitable[object]]
"""Stores a revision the engine has just seen; raises when it could not."""


class EngineFailed(Exception):
    """OPA gave no usable result; the action must be refused."""

    def __init__(self, failure: EngineFailure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


class PolicyEngine:
    """Evaluates ``data.order3.decision`` on an OPA server."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 2.0,
        refresh_interval: float = 10.0,
        keep_revision: KeepRevision | None = None,
    ) -> None:
        parts = urlsplit(url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
        ):
            raise ValueError(f"the OPA URL must look like http://host:port, not {url!r}")
        secure = parts.scheme == "https"
        self.url = url
        self._client = AsyncOpaClient(
            host=parts.hostname,
            port=parts.port or (443 if secure else 80),
            ssl=secure,
            retries=0,
            timeout=timeout,
        )
        self._timeout = timeout
        self._refresh_interval = refresh_interval
        self._refresher: asyncio.Task[None] | None = None
        self._keep_revision = keep_revision
        self._kept: set[str] = set()
        self.revision: str | None = None
        self.engine = "opa"

    async def start(self) -> None:
        await self._client.__aenter__()
        try:
            await self.refresh_revision()
        except Exception as exc:  # serve anyway: decisions fail closed until OPA answers
            log.warning("policy.revision_unavailable", url=self.url, error=repr(exc))
        self._refresher = asyncio.create_task(self._refresh_forever(), name="policy-revision")

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        await self._client.close_connection()

    async def refresh_revision(self) -> str:
        """Recompute the revision from the modules and data OPA has loaded."""
        async with asyncio.timeout(self._timeout * 4):
            sources = []
            for policy_id in await self._client.get_policies_list():
                sources.append((await self._client.get_policy(policy_id))["result"]["raw"])
            settings = await self._client.get_data(SETTINGS_PATH, {"provenance": True})
        version = settings.get("provenance", {}).get("version")
        engine = f"opa/{version}" if version else "opa"
        # Module ids are file paths, which differ between machines; the sources do not.
        loaded = PolicyRevision.of(RevisionContent.of(sources, settings.get("result")), engine)
        revision = loaded.revision
        await self._keep(loaded)
        if revision != self.revision or engine != self.engine:
            log.info(
                "policy.revision_loaded", revision=revision, engine=engine, modules=len(sources)
            )
        self.revision, self.engine = revision, engine
        return revision

    async def _keep(self, loaded: PolicyRevision) -> None:
        if loaded.revision in self._kept or self._keep_revision is None:
            return
        try:
            await self._keep_revision(loaded)
        except Exception:
            # OPA already decides under the new policies; naming the old revision would be
            # wrong and naming the new one would point at content nobody kept.
            self.revision = None
            raise
        self._kept.add(loaded.revision)
        log.info("policy.revision_kept", revision=loaded.revision, engine=loaded.engine)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_interval)
            try:
                await self.refresh_revision()
            except Exception as exc:
                log.warning("policy.revision_unavailable", url=self.url, error=repr(exc))

    async def healthy(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                return bool(await self._client.check_health())
        except Exception:
            return False

    async def decide(self, action: Action, decision_input: dict[str, Any]) -> Decision:
        """Evaluate one decision.

        Raises:
            EngineFailed: OPA unreachable, timed out, erred, or answered with an undefined
                or malformed result. The caller must refuse the action.
        """
        started = time.perf_counter()
        answer = await self._query(action, decision_input)
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        if "result" not in answer:
            raise self._failure(action, decision_input, "the decision is undefined")
        try:
            result = parse_result(answer["result"])
        except ValueError as exc:
            raise self._failure(action, decision_input, str(exc)) from None
        decision = Decision(
            action=action,
            input=decision_input,
            result=result,
            engine=self.engine,
            policy_revision=self.revision or "unknown",
            decision_id=answer.get("decision_id"),
            duration_ms=duration_ms,
        )
        log.info(
            "policy.decided",
            action=str(action),
            outcome=result.outcome,
            rules=result.rules,
            decision_id=decision.decision_id,
            duration_ms=duration_ms,
        )
        return decision

    async def _query(self, action: Action, decision_input: dict[str, Any]) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._timeout):
                answer = await self._client.query_rule(
                    decision_input, DECISION_PACKAGE, DECISION_RULE
                )
        except TimeoutError:
            raise self._failure(
                action, decision_input, f"no answer within {self._timeout} s"
            ) from None
        except aiohttp.ClientResponseError as exc:
            raise self._failure(action, decision_input, f"OPA answered {exc.status}") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise self._failure(action, decision_input, f"OPA unreachable: {exc!r}") from None
        if not isinstance(answer, dict):
            raise self._failure(action, decision_input, "OPA answered with no JSON object")
        return answer

    def _failure(self, action: Action, decision_input: dict[str, Any], reason: str) -> EngineFailed:
        log.warning("policy.failed", action=str(action), reason=reason, url=self.url)
        return EngineFailed(
            EngineFailure(
                action=action,
                input=decision_input,
                reason=reason,
                engine=self.engine,
                policy_revision=self.revision,
            )
        )
