package order3.adjustments_test

import data.order3.adjustments

_threshold := data.settings.adjustments.from_minor_units.USD

_input(kind, minor) := {
	"action": "submit",
	"draft": {
		"id": "drf_1",
		"kind": kind,
		"requester": {"id": "prn_clerk", "type": "user"},
		"approval_owner": "prn_owner",
		"amount": {"minor_units": minor, "currency": "USD"},
	},
	"actor": {"id": "prn_clerk", "type": "user", "roles": []},
	"approval": null,
	"approvals": [],
	"context": {"now": "2026-12-03T10:06:00Z"},
}

_rules(inp) := rules if {
	rules := {c.rule | some c in adjustments.contribution} with input as inp
}

test_allowed_one_below_threshold_needs_no_finance if {
	_rules(_input("adjustment", _threshold - 1)) == set()
}

test_allowed_at_threshold_needs_finance if {
	[item] := [c | some c in adjustments.contribution] with input as _input("adjustment", _threshold)

	item.rule == "adjustments.finance_required"
	item.required == data.settings.adjustments.required
}

test_allowed_finance_required_facts_name_values if {
	[item] := [c | some c in adjustments.contribution] with input as _input("reconciliation", _threshold + 5)

	item.facts == {
		"kind": "reconciliation",
		"amount": {"minor_units": _threshold + 5, "currency": "USD"},
		"threshold": {"minor_units": _threshold, "currency": "USD"},
		"required": ["1 finance approval"],
	}
}

test_allowed_finance_required_facts_without_threshold if {
	inp := object.union(_input("adjustment", 1), {"draft": {"amount": {"currency": "CHF"}}})

	[item] := [c | some c in adjustments.contribution] with input as inp

	item.facts.threshold == {"minor_units": 0, "currency": "CHF"}
}

test_allowed_finance_required_facts_count_approvals_in_words if {
	required := {"finance": 2, "manager": 1}

	[item] := [c | some c in adjustments.contribution] with input as _input("adjustment", _threshold)
		with data.settings.adjustments.required as required

	item.facts.required == ["2 finance approvals", "1 manager approval"]
}

test_allowed_above_threshold_reconciliation_needs_finance if {
	_rules(_input("reconciliation", _threshold + 1)) == {"adjustments.finance_required"}
}

test_allowed_purchase_orders_are_not_adjustments if {
	_rules(_input("purchase_order", _threshold + 1)) == set()
}

test_allowed_currency_without_threshold_always_needs_finance if {
	inp := object.union(_input("adjustment", 1), {"draft": {"amount": {"currency": "CHF"}}})

	_rules(inp) == {"adjustments.finance_required"}
}

test_valid_settings_adjustment_roles_are_approver_roles if {
	every role, n in data.settings.adjustments.required {
		role in data.settings.approver_roles
		n > 0
	}
}
