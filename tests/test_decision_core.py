"""The decisions benchmark's yardstick, the decision core, decides what the service decided
and seals its decisions into the same verifiable chain, so the gap the benchmark prints is
the draft workflow's own cost and not a shortcut."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from order3.audit.verify import ChainVerifier
from order3.config import Settings
from order3.storage.repositories import stream_audit_records
from support.api import Api
from support.benchmarks import load_benchmark


def decided(api: Api) -> list[dict[str, Any]]:
    """The decisions the service recorded, oldest first."""
    return [
        item["record"]
        for item in reversed(api.audit())
        if item["record"]["decision"] and item["record"]["decision"]["result"]
    ]


def test_the_decision_core_decides_as_the_service_did_and_the_chain_verifies(
    api: Api, settings: Settings
) -> None:
    draft = api.submitted("sam")
    assert api.approve("sam", draft, "manager").status_code == 403  # the requester's own
    assert api.approve("mia", draft, "manager").status_code == 200
    recorded = decided(api)
    assert [r["outcome"] for r in recorded] == ["allowed", "denied", "allowed"]

    with TestClient(load_benchmark("decision_core").create_app(settings)) as core:
        answers = [core.post("/decide", json={"input": r["decision"]["input"]}) for r in recorded]
        services = core.app.state.services

        async def verify() -> tuple[int, str | None]:
            verifier = ChainVerifier({services.key.key_id: services.key.public_key})
            async for record in stream_audit_records(services.db):
                if not verifier.feed(record):
                    break
            return verifier.report().records, verifier.failure

        verified, failure = core.blocking_portal.call(verify)

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["outcome"] for a in answers] == [r["outcome"] for r in recorded]
    sequence = [a.json()["seq"] for a in answers]
    assert sequence == sorted(sequence)
    assert sequence[0] > max(r["seq"] for r in recorded)
    assert failure is None
    assert verified == sequence[-1]
