"""Masked decision inputs: configured fields reach the log only as keyed hashes, and the
records still verify."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient

from conftest import create_workspace
from order3.audit.canonical import canonical_json
from order3.audit.masking import DecisionMasker, parse_pointer
from order3.audit.verify import ChainVerifier
from order3.config import Settings
from order3.http.app import create_app
from order3.runtime import load_masker
from order3.storage.repositories import stream_audit_records
from support.api import Api, purchase_order

KEY = b"test masking key"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


def _hmac(value: Any) -> str:
    return "hmac-sha256:" + hmac.new(KEY, canonical_json(value), hashlib.sha256).hexdigest()


def test_named_and_wildcard_fields_are_replaced_by_keyed_hashes() -> None:
    masker = DecisionMasker(["/draft/payload/bank", "/draft/payload/lines/*/sku"], KEY)
    decision = {
        "input": {
            "draft": {
                "payload": {
                    "bank": {"iban": "DE89370400440532013000"},
                    "lines": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}],
                }
            }
        },
        "rules": ["r"],
    }

    masked = masker.mask(decision)

    payload = masked["input"]["draft"]["payload"]
    assert payload["bank"] == _hmac({"iban": "DE89370400440532013000"})
    assert [line["sku"] for line in payload["lines"]] == [_hmac("A"), _hmac("B")]
    assert [line["quantity"] for line in payload["lines"]] == [1, 2]
    assert masked["masked"] == [
        "/draft/payload/bank",
        "/draft/payload/lines/0/sku",
        "/draft/payload/lines/1/sku",
    ]
    assert decision["input"]["draft"]["payload"]["bank"] == {"iban": "DE89370400440532013000"}


def test_an_input_without_the_fields_is_left_alone() -> None:
    decision = {"input": {"draft": {"payload": {}}}, "rules": []}

    assert DecisionMasker(["/draft/payload/bank"], KEY).mask(decision) is decision


@pytest.mark.parametrize("pointer", ["draft/payload", "/a/~2b", ""])
def test_a_malformed_pointer_is_refused(pointer: str) -> None:
    with pytest.raises(ValueError, match=r"pointer|~"):
        parse_pointer(pointer)


def test_a_malformed_setting_names_the_setting(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path, audit_mask_fields="draft/payload")

    with pytest.raises(ValueError, match="ORDER3_AUDIT_MASK_FIELDS"):
        load_masker(settings)


@given(secret=json_values, other=json_values)
def test_masking_hides_the_value_and_keeps_everything_else(secret: Any, other: Any) -> None:
    masker = DecisionMasker(["/secret"], KEY)
    decision = {"input": {"secret": secret, "other": other}}

    masked = masker.mask(decision)

    if secret is None:
        assert masked == decision
        return
    assert masked["input"] == {"secret": _hmac(secret), "other": other}
    assert masked["masked"] == ["/secret"]
    assert masker.mask(masked) == masked  # masking twice changes nothing more


@pytest.fixture
def masked_api(settings: Settings) -> Iterator[Api]:
    masked = msgspec.structs.replace(
        settings,
        audit_mask_fields=(
            "/draft/payload/supplier_id, /draft/payload/lines/*/unit_cost, /context/supplier/id"
        ),
        audit_mask_key=KEY.decode(),
    )
    workspace = asyncio.run(create_workspace(masked))
    with TestClient(create_app(masked)) as client:
        yield Api.with_cast(client, workspace)


def test_stored_decisions_hold_only_the_keyed_hash(masked_api: Api) -> None:
    api = masked_api
    draft = api.submitted("bot")
    approved = api.approve("mia", draft, "manager")
    assert approved.status_code == 200, approved.text  # the policy saw the real values

    response = api.get("admin", f"/v1/decisions/{approved.json()['decision']['id']}")

    decision = response.json()
    payload = decision["input"]["draft"]["payload"]
    original = purchase_order(api.id("mia"))["payload"]
    assert payload["supplier_id"] == _hmac(original["supplier_id"])
    assert payload["lines"][0]["unit_cost"] == _hmac(original["lines"][0]["unit_cost"])
    assert payload["lines"][0]["quantity"] == original["lines"][0]["quantity"]
    assert decision["masked"] == [
        "/context/supplier/id",
        "/draft/payload/lines/0/unit_cost",
        "/draft/payload/supplier_id",
    ]
    for item in api.audit():
        if item["record"]["decision"] is not None:
            assert original["supplier_id"] not in json.dumps(item["record"]["decision"])


def test_masked_records_still_verify(masked_api: Api) -> None:
    api = masked_api
    api.submitted("bot")

    services = api.client.app.state.services

    async def verify() -> bool:
        verifier = ChainVerifier({services.key.key_id: services.key.public_key})
        async for record in stream_audit_records(services.db):
            assert verifier.feed(record), verifier.failure
        return verifier.report().records > 0

    assert api.client.blocking_portal.call(verify)
