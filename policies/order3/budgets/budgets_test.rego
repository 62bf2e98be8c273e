package order3.budgets_test

import data.order3.budgets

_budget := data.settings.location_budgets.default.USD

_input(action, minor, executed) := {
	"action": action,
	"draft": {
		"id": "drf_1",
		"kind": "purchase_order",
		"requester": {"id": "prn_requester", "type": "user"},
		"approval_owner": "prn_owner",
		"amount": {"minor_units": minor, "currency": "USD"},
		"payload": {"supplier_id": "sup_1", "location_id": "loc_1", "currency": "USD", "lines": []},
	},
	"actor": {"id": "prn_requester", "type": "user", "roles": []},
	"approval": null,
	"approvals": [],
	"context": {
		"now": "2026-12-03T10:06:00Z",
		"location_spend": {"location_id": "loc_1", "month": "2026-12", "currency": "USD", "executed_minor_units": executed},
	},
}

_ids(reasons) := {r.rule | some r in reasons}

test_allowed_one_below_budget if {
	count(budgets.deny) == 0 with input as _input("submit", 1000, _budget - 1001)
}

test_allowed_at_budget if {
	count(budgets.deny) == 0 with input as _input("submit", 1000, _budget - 1000)
}

test_denied_one_above_budget if {
	every action in {"submit", "patch", "execute"} {
		_ids(budgets.deny) == {"budgets.monthly_budget_exceeded"} with input as _input(action, 1000, _budget - 999)
	}
}

test_denied_over_budget_message_names_values if {
	some r in budgets.deny with input as _input("submit", 1, _budget)
	r.message == sprintf("location loc_1 would spend %d USD minor units in 2026-12, above its budget of %d", [_budget + 1, _budget])
}

test_denied_over_budget_facts_name_values if {
	[r] := [r | some r in budgets.deny] with input as _input("execute", 1, _budget)

	r.rule == "budgets.monthly_budget_exceeded"
	r.facts == {
		"location_id": "loc_1",
		"month": "2026-12",
		"executed": {"minor_units": _budget, "currency": "USD"},
		"amount": {"minor_units": 1, "currency": "USD"},
		"total": {"minor_units": _budget + 1, "currency": "USD"},
		"budget": {"minor_units": _budget, "currency": "USD"},
	}
}

test_allowed_budget_not_checked_at_approve_or_for_other_kinds if {
	count(budgets.deny) == 0 with input as _input("approve", 1, _budget)
	count(budgets.deny) == 0 with input as object.union(_input("submit", 1, _budget), {"draft": {"kind": "adjustment"}})
}

test_allowed_listed_location_overrides_default if {
	inp := _input("submit", 1, 0)
	locations := {"loc_1": {"USD": 100}}

	budgets.budget == 100 with input as inp with data.settings.location_budgets.locations as locations
	_ids(budgets.deny) == {"budgets.monthly_budget_exceeded"} with input as _input("submit", 1, 100)
		with data.settings.location_budgets.locations as locations
}

test_denied_listed_location_without_currency if {
	locations := {"loc_1": {"EUR": 100}}

	_ids(budgets.deny) == {"budgets.not_configured"} with input as _input("submit", 1, 0)
		with data.settings.location_budgets.locations as locations
}

test_denied_spend_missing if {
	inp := json.remove(_input("submit", 1, 0), ["context/location_spend"])

	_ids(budgets.deny) == {"budgets.spend_unknown"} with input as inp
}

test_denied_spend_of_another_month_location_or_currency if {
	every change in [
		{"month": "2026-11"},
		{"location_id": "loc_2"},
		{"currency": "EUR"},
		{"executed_minor_units": -1},
		{"executed_minor_units": 1.5},
	] {
		inp := object.union(_input("execute", 1, 0), {"context": {"location_spend": change}})

		_ids(budgets.deny) == {"budgets.spend_unknown"} with input as inp
	}
}

test_valid_settings_every_tiered_currency_has_a_default_budget if {
	every currency, _ in data.settings.approval_tiers {
		data.settings.location_budgets.default[currency] > 0
	}
}
