package order3.spend_test

import data.order3.spend

_draft(amount) := {
	"id": "drf_1",
	"kind": "purchase_order",
	"requester": {"id": "prn_agent", "type": "agent"},
	"approval_owner": "prn_manager",
	"amount": amount,
}

_usd(minor) := {"minor_units": minor, "currency": "USD"}

_input(action, amount) := {
	"action": action,
	"draft": _draft(amount),
	"actor": {"id": "prn_agent", "type": "agent", "roles": []},
	"approval": null,
	"approvals": [],
}

_approve(amount, role) := object.union(_input("approve", amount), {
	"actor": {"id": "prn_approver", "type": "user", "roles": [role]},
	"approval": {"verdict": "approve", "role": role},
})

_null_kind(kind) := object.union(_input("submit", null), {"draft": {"kind": kind}})

_ids(reasons) := {r.rule | some r in reasons}

# --- tiers -------------------------------------------------------------------

test_allowed_tier_zero_needs_manager if {
	spend.requirement == {"manager": 1} with input as _input("submit", _usd(0))
}

test_allowed_tier_one_below_boundary_needs_manager if {
	spend.requirement == {"manager": 1} with input as _input("submit", _usd(499999))
}

test_allowed_tier_at_boundary_needs_manager_and_finance if {
	spend.requirement == {"manager": 1, "finance": 1} with input as _input("submit", _usd(500000))
}

test_allowed_tier_above_boundary_needs_manager_and_finance if {
	spend.requirement == {"manager": 1, "finance": 1} with input as _input("submit", _usd(500001))
}

test_allowed_tier_eur_and_gbp_configured if {
	spend.requirement == {"manager": 1} with input as _input("submit", {"minor_units": 499999, "currency": "EUR"})
	spend.requirement == {"manager": 1, "finance": 1} with input as _input("submit", {"minor_units": 500000, "currency": "GBP"})
}

test_allowed_tier_highest_start_wins if {
	tiers := {"USD": [
		{"from_minor_units": 100, "required": {"finance": 2}},
		{"from_minor_units": 0, "required": {"manager": 1}},
	]}

	spend.requirement == {"finance": 2} with input as _input("submit", _usd(100))
		with data.settings.approval_tiers as tiers
	spend.requirement == {"manager": 1} with input as _input("submit", _usd(99))
		with data.settings.approval_tiers as tiers
}

test_allowed_null_amount_count_task if {
	spend.requirement == {"manager": 1} with input as _null_kind("count_task")
	count(spend.deny) == 0 with input as _null_kind("count_task")
}

test_allowed_null_amount_supplier_note if {
	spend.requirement == {"manager": 1} with input as _null_kind("supplier_note")
	count(spend.deny) == 0 with input as _null_kind("supplier_note")
}

# --- amount validity -------------------------------------------------------------

test_denied_null_amount_purchase_order if {
	_ids(spend.deny) == {"spend.amount_required"} with input as _input("submit", null)
}

test_denied_amount_negative if {
	_ids(spend.deny) == {"spend.amount_invalid"} with input as _input("submit", _usd(-1))
}

test_denied_amount_fractional if {
	_ids(spend.deny) == {"spend.amount_invalid"} with input as _input("patch", _usd(10.5))
}

test_denied_amount_without_currency if {
	_ids(spend.deny) == {"spend.amount_invalid"} with input as _input("execute", {"minor_units": 100})
}

test_denied_amount_missing if {
	inp := json.remove(_input("submit", null), ["draft/amount"])

	_ids(spend.deny) == {"spend.amount_invalid"} with input as inp
}

test_allowed_amount_checks_skip_reject_and_dismiss if {
	count(spend.deny) == 0 with input as _input("reject", _usd(-1))
	count(spend.deny) == 0 with input as _input("dismiss", {"minor_units": 1, "currency": "JPY"})
}

# --- currency and tiers configuration -------------------------------------------

test_denied_currency_not_configured_submit if {
	_ids(spend.deny) == {"spend.currency_not_configured"} with input as _input("submit", {"minor_units": 1, "currency": "JPY"})
}

test_denied_currency_not_configured_patch if {
	_ids(spend.deny) == {"spend.currency_not_configured"} with input as _input("patch", {"minor_units": 1, "currency": "JPY"})
}

test_denied_currency_with_empty_tiers if {
	_ids(spend.deny) == {"spend.currency_not_configured"} with input as _input("submit", _usd(1))
		with data.settings.approval_tiers.USD as []
}

test_denied_no_applicable_tier if {
	tiers := {"USD": [{"from_minor_units": 100, "required": {"manager": 1}}]}

	_ids(spend.deny) == {"spend.no_applicable_tier"} with input as _input("submit", _usd(99))
		with data.settings.approval_tiers as tiers
}

