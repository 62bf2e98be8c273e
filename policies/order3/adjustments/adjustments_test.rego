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
