"""Explanations: a recorded decision, rule by rule, with the values each rule compared, in
words an approver understands (money as people write it) and as data an agent can act on."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from conftest import POLICY_DIR
from order3.domain.money import ISO_4217_CODES, MAX_MINOR_UNITS, display_money
from order3.policy.annotations import read_annotations
from order3.policy.explanations import explain, fill
from support.api import Api, purchase_order

DATA: dict[str, Any] = json.loads((POLICY_DIR / "settings" / "data.json").read_text())
ANNOTATIONS = read_annotations(
    p.read_text() for p in POLICY_DIR.rglob("*.rego") if not p.name.endswith("_test.rego")
)


@given(
    minor_units=st.integers(-MAX_MINOR_UNITS, MAX_MINOR_UNITS),
    currency=st.sampled_from(sorted(ISO_4217_CODES)),
)
def test_money_reads_back_to_the_same_minor_units(minor_units: int, currency: str) -> None:
    """Shown money keeps every digit: separators every three, the currency's decimals."""
    shown = display_money(minor_units, currency)

    number, code = shown.split(" ")
    assert code == currency
    assert re.fullmatch(r"-?\d{1,3}(,\d{3})*(\.\d+)?", number), shown
    assert int(number.replace(",", "").replace(".", "")) == minor_units


def test_money_has_the_decimals_of_its_currency() -> None:
    assert display_money(1200000, "USD") == "12,000.00 USD"
    assert display_money(1500, "JPY") == "1,500 JPY"
    assert display_money(1234567, "BHD") == "1,234.567 BHD"


def test_a_template_is_filled_only_when_every_fact_is_there() -> None:
    """A placeholder without its fact leaves the template unfilled, never half-filled."""
    facts = {"amount": {"minor_units": 500001, "currency": "EUR"}, "roles": ["finance"]}

    assert fill("{amount} needs {roles}", facts) == "5,000.01 EUR needs finance"
    assert fill("{amount} is above {limit}", facts) is None


def test_a_rule_without_an_explanation_is_explained_by_its_message() -> None:
    result = {
        "outcome": "denied",
        "reasons": [{"rule": "custom.rule", "message": "no, because", "facts": {"x": 1}}],
        "required": [{"role": "finance", "count": 2, "excluded": ["prn_a"]}],
    }

    explained = explain(result, ANNOTATIONS)

    [rule] = explained.rules
    assert (rule.title, rule.explanation, rule.facts) == (None, "no, because", {"x": 1})
    assert explained.summary == (
        "Denied: no, because. Still required: 2 more approvals from role finance, "
        "from anyone but prn_a."
    )


def test_every_explanation_names_only_facts_its_rule_gives() -> None:
    """Each annotated explanation has placeholders; their names are snake_case facts."""
    templates = {a.id: a.explanation for a in ANNOTATIONS if a.explanation}

    assert len(templates) >= 15
    for rule_id, template in templates.items():
        assert re.findall(r"\{(\w+)\}", template), rule_id


def test_an_approval_over_the_limit_is_explained_with_the_amounts(api: Api) -> None:
    """A manager refused above the manager limit sees the rule's title and both amounts,
    written as money, and an agent gets the same values as data."""
    limit = DATA["approval_limits"]["manager"]["USD"]
    draft_id = api.submit("sam", _order(api, limit + 1)).json()["draft"]["id"]
    refused = api.approve("mia", draft_id, "manager")
    decision_id = refused.json()["decision"]["id"]

    explained = api.get("viewer", f"/v1/decisions/{decision_id}/explain")

    assert explained.status_code == 200, explained.text
    body = explained.json()
    assert body["outcome"] == "denied"
    assert (body["action"], body["audit_action"]) == ("approve", "decision.refused")
    over = next(r for r in body["rules"] if r["rule"] == "spend.over_approver_limit")
    assert over["title"] == "Approval is over the approver's limit"
    money = [value for value in over["facts"].values() if isinstance(value, dict)]
    assert {"minor_units": limit, "currency": "USD"} in money
    assert {"minor_units": limit + 1, "currency": "USD"} in money
    assert display_money(limit, "USD") in over["explanation"]
    assert display_money(limit + 1, "USD") in over["explanation"]
    assert over["explanation"] in body["summary"]


def test_an_allowed_decision_explains_what_is_still_required(api: Api) -> None:
    """A submit that needs a manager says so, naming who may not give the approval."""
    submitted = api.submit("bot", _order(api, 1000))
    decision_id = submitted.json()["decision"]["id"]

    body = api.get("viewer", f"/v1/decisions/{decision_id}/explain").json()

    assert body["outcome"] == "allowed"
    assert body["rules"][0]["rule"] == "submit.accepted"
    [required] = body["required"]
    assert required["role"] == "manager"
    assert api.id("bot") in required["excluded"]
    assert required["explanation"] == (
        "1 more approval from role manager, from anyone but " + ", ".join(required["excluded"])
    )


def test_another_workspace_cannot_read_the_explanation(api: Api) -> None:
    """An unknown or foreign decision id answers 404 problem+json, as the decision does."""
    missing = api.get("viewer", "/v1/decisions/dec_nothing/explain")

    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def _order(api: Api, amount: int) -> dict[str, Any]:
    """A purchase order of exactly ``amount`` minor units of USD, owned by Mia."""
    return purchase_order(api.id("mia"), unit_cost=amount, quantity=1)