test_denied_requirement_unavailable_without_no_amount_setting if {
	settings := json.remove(data.settings, ["no_amount_required"])

	_ids(spend.deny) == {"spend.requirement_unavailable"} with input as _null_kind("count_task")
		with data.settings as settings
}

test_denied_requirement_unavailable_tier_without_required if {
	tiers := {"USD": [{"from_minor_units": 0}]}

	_ids(spend.deny) == {"spend.requirement_unavailable"} with input as _input("submit", _usd(1))
		with data.settings.approval_tiers as tiers
}

# --- approver limits ---------------------------------------------------------------

test_allowed_manager_at_limit if {
	count(spend.deny) == 0 with input as _approve(_usd(2500000), "manager")
}

test_denied_manager_one_above_limit if {
	_ids(spend.deny) == {"spend.over_approver_limit"} with input as _approve(_usd(2500001), "manager")
}

test_denied_over_limit_message_names_values if {
	some r in spend.deny with input as _approve(_usd(2500001), "manager")
	r.message == "amount 2500001 USD minor units exceeds manager limit 2500000"
}

test_denied_over_limit_facts_name_values if {
	[r] := [r | some r in spend.deny] with input as _approve(_usd(2500001), "manager")

	r.rule == "spend.over_approver_limit"
	r.facts == {"amount": {"minor_units": 2500001, "currency": "USD"}, "role": "manager", "limit": {"minor_units": 2500000, "currency": "USD"}}
}

test_allowed_finance_at_limit if {
	count(spend.deny) == 0 with input as _approve(_usd(100000000), "finance")
}

test_denied_finance_one_above_limit if {
	_ids(spend.deny) == {"spend.over_approver_limit"} with input as _approve(_usd(100000001), "finance")
}

test_allowed_limit_ignored_for_null_amount if {
	count(spend.deny) == 0 with input as object.union(_approve(null, "manager"), {"draft": {"kind": "count_task"}})
}

test_denied_approver_limit_not_configured if {
	_ids(spend.deny) == {"spend.approver_limit_not_configured"} with input as _approve(_usd(1), "auditor")
}

test_denied_approver_limit_not_configured_facts if {
	[r] := [r | some r in spend.deny] with input as _approve({"minor_units": 1, "currency": "EUR"}, "auditor")

	r.facts == {"role": "auditor", "currency": "EUR"}
}

test_allowed_within_limit_helper if {
	spend.within_limit("manager") with input as _input("execute", _usd(2500000))
	spend.within_limit("auditor") with input as _input("execute", null)
}

test_denied_within_limit_helper if {
	not spend.within_limit("manager") with input as _input("execute", _usd(2500001))
	not spend.within_limit("auditor") with input as _input("execute", _usd(1))
}

# --- settings sanity (guards data.json edits) ----------------------------------------

test_valid_settings_core_currencies_configured if {
	every currency in {"USD", "EUR", "GBP"} {
		count(data.settings.approval_tiers[currency]) > 0
	}
}

test_valid_settings_tiers_start_at_zero_and_are_distinct if {
	every _, tiers in data.settings.approval_tiers {
		starts := [t.from_minor_units | some t in tiers]
		min(starts) == 0
		count({s | some s in starts}) == count(starts)
	}
}

test_valid_settings_tier_roles_are_approver_roles_with_limits if {
	every currency, tiers in data.settings.approval_tiers {
		every tier in tiers {
			every role, n in tier.required {
				role in data.settings.approver_roles
				is_number(data.settings.approval_limits[role][currency])
				n > 0
			}
		}
	}
}

test_valid_settings_no_amount_roles_are_approver_roles if {
	every role, n in data.settings.no_amount_required {
		role in data.settings.approver_roles
		n > 0
	}
}

test_denied_null_amount_when_no_amount_kinds_unset if {
	settings := json.remove(data.settings, ["no_amount_kinds"])

	_ids(spend.deny) == {"spend.amount_required"} with input as _null_kind("count_task")
		with data.settings as settings
}

# --- item categories ------------------------------------------------------------------

_hazardous := "SKU-HAZ-1"

# What the service knows of the items: their categories, from the inventory records.
_items := {"context": {"items": {
	_hazardous: {"category": "hazardous"},
	"SKU-HAZ-2": {"category": "hazardous"},
	"SKU-1": {"category": "parts"},
}}}

_line(sku, quantity, unit) := {"sku": sku, "quantity": quantity, "unit_cost": {"minor_units": unit, "currency": "USD"}}

_order(lines, role) := inp if {
	total := sum([v | some l in lines; v := l.quantity * l.unit_cost.minor_units])
	inp := object.union_n([_approve(_usd(total), role), {"draft": {"payload": {"lines": lines}}}, _items])
}

