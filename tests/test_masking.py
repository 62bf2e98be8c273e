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
from order3.domain.decisions import parse_result
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


def _reason(message: str, **facts: Any) -> dict[str, Any]:
    return {"rule": "suppliers.on_hold_needs_finance", "message": message, "facts": facts}


def _result(*reasons: dict[str, Any]) -> dict[str, Any]:
    required = [{"role": "finance", "count": 1, "excluded": ["usr_bot"]}]
    return {"allow": False, "outcome": "denied", "reasons": list(reasons), "required": required}


def test_reasons_that_repeat_a_masked_value_hold_its_keyed_hash() -> None:
    masker = DecisionMasker(["/draft/supplier_id", "/draft/unit_cost/minor_units"], KEY)
    reasons = [
        _reason(
            "supplier sup_slow is on hold; sup_slow_2 is not; cost 12500 of 125000",
            supplier_id="sup_slow",
            cost={"minor_units": 12500, "currency": "USD"},
            by_supplier={"sup_slow": 2},
        ),
        _reason("nothing masked here", supplier_id="sup_acme"),
    ]
    decision = {
        "input": {"draft": {"supplier_id": "sup_slow", "unit_cost": {"minor_units": 12500}}},
        "result": _result(*reasons),
    }

    masked = masker.mask(decision)

    first, second = masked["result"]["reasons"]
    supplier, cost = _hmac("sup_slow"), _hmac(12500)
    assert first["message"] == (
        f"supplier {supplier} is on hold; sup_slow_2 is not; cost {cost} of 125000"
    )
    assert first["facts"] == {
        "supplier_id": supplier,
        "cost": {"minor_units": cost, "currency": "USD"},
        "by_supplier": {supplier: 2},
    }
    assert second == reasons[1]
    assert masked["masked_result"] == [
        f"/reasons/0/facts/by_supplier/{supplier}",
        "/reasons/0/facts/cost/minor_units",
        "/reasons/0/facts/supplier_id",
        "/reasons/0/message",
    ]
    assert masked["result"]["required"] == decision["result"]["required"]
    assert parse_result(masked["result"]).rules == ["suppliers.on_hold_needs_finance"] * 2


def test_a_result_that_repeats_nothing_masked_is_kept_as_it_was() -> None:
    masker = DecisionMasker(["/draft/supplier_id"], KEY)
    result = _result(_reason("supplier sup_acme is on hold", supplier_id="sup_acme"))

    masked = masker.mask({"input": {"draft": {"supplier_id": "sup_slow"}}, "result": result})

    assert masked["result"] == result
    assert "masked_result" not in masked


words = st.from_regex(r"[A-Za-z0-9_]{1,10}", fullmatch=True)
separators = st.sampled_from([" ", ", ", ": ", " (", ") ", "/", "-", "'", '"'])


@given(
    secret=words,
    parts=st.lists(st.tuples(st.one_of(st.none(), words), separators), max_size=8),
)
def test_every_whole_word_copy_of_a_masked_string_is_hidden(
    secret: str, parts: list[tuple[str | None, str]]
) -> None:
    """A message made of words and separators, some words the secret (None stands for it):
    exactly those words become its keyed hash, in the message and in the facts."""
    tokens = [(secret if word is None else word, separator) for word, separator in parts]
    message = "".join(word + separator for word, separator in tokens)
    expected = "".join(
        (_hmac(secret) if word == secret else word) + separator for word, separator in tokens
    )
    decision = {
        "input": {"secret": secret},
        "result": _result(_reason(message, said=[message, secret])),
    }

    reason = DecisionMasker(["/secret"], KEY).mask(decision)["result"]["reasons"][0]

    assert reason["message"] == expected
    assert reason["facts"] == {"said": [expected, _hmac(secret)]}


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


def test_a_reason_naming_a_masked_supplier_reaches_the_log_hashed(masked_api: Api) -> None:
    """A purchase order to a supplier on hold: the policy's reason names the supplier, and
    the stored decision holds only the supplier's keyed hash, there as in the input."""
    api = masked_api
    order = purchase_order(api.id("mia"))
    order["payload"]["supplier_id"] = "sup_slow"
    submitted = api.submit("bot", order)
    assert submitted.status_code == 201, submitted.text
    told = submitted.json()["decision"]
    assert "sup_slow" in json.dumps(told["reasons"])  # the requester is told in the clear

    decision = api.get("admin", f"/v1/decisions/{told['id']}").json()

    rules = [reason["rule"] for reason in decision["result"]["reasons"]]
    index = rules.index("suppliers.on_hold_needs_finance")
    on_hold = decision["result"]["reasons"][index]
    assert on_hold["facts"]["supplier_id"] == _hmac("sup_slow")
    assert _hmac("sup_slow") in on_hold["message"]
    assert f"/reasons/{index}/facts/supplier_id" in decision["masked_result"]
    assert "sup_slow" not in decision["record"]["body"]


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
