package order3.suppliers_test

import data.order3.suppliers

_draft(supplier) := {
	"id": "drf_1",
	"kind": "purchase_order",
	"requester": {"id": "prn_requester", "type": "user"},
	"approval_owner": "prn_owner",
	"amount": {"minor_units": 100, "currency": "USD"},
	"payload": {"supplier_id": supplier, "location_id": "loc_1", "currency": "USD", "lines": []},
}

_input(action, supplier, known) := {
	"action": action,
	"draft": _draft(supplier),
	"actor": {"id": "prn_manager", "type": "user", "roles": ["manager"]},
	"approval": {"verdict": "approve", "role": "manager"},
	"approvals": [],
	"context": {"now": "2026-12-03T10:06:00Z", "supplier": known},
}

_known(id, status, created_by) := {"id": id, "status": status, "created_by": created_by}

_ids(reasons) := {r.rule | some r in reasons}

_blocked := data.settings.suppliers.blocked[0]

_on_hold := data.settings.suppliers.on_hold[0]

# --- blocked ---------------------------------------------------------------------

test_denied_blocked_from_settings_at_submit_patch_and_execute if {
	every action in {"submit", "patch", "execute"} {
		_ids(suppliers.deny) == {"suppliers.blocked"} with input as _input(action, _blocked, null)
	}
}

test_denied_blocked_from_context if {
	inp := _input("submit", "sup_new", _known("sup_new", "blocked", null))

	_ids(suppliers.deny) == {"suppliers.blocked"} with input as inp
}

test_denied_blocked_facts_name_supplier if {
	[r] := [r | some r in suppliers.deny] with input as _input("patch", _blocked, null)

	r.facts == {"supplier_id": _blocked, "status": "blocked"}
}

test_allowed_blocked_supplier_approve_and_dismiss_not_checked if {
	count(suppliers.deny) == 0 with input as _input("approve", _blocked, null)
	count(suppliers.deny) == 0 with input as _input("dismiss", _blocked, null)
}

test_allowed_blocked_list_only_for_purchase_orders if {
	inp := object.union(_input("submit", _blocked, null), {"draft": {"kind": "supplier_note"}})

	count(suppliers.deny) == 0 with input as inp
}

test_allowed_active_supplier if {
	inp := _input("submit", "sup_1", _known("sup_1", "active", "prn_clerk"))

	count(suppliers.deny) == 0 with input as inp
	count(suppliers.contribution) == 0 with input as inp
}

# --- on hold -----------------------------------------------------------------------

test_allowed_on_hold_from_settings_needs_finance if {
	[item] := [c | some c in suppliers.contribution] with input as _input("submit", _on_hold, null)

	item.rule == "suppliers.on_hold_needs_finance"
	item.required == data.settings.suppliers.on_hold_required
}

test_allowed_on_hold_facts_name_supplier if {
	[item] := [c | some c in suppliers.contribution] with input as _input("execute", "sup_1", _known("sup_1", "on_hold", null))

	item.facts == {"supplier_id": "sup_1", "status": "on_hold", "required": ["1 finance approval"]}
}

test_allowed_on_hold_from_context_needs_finance if {
	inp := _input("execute", "sup_1", _known("sup_1", "on_hold", null))

	{c.rule | some c in suppliers.contribution} == {"suppliers.on_hold_needs_finance"} with input as inp
	count(suppliers.deny) == 0 with input as inp
}

# --- creator --------------------------------------------------------------------

test_denied_creator_approves if {
	inp := _input("approve", "sup_1", _known("sup_1", "active", "prn_manager"))

	_ids(suppliers.deny) == {"suppliers.creator_cannot_approve"} with input as inp
	suppliers.creator == "prn_manager" with input as inp
}

test_denied_creator_facts_name_supplier_and_creator if {
	[r] := [r | some r in suppliers.deny] with input as _input("approve", "sup_1", _known("sup_1", "active", "prn_manager"))

	r.facts == {"supplier_id": "sup_1", "creator_id": "prn_manager"}
}

test_allowed_other_approves if {
	inp := _input("approve", "sup_1", _known("sup_1", "active", "prn_clerk"))

	count(suppliers.deny) == 0 with input as inp
}

test_allowed_unknown_supplier_has_no_creator if {
	inp := _input("approve", "sup_1", null)

	count(suppliers.deny) == 0 with input as inp
	not suppliers.creator with input as inp
}

test_allowed_supplier_creator_unknown if {
	inp := _input("approve", "sup_1", _known("sup_1", "active", null))

	count(suppliers.deny) == 0 with input as inp
	not suppliers.creator with input as inp
}

# --- malformed context -------------------------------------------------------------

test_denied_context_for_another_supplier if {
	inp := _input("approve", "sup_1", _known("sup_2", "active", "prn_manager"))

	_ids(suppliers.deny) == {"suppliers.context_invalid"} with input as inp
}

test_denied_context_with_unknown_status if {
	inp := _input("submit", "sup_1", _known("sup_1", "paused", null))

	_ids(suppliers.deny) == {"suppliers.context_invalid"} with input as inp
}

test_denied_context_not_an_object if {
	_ids(suppliers.deny) == {"suppliers.context_invalid"} with input as _input("submit", "sup_1", "sup_1")
}

test_allowed_context_absent_is_unknown if {
	inp := json.remove(_input("submit", "sup_1", null), ["context/supplier"])

	count(suppliers.deny) == 0 with input as inp
}

test_valid_settings_on_hold_roles_are_approver_roles if {
	every role, n in data.settings.suppliers.on_hold_required {
		role in data.settings.approver_roles
		n > 0
	}
}