_manager_hazardous_limit := data.settings.category_limits.hazardous.manager.USD

test_allowed_category_amounts_sum_lines_of_a_limited_category if {
	inp := _order([_line(_hazardous, 2, 100), _line("SKU-1", 1, 50), _line("SKU-HAZ-2", 2, 100)], "manager")

	spend.category_amounts == {"hazardous": 400} with input as inp
}

test_allowed_category_amounts_keep_limited_categories_apart if {
	limits := object.union(data.settings.category_limits, {"parts": {"manager": {"USD": 1000}}})
	inp := _order([_line(_hazardous, 2, 100), _line("SKU-1", 3, 50), _line("SKU-HAZ-2", 1, 100), _line("SKU-1", 1, 5)], "manager")

	spend.category_amounts == {"hazardous": 300, "parts": 155} with input as inp with data.settings.category_limits as limits
}

test_allowed_manager_at_category_limit if {
	inp := _order([_line(_hazardous, 1, _manager_hazardous_limit), _line("SKU-1", 1, 5)], "manager")

	count(spend.deny) == 0 with input as inp
	spend.within_limit("manager") with input as inp
}

test_denied_manager_one_above_category_limit if {
	inp := _order([_line(_hazardous, 1, _manager_hazardous_limit + 1)], "manager")

	_ids(spend.deny) == {"spend.over_category_limit"} with input as inp
	not spend.within_limit("manager") with input as inp
	spend.within_limit("finance") with input as inp
}

test_denied_over_category_limit_facts_name_values if {
	inp := _order([_line(_hazardous, 2, 150000), _line("SKU-1", 1, 7)], "manager")

	[r] := [r | some r in spend.deny] with input as inp

	r.rule == "spend.over_category_limit"
	r.facts == {
		"category": "hazardous",
		"category_amount": {"minor_units": 300000, "currency": "USD"},
		"role": "manager",
		"limit": {"minor_units": _manager_hazardous_limit, "currency": "USD"},
	}
}

test_denied_category_limit_not_configured_for_role if {
	limits := {"hazardous": {"finance": {"USD": 100}}}
	inp := _order([_line(_hazardous, 1, 1)], "manager")

	_ids(spend.deny) == {"spend.category_limit_not_configured"} with input as inp with data.settings.category_limits as limits
	not spend.within_limit("manager") with input as inp with data.settings.category_limits as limits
}

test_allowed_a_category_without_limits_is_not_limited if {
	inp := _order([_line("SKU-1", 1, data.settings.approval_limits.manager.USD)], "manager")

	spend.category_amounts == {} with input as inp
	count(spend.deny) == 0 with input as inp
	spend.within_limit("manager") with input as inp
}

test_denied_item_missing_from_context if {
	inp := json.patch(_order([_line(_hazardous, 1, 1)], "manager"), [{"op": "replace", "path": "/context/items", "value": {}}])

	_ids(spend.deny) == {"spend.item_unknown"} with input as inp
	spend.category_amounts == {} with input as inp
}

test_denied_item_unknown_facts_name_the_sku if {
	inp := json.patch(_order([_line(_hazardous, 1, 1)], "manager"), [{"op": "replace", "path": "/context/items", "value": {}}])

	[r] := [r | some r in spend.deny] with input as inp

	r.facts == {"sku": _hazardous}
}

test_allowed_money_is_in_the_draft_currency if {
	spend.money(12) == {"minor_units": 12, "currency": "GBP"} with input as _input("submit", {"minor_units": 1, "currency": "GBP"})
}

test_allowed_category_of_adjustment_reconciliation_and_transfer if {
	unit := {"minor_units": 10, "currency": "USD"}
	adjustment := object.union_n([_input("submit", _usd(30)), _items, {"draft": {"kind": "adjustment", "payload": {"sku": _hazardous, "quantity_delta": -3, "unit_cost": unit}}}])
	reconciliation := object.union_n([_input("submit", _usd(50)), _items, {"draft": {"kind": "reconciliation", "payload": {"corrections": [
		{"sku": _hazardous, "quantity_delta": -2, "unit_cost": unit},
		{"sku": _hazardous, "quantity_delta": 3, "unit_cost": unit},
	]}}}])
	transfer := object.union_n([_input("submit", _usd(40)), _items, {"draft": {"kind": "transfer", "payload": {"sku": _hazardous, "quantity": 4, "unit_cost": unit}}}])

	spend.category_amounts == {"hazardous": 30} with input as adjustment
	spend.category_amounts == {"hazardous": 50} with input as reconciliation
	spend.category_amounts == {"hazardous": 40} with input as transfer
}

test_valid_settings_every_limited_category_names_a_role if {
	every _, limits in data.settings.category_limits {
		count(limits) > 0
	}
}
