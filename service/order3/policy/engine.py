"""Asking OPA for decisions, and knowing which policy revision answered.

A policy revision is a hash over the sorted sources of the policy modules and the policy data
under ``data.settings`` (see `order3.policy.revisions`). Where it comes from depends on how
OPA loaded its policies:

- **From the service's bundle** (the supervised OPA, and sidecars configured as in
  ``deploy/``): the bundle's manifest revision is that hash, and OPA reports it in
  ``provenance.bundles`` of every answer, because every query asks for ``provenance=true``.
  Each decision records the revision OPA reports *for that evaluation*. A decision under a
  revision that is not stored (and whose content cannot be read back from OPA to be stored)
  fails closed: it could never be re-run.
- **From a directory** (an OPA an operator started with ``opa run <dir>``): OPA reports no
  bundle. The engine then hashes what OPA reports at ``/v1/policies`` and under
  ``data.settings`` itself, when it starts and every refresh interval, and decisions record
  that. Such a label can lag a change made to that OPA by up to one refresh interval.

A revision the engine has not seen before is handed to ``keep_revision`` (the service stores it)
before any decision names it. Until that succeeds, decisions of a directory-loaded OPA name no
revision at all (``unknown``) rather than one that could not be re-run.
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
from order3.policy.bundles import BUNDLE_NAME
from order3.policy.revisions import PolicyRevision, RevisionContent

log = structlog.get_logger(__name__)

DECISION_PACKAGE = "order3"
DECISION_RULE = "decision"
SETTINGS_PATH = "settings"

KeepRevision = Callable[[PolicyRevision], Awaitable[object]]
"""Stores a revision the engine has just seen; raises when it could not."""
IsKept = Callable[[str], Awaitable[bool]]
"""Tells whether a revision id is stored already (the bundle server stores each revision it
serves before OPA can load it)."""
_PROVENANCE = {"provenance": "true"}


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
        is_kept: IsKept | None = None,
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
        self._is_kept = is_kept
        self._kept: set[str] = set()
        self.revision: str | None = None
        self.engine = "opa"
        self.from_bundle = False
        """Whether OPA reported its policies as coming from a bundle at the last refresh."""

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
        """Read the revision OPA has loaded: the bundle revision it reports, or, for policies
        loaded from a directory, the hash of the modules and data it reports.

        Raises:
            RuntimeError: OPA reports a bundle revision that is neither stored nor the hash of
                what it serves, so no decision may name it.
        """
        loaded, reported = await self._read_loaded()
        revision = reported or loaded.revision
        if reported is None or reported == loaded.revision:
            await self._keep(loaded)
        elif not await self._stored(reported):
            self.revision = None
            raise RuntimeError(f"OPA reports policy revision {reported}, which is not stored")
        if revision != self.revision or loaded.engine != self.engine:
            log.info(
                "policy.revision_loaded",
                revision=revision,
                engine=loaded.engine,
                bundle=reported is not None,
                modules=len(loaded.content.modules),
            )
        self.revision, self.engine = revision, loaded.engine
        self.from_bundle = reported is not None
        return revision

    async def _read_loaded(self) -> tuple[PolicyRevision, str | None]:
        """What OPA has loaded, hashed here, and the bundle revision it reports, if any."""
        async with asyncio.timeout(self._timeout * 4):
            sources = []
            for policy_id in await self._client.get_policies_list():
                sources.append((await self._client.get_policy(policy_id))["result"]["raw"])
            settings = await self._client.get_data(SETTINGS_PATH, _PROVENANCE)
        provenance = settings.get("provenance") or {}
        version = provenance.get("version")
        engine = f"opa/{version}" if version else "opa"
        # Module ids are file paths, which differ between machines; the sources do not.
        loaded = PolicyRevision.of(RevisionContent.of(sources, settings.get("result")), engine)
        return loaded, bundle_revision(provenance)

    async def _stored(self, revision: str) -> bool:
        if revision in self._kept:
            return True
        if self._is_kept is not None and await self._is_kept(revision):
            self._kept.add(revision)
            return True
        return False

    async def _answering_revision(self, provenance: dict[str, Any]) -> str | None:
        """The revision a decision records, or None when it must fail closed.

        For a bundle, the revision OPA reports with the answer: stored already, or stored now
        if what OPA serves hashes to it. For a directory, the revision of the last refresh.
        """
        reported = bundle_revision(provenance)
        if reported is None:
            return self.revision or "unknown"
        if await self._stored(reported):
            return reported
        try:
            await self.refresh_revision()
        except Exception as exc:
            log.warning("policy.revision_unavailable", url=self.url, error=repr(exc))
        return reported if reported in self._kept else None

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
                # `bundles`: not healthy until every configured bundle is activated.
                return bool(await self._client.check_health({"bundles": "true"}))
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
        provenance = answer.get("provenance") or {}
        reported = bundle_revision(provenance)
        if "result" not in answer:
            raise self._failure(action, decision_input, "the decision is undefined", reported)
        revision = await self._answering_revision(provenance)
        if revision is None:
            raise self._failure(
                action,
                decision_input,
                f"OPA decided under policy revision {reported}, which is not stored, so the "
                "decision could never be re-run",
                reported,
            )
        try:
            result = parse_result(answer["result"])
        except ValueError as exc:
            raise self._failure(action, decision_input, str(exc), reported) from None
        version = provenance.get("version")
        decision = Decision(
            action=action,
            input=decision_input,
            result=result,
            engine=f"opa/{version}" if version else self.engine,
            policy_revision=revision,
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
                    decision_input, DECISION_PACKAGE, DECISION_RULE, _PROVENANCE
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

    def _failure(
        self,
        action: Action,
        decision_input: dict[str, Any],
        reason: str,
        reported: str | None = None,
    ) -> EngineFailed:
        log.warning("policy.failed", action=str(action), reason=reason, url=self.url)
        return EngineFailed(
            EngineFailure(
                action=action,
                input=decision_input,
                reason=reason,
                engine=self.engine,
                policy_revision=reported or self.revision,
            )
        )


def bundle_revision(provenance: dict[str, Any]) -> str | None:
    """The revision of the service's bundle in an answer's ``provenance``, if OPA loaded one.

    OPA lists every bundle it has activated under ``provenance.bundles``; a sole bundle by
    another name counts too (an operator may name it differently in OPA's configuration).
    """
    bundles = provenance.get("bundles") or {}
    chosen = bundles.get(BUNDLE_NAME) or (next(iter(bundles.values())) if len(bundles) == 1 else {})
    revision = chosen.get("revision") if isinstance(chosen, dict) else None
    return revision if isinstance(revision, str) and revision else None
