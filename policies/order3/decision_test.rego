package order3_test

import data.order3

_draft := {
	"id": "drf_01J",
	"workspace_id": "wsp_01J",
	"kind": "purchase_order",
	"state": "pending",
	"content_hash": "sha256:9f2c",
	"requester": {"id": "prn_agent", "type": "agent"},
	"approval_owner": "prn_manager",
	"amount": {"minor_units": 1250000, "currency": "USD"},
	"payload": {"supplier_id": "sup_1", "location_id": "loc_1", "currency": "USD", "lines": []},
	"rationale": "Stock of SKU-1 is below its reorder point.",
	"affected_records": [{"type": "item", "id": "SKU-1"}],
	"created_at": "2026-12-03T10:00:00.000000Z",
}

_context := {
	"now": "2026-12-03T10:06:00.000000Z",
	"supplier": null,
	"items": {},
	"records": [{"type": "item", "id": "SKU-1", "based_on_version": null, "current_version": 1}],
	"location_spend": {"location_id": "loc_1", "month": "2026-12", "currency": "USD", "executed_minor_units": 0},
	"requester_daily_spend": {"day": "2026-12-03", "currency": "USD", "submitted_minor_units": 0},
}

_agent := {"id": "prn_agent", "type": "agent", "roles": [], "scopes": ["read", "submit"]}

_manager := {"id": "prn_manager", "type": "user", "roles": ["manager"], "scopes": ["read", "approve"]}

_finance := {"id": "prn_finance", "type": "user", "roles": ["finance"], "scopes": ["read", "approve"]}

_stranger := {"id": "prn_stranger", "type": "user", "roles": ["manager"], "scopes": ["read"]}

_recorded(actor, role) := {
	"approver": {"id": actor.id, "type": actor.type, "roles": actor.roles},
	"verdict": "approve",
	"role": role,
	"content_hash": "sha256:9f2c",
	"decided_at": "2026-12-03T10:05:00Z",
}

_input(action, actor, approval, approvals) := {
	"action": action,
	"draft": _draft,
	"actor": actor,
	"approval": approval,
	"approvals": approvals,
	"context": _context,
}

_with_amount(inp, minor) := object.union(inp, {"draft": {"amount": {"minor_units": minor}}})

_approve_as(role) := {"verdict": "approve", "role": role}

_ids(decision) := {r.rule | some r in decision.reasons}

# The requirement without its exclusions, as [{role, count}].
_needs(decision) := [{"role": q.role, "count": q.count} | some q in decision.required]

# The result always has the contract's shape.
_well_formed(d) if {
	is_boolean(d.allow)
	d.outcome == {true: "allowed", false: "denied"}[d.allow]
	count(d.reasons) > 0
	every r in d.reasons {
		is_string(r.rule)
		is_string(r.message)
		_facts_well_formed(r)
	}
	every q in d.required {
		is_string(q.role)
		q.count > 0
		is_array(q.excluded)
	}
	_workflow_well_formed(d)
}

# A reason's facts, when it has any, map snake_case keys to strings, integers, null (a
# deleted record's version), arrays of strings, or money as {minor_units, currency}.
_facts_well_formed(r) if not "facts" in object.keys(r)

_facts_well_formed(r) if {
	is_object(r.facts)
	every key, value in r.facts {
		regex.match(`^[a-z][a-z0-9_]*$`, key)
		_fact_value(value)
	}
}

_fact_value(value) if is_string(value)

_fact_value(value) if {
	is_number(value)
	value == floor(value)
}

_fact_value(null)

_fact_value(value) if {
	is_array(value)
	every item in value {
		is_string(item)
	}
}

_fact_value(value) if {
	object.keys(value) == {"minor_units", "currency"}
	is_number(value.minor_units)
	value.minor_units == floor(value.minor_units)
	is_string(value.currency)
}

# A denial sets no workflow; an expiry is a time, and an escalation comes before it.
_workflow_well_formed(d) if {
	d.expires_at == null
	d.escalation == null
}

_workflow_well_formed(d) if {
	d.allow
	time.parse_rfc3339_ns(d.expires_at)
	_escalation_before_expiry(d)
}

_escalation_before_expiry(d) if d.escalation == null

_escalation_before_expiry(d) if time.parse_rfc3339_ns(d.escalation.at) < time.parse_rfc3339_ns(d.expires_at)

# --- submit / patch ------------------------------------------------------------------

test_allowed_submit_by_agent if {
	d := order3.decision with input as _input("submit", _agent, null, [])

	_well_formed(d)
	d.allow == true
	d.outcome == "allowed"
	_ids(d) == {"submit.accepted"}
	_needs(d) == [{"role": "finance", "count": 1}, {"role": "manager", "count": 1}]
}

test_allowed_submit_one_below_tier if {
	d := order3.decision with input as _with_amount(_input("submit", _agent, null, []), 499999)
		with data.settings.two_person.from_minor_units as {}

	d.allow == true
	_needs(d) == [{"role": "manager", "count": 1}]
}

test_allowed_submit_one_below_tier_is_two_person if {
	d := order3.decision with input as _with_amount(_input("submit", _agent, null, []), 499999)

	d.allow == true
	_ids(d) == {"submit.accepted", "quorum.two_person"}
	d.reasons[0].rule == "submit.accepted"
	_needs(d) == [{"role": "finance", "count": 1}, {"role": "manager", "count": 1}]
}

test_allowed_submit_at_tier if {
	d := order3.decision with input as _with_amount(_input("submit", _agent, null, []), 500000)

	_needs(d) == [{"role": "finance", "count": 1}, {"role": "manager", "count": 1}]
}

test_allowed_submit_above_tier if {
	d := order3.decision with input as _with_amount(_input("submit", _agent, null, []), 500001)

	_needs(d) == [{"role": "finance", "count": 1}, {"role": "manager", "count": 1}]
}

test_allowed_submit_count_task_without_amount if {
	inp := json.patch(_input("submit", _agent, null, []), [
		{"op": "replace", "path": "/draft/kind", "value": "count_task"},
		{"op": "replace", "path": "/draft/amount", "value": null},
	])
	d := order3.decision with input as inp

	d.allow == true
	_needs(d) == [{"role": "manager", "count": 1}]
}

test_allowed_submit_supplier_note_without_amount if {
	inp := json.patch(_input("submit", _agent, null, []), [
		{"op": "replace", "path": "/draft/kind", "value": "supplier_note"},
		{"op": "replace", "path": "/draft/amount", "value": null},
	])
	d := order3.decision with input as inp

	d.allow == true
	_needs(d) == [{"role": "manager", "count": 1}]
}

test_denied_submit_purchase_order_without_amount if {
	inp := json.patch(_input("submit", _agent, null, []), [{"op": "replace", "path": "/draft/amount", "value": null}])
	d := order3.decision with input as inp

	_well_formed(d)
	_ids(d) == {"spend.amount_required"}
}

test_denied_submit_currency_not_configured if {
	inp := json.patch(_input("submit", _agent, null, []), [
		{"op": "replace", "path": "/draft/amount/currency", "value": "JPY"},
		{"op": "replace", "path": "/context/location_spend/currency", "value": "JPY"},
		{"op": "replace", "path": "/context/requester_daily_spend/currency", "value": "JPY"},
	])
	d := order3.decision with input as inp

	_well_formed(d)
	d.allow == false
	d.outcome == "denied"
	_ids(d) == {"spend.currency_not_configured", "agents.daily_limit_not_configured", "budgets.not_configured"}
	_needs(d) == []
}

test_allowed_patch_by_requester if {
	d := order3.decision with input as _input("patch", _agent, null, [])

	_ids(d) == {"patch.accepted"}
	_needs(d) == [{"role": "finance", "count": 1}, {"role": "manager", "count": 1}]
}

test_allowed_patch_keeps_approvals_bound_to_unchanged_content if {
	inp := _input("patch", _agent, null, [_recorded(_manager, "manager")])
	d := order3.decision with input as inp

	_ids(d) == {"patch.accepted"}
	_needs(d) == [{"role": "finance", "count": 1}]
}

test_denied_patch_by_stranger if {
	d := order3.decision with input as _input("patch", _stranger, null, [])

	_ids(d) == {"duties.patch_not_requester"}
}

# --- approve -------------------------------------------------------------------------

test_allowed_approve_contract_example_completes if {
	inp := _input("approve", _manager, _approve_as("manager"), [_recorded(_finance, "finance")])
	d := order3.decision with input as inp

	_well_formed(d)
	d.allow == true
	_ids(d) == {"approval.counted"}
	_needs(d) == []
}

test_allowed_approve_first_of_two if {
	d := order3.decision with input as _input("approve", _manager, _approve_as("manager"), [])

	d.allow == true
	_needs(d) == [{"role": "finance", "count": 1}]
}

test_denied_approve_by_agent if {
	agent := object.union(_agent, {"id": "prn_other_agent", "roles": ["manager"]})
	d := order3.decision with input as _input("approve", agent, _approve_as("manager"), [])

	_ids(d) == {"duties.agent_cannot_approve"}
	_needs(d) == [{"role": "finance", "count": 1}, {"role": "manager", "count": 1}]
}

test_denied_approve_by_agent_requester_lists_both if {
	agent := object.union(_agent, {"roles": ["manager"]})
	d := order3.decision with input as _input("approve", agent, _approve_as("manager"), [])

	_well_formed(d)
	_ids(d) == {"duties.agent_cannot_approve", "duties.requester_cannot_approve"}
}

test_denied_approve_by_user_requester if {
	inp := object.union(_input("approve", _manager, _approve_as("manager"), []), {"draft": {"requester": {"id": "prn_manager", "type": "user"}}})
	d := order3.decision with input as inp

	_ids(d) == {"duties.requester_cannot_approve"}
}

test_denied_approve_twice_by_same_approver if {
	both := object.union(_manager, {"roles": ["manager", "finance"]})
	inp := _input("approve", both, _approve_as("finance"), [_recorded(both, "manager")])
	d := order3.decision with input as inp

	_ids(d) == {"duties.duplicate_approver"}
	_needs(d) == [{"role": "finance", "count": 1}]
}

test_denied_approve_second_manager_not_required if {
	other := object.union(_manager, {"id": "prn_manager_2"})
	inp := _with_amount(_input("approve", other, _approve_as("manager"), [_recorded(_manager, "manager")]), 100)
	d := order3.decision with input as inp

	_ids(d) == {"approval.role_not_required"}
	_needs(d) == []
}

test_denied_approve_without_role if {
	d := order3.decision with input as _input("approve", _manager, _approve_as(null), [])

	_ids(d) == {"approval.role_missing"}
}

test_denied_approve_in_role_not_held if {
	d := order3.decision with input as _input("approve", _manager, _approve_as("finance"), [])

	_ids(d) == {"duties.role_not_held"}
}

test_denied_approve_over_manager_limit if {
	# Pins tiers that still ask for a manager above the manager limit.
	inp := _with_amount(_input("approve", _manager, _approve_as("manager"), []), 2500001)
	d := order3.decision with input as inp with data.settings.approval_tiers as {"USD": [{"from_minor_units": 0, "required": {"manager": 1}}, {"from_minor_units": 500000, "required": {"finance": 1, "manager": 1}}]}

	_ids(d) == {"spend.over_approver_limit"}
}

test_allowed_approve_at_manager_limit if {
	inp := _with_amount(_input("approve", _manager, _approve_as("manager"), []), 2500000)
	d := order3.decision with input as inp

	d.allow == true
}

test_denied_approve_by_clerk_lists_every_rule if {
	clerk := {"id": "prn_clerk", "type": "user", "roles": ["clerk"]}
	d := order3.decision with input as _input("approve", clerk, _approve_as("clerk"), [])

	_ids(d) == {
		"duties.not_an_approver",
		"approval.role_not_required",
		"spend.approver_limit_not_configured",
	}
}

test_allowed_approve_count_task_without_amount if {
	inp := json.patch(_input("approve", _manager, _approve_as("manager"), []), [
		{"op": "replace", "path": "/draft/kind", "value": "count_task"},
		{"op": "replace", "path": "/draft/amount", "value": null},
	])
	d := order3.decision with input as inp

	d.allow == true
	_needs(d) == []
}

# --- reject ----------------------------------------------------------------------

test_allowed_reject_by_manager if {
	d := order3.decision with input as _input("reject", _manager, {"verdict": "reject", "role": null}, [])

	_well_formed(d)
	_ids(d) == {"reject.accepted"}
	_needs(d) == []
}

test_denied_reject_by_requester_agent if {
	agent := object.union(_agent, {"roles": ["manager"]})
	d := order3.decision with input as _input("reject", agent, {"verdict": "reject", "role": null}, [])

	_ids(d) == {"duties.agent_cannot_reject", "duties.requester_cannot_reject"}
	_needs(d) == []
}

# --- execute ---------------------------------------------------------------------

test_allowed_execute_complete if {
	approvals := [_recorded(_manager, "manager"), _recorded(_finance, "finance")]
	d := order3.decision with input as _input("execute", _agent, null, approvals)

	_well_formed(d)
	_ids(d) == {"execution.approvals_complete"}
	_needs(d) == []
}

test_denied_execute_incomplete if {
	d := order3.decision with input as _input("execute", _agent, null, [_recorded(_manager, "manager")])

	_well_formed(d)
	_ids(d) == {"execution.approvals_incomplete"}
	_needs(d) == [{"role": "finance", "count": 1}]
}

test_denied_execute_when_currency_removed if {
	approvals := [_recorded(_manager, "manager"), _recorded(_finance, "finance")]
	settings := json.remove(data.settings, ["approval_tiers/USD"])
	d := order3.decision with input as _input("execute", _agent, null, approvals)
		with data.settings as settings

	_ids(d) == {"spend.currency_not_configured"}
}

# --- dismiss ---------------------------------------------------------------------

test_allowed_dismiss_by_owner if {
	d := order3.decision with input as _input("dismiss", _manager, null, [])

	_ids(d) == {"dismiss.accepted"}
	_needs(d) == []
}

test_allowed_dismiss_by_requester if {
	d := order3.decision with input as _input("dismiss", _agent, null, [])

	_ids(d) == {"dismiss.accepted"}
}

test_denied_dismiss_by_stranger if {
	d := order3.decision with input as _input("dismiss", _stranger, null, [])

	_ids(d) == {"duties.dismiss_not_permitted"}
	_needs(d) == []
}

# --- fail closed -------------------------------------------------------------------

test_denied_unknown_action if {
	d := order3.decision with input as _input("frobnicate", _manager, null, [])

	_well_formed(d)
	_ids(d) == {"decision.unknown_action"}
	_needs(d) == []
}

test_denied_empty_input if {
	d := order3.decision with input as {}

	_well_formed(d)
	_ids(d) == {"decision.unknown_action"}
}

test_denied_malformed_input if {
	d := order3.decision with input as {"action": "dismiss"}

	_well_formed(d)
	"decision.input_invalid" in _ids(d)
}

# Each malformed field is named on its own, even though a well-formed input skips the
# per-field checks.
test_denied_malformed_input_names_each_problem if {
	valid := _input("approve", _finance, _approve_as("finance"), [])
	cases := [
		[["actor", "id"], 7, "actor.id must be a string"],
		[["actor", "type"], null, "actor.type must be a string"],
		[["actor", "roles"], "finance", "actor.roles must be an array"],
		[["draft"], [], "draft must be an object"],
		[["approvals"], {}, "approvals must be an array"],
		[["context", "now"], "yesterday", "context.now must be an RFC 3339 time"],
		[["approval", "verdict"], "reject", "approval.verdict must be approve for action approve"],
	]

	every case in cases {
		[path, value, problem] := case
		d := order3.decision with input as json.patch(valid, [{"op": "replace", "path": path, "value": value}])

		some r in d.reasons
		r.rule == "decision.input_invalid"
		contains(r.message, problem)
	}
}

test_denied_verdict_does_not_match_action if {
	d := order3.decision with input as _input("approve", _manager, {"verdict": "reject", "role": "manager"}, [])

	_ids(d) == {"decision.input_invalid"}
}

test_denied_no_allow_reason if {
	d := order3.decision with input as _input("submit", _agent, null, [])
		with order3.accept as set()

	_well_formed(d)
	_ids(d) == {"decision.no_allow_reason"}
}

test_denied_approve_with_role_key_absent if {
	d := order3.decision with input as _input("approve", _manager, {"verdict": "approve"}, [])

	_ids(d) == {"approval.role_missing"}
}

test_denied_approve_actor_without_roles if {
	actor := json.remove(_manager, ["roles"])
	d := order3.decision with input as _input("approve", actor, _approve_as("manager"), [])

	_ids(d) == {"decision.input_invalid", "duties.not_an_approver", "duties.role_not_held"}
}

# --- the workflow the policy decides ------------------------------------------------

test_allowed_submit_sets_expiry_and_escalation_from_created_at if {
	d := order3.decision with input as _input("submit", _agent, null, [])

	_well_formed(d)
	d.expires_at == "2026-12-17T10:00:00.000000Z"
	d.escalation == {"at": "2026-12-06T10:00:00.000000Z", "to_role": "admin"}
}

test_allowed_patch_keeps_the_expiry_of_the_draft if {
	d := order3.decision with input as _input("patch", _agent, null, [])

	d.expires_at == "2026-12-17T10:00:00.000000Z"
}

test_denied_submit_sets_no_workflow if {
	d := order3.decision with input as _input("submit", _stranger, null, [])
		with data.settings.approval_tiers as {}

	d.allow == false
	d.expires_at == null
	d.escalation == null
}

test_allowed_other_actions_set_no_workflow if {
	approvals := [_recorded(_manager, "manager"), _recorded(_finance, "finance")]

	every action in ["execute", "dismiss"] {
		d := order3.decision with input as _input(action, _manager, null, approvals)

		d.allow == true
		d.expires_at == null
		d.escalation == null
	}
}

test_denied_submit_without_created_at if {
	inp := json.remove(_input("submit", _agent, null, []), ["draft/created_at"])
	d := order3.decision with input as inp

	_well_formed(d)
	_ids(d) == {"workflow.expiry_unavailable"}
}

test_denied_without_context_now if {
	inp := json.remove(_input("dismiss", _manager, null, []), ["context/now"])
	d := order3.decision with input as inp

	_ids(d) == {"decision.input_invalid"}
	some r in d.reasons
	contains(r.message, "context.now must be an RFC 3339 time")
}

# --- exclusions --------------------------------------------------------------------

test_allowed_submit_excludes_the_requester if {
	d := order3.decision with input as _input("submit", _agent, null, [])

	every q in d.required {
		q.excluded == ["prn_agent"]
	}
}

test_allowed_approve_excludes_who_approved if {
	d := order3.decision with input as _input("approve", _manager, _approve_as("manager"), [])

	d.required == [{"role": "finance", "count": 1, "excluded": ["prn_agent", "prn_manager"]}]
}

test_allowed_submit_excludes_the_supplier_creator if {
	inp := object.union(_input("submit", _agent, null, []), {"context": {"supplier": {"id": "sup_1", "status": "active", "created_by": "prn_clerk"}}})
	d := order3.decision with input as inp

	every q in d.required {
		q.excluded == ["prn_agent", "prn_clerk"]
	}
}

test_denied_approve_by_supplier_creator if {
	inp := object.union(_input("approve", _manager, _approve_as("manager"), []), {"context": {"supplier": {"id": "sup_1", "status": "active", "created_by": "prn_manager"}}})
	d := order3.decision with input as inp

	_ids(d) == {"suppliers.creator_cannot_approve"}
	d.required[0].excluded == ["prn_agent", "prn_manager"]
}

test_denied_execute_when_creator_approved if {
	approvals := [_recorded(_manager, "manager"), _recorded(_finance, "finance")]
	inp := object.union(_input("execute", _agent, null, approvals), {"context": {"supplier": {"id": "sup_1", "status": "active", "created_by": "prn_finance"}}})
	d := order3.decision with input as inp

	_ids(d) == {"execution.approvals_incomplete"}
	_needs(d) == [{"role": "finance", "count": 1}]
}

# --- composed rules ----------------------------------------------------------------

test_denied_submit_to_blocked_supplier if {
	blocked := data.settings.suppliers.blocked[0]
	d := order3.decision with input as object.union(_input("submit", _agent, null, []), {"draft": {"payload": {"supplier_id": blocked}}})

	_well_formed(d)
	_ids(d) == {"suppliers.blocked"}
}

test_allowed_submit_to_supplier_on_hold_reports_why_finance if {
	on_hold := data.settings.suppliers.on_hold[0]
	inp := _with_amount(object.union(_input("submit", _agent, null, []), {"draft": {"payload": {"supplier_id": on_hold}}}), 100)
	d := order3.decision with input as inp

	[r.rule | some r in d.reasons] == ["submit.accepted", "suppliers.on_hold_needs_finance"]
	_needs(d) == [{"role": "finance", "count": 1}, {"role": "manager", "count": 1}]
}

test_allowed_approve_above_quorum_overlay_reports_it if {
	overlay := data.settings.quorum.USD[0]
	prior := [_recorded(_finance, "finance"), _recorded({"id": "prn_fred", "type": "user", "roles": ["finance"]}, "finance")]
	third := {"id": "prn_fiona", "type": "user", "roles": ["finance"]}
	inp := _with_amount(_input("approve", third, _approve_as("finance"), prior), overlay.from_minor_units)
	d := order3.decision with input as inp

	d.allow == true
	[r.rule | some r in d.reasons] == ["approval.counted", "quorum.minimum_roles"]
	d.required == []
}

test_denied_execute_over_location_budget if {
	approvals := [_recorded(_manager, "manager"), _recorded(_finance, "finance")]
	budget := data.settings.location_budgets.default.USD
	inp := object.union(_input("execute", _manager, null, approvals), {"context": {"location_spend": {"executed_minor_units": budget}}})
	d := order3.decision with input as inp

	_ids(d) == {"budgets.monthly_budget_exceeded"}
}

test_denied_submit_over_agent_daily_limit if {
	limit := data.settings.agents.daily_spend_limit.USD
	inp := object.union(_input("submit", _agent, null, []), {"context": {"requester_daily_spend": {"submitted_minor_units": limit}}})
	d := order3.decision with input as inp

	_ids(d) == {"agents.daily_spend_exceeded"}
}

test_denied_execute_with_lapsed_approval if {
	old := object.union(_recorded(_manager, "manager"), {"decided_at": "2026-11-01T10:00:00Z"})
	d := order3.decision with input as _input("execute", _agent, null, [old, _recorded(_finance, "finance")])

	_ids(d) == {"approvals.expired", "execution.approvals_incomplete"}
	_needs(d) == [{"role": "manager", "count": 1}]
}

test_allowed_submit_large_adjustment_needs_finance if {
	inp := json.patch(_input("submit", _manager, null, []), [
		{"op": "replace", "path": "/draft/kind", "value": "adjustment"},
		{"op": "replace", "path": "/draft/requester", "value": {"id": "prn_manager", "type": "user"}},
		{"op": "replace", "path": "/draft/amount/minor_units", "value": data.settings.adjustments.from_minor_units.USD},
		{"op": "replace", "path": "/draft/payload", "value": {"sku": "SKU-1", "location_id": "loc_1", "quantity_delta": -1, "reason_code": "damaged", "unit_cost": {"minor_units": data.settings.adjustments.from_minor_units.USD, "currency": "USD"}}},
		{"op": "replace", "path": "/context/items", "value": {"SKU-1": {"category": "parts"}}},
	])
	d := order3.decision with input as inp

	[r.rule | some r in d.reasons] == ["submit.accepted", "adjustments.finance_required"]
	_needs(d) == [{"role": "finance", "count": 1}, {"role": "manager", "count": 1}]
}

# --- based-on records -----------------------------------------------------------------

_stale := {"context": {"records": [{"type": "item", "id": "SKU-1", "based_on_version": 1, "current_version": 2}]}}

test_denied_execute_of_a_draft_whose_item_changed if {
	approvals := [_recorded(_manager, "manager"), _recorded(_finance, "finance")]
	inp := object.union(_input("execute", _manager, null, approvals), _stale)

	d := order3.decision with input as inp

	_well_formed(d)
	_ids(d) == {"records.changed_since_drafted"}
}

test_denied_approve_of_a_draft_whose_item_changed if {
	inp := object.union(_input("approve", _manager, _approve_as("manager"), []), _stale)

	_ids(order3.decision) == {"records.changed_since_drafted"} with input as inp
}

test_allowed_reject_of_a_draft_whose_item_changed if {
	inp := object.union(_input("reject", _manager, {"verdict": "reject", "role": "manager"}, []), _stale)

	order3.decision.allow with input as inp
}

# --- facts ---------------------------------------------------------------------------

test_allowed_facts_of_the_rules_that_raised_the_requirement if {
	d := order3.decision with input as _with_amount(_input("submit", _agent, null, []), 499999)

	_well_formed(d)
	d.reasons[1] == {
		"rule": "quorum.two_person",
		"message": "at or above 250000 USD minor units two people must approve: finance x1 added",
		"facts": {
			"amount": {"minor_units": 499999, "currency": "USD"},
			"threshold": {"minor_units": 250000, "currency": "USD"},
			"role": "finance",
			"count": 1,
		},
	}
}

test_denied_facts_of_every_rule_that_fired if {
	limit := data.settings.agents.daily_spend_limit.USD
	inp := object.union(_input("submit", _agent, null, []), {"context": {
		"requester_daily_spend": {"submitted_minor_units": limit},
		"records": [{"type": "item", "id": "SKU-1", "based_on_version": 1, "current_version": 2}],
	}})
	d := order3.decision with input as inp

	_well_formed(d)
	{r.rule: r.facts | some r in d.reasons} == {
		"agents.daily_spend_exceeded": {
			"requester_id": "prn_agent",
			"day": "2026-12-03",
			"drafted_today": {"minor_units": limit, "currency": "USD"},
			"amount": {"minor_units": 1250000, "currency": "USD"},
			"total": {"minor_units": limit + 1250000, "currency": "USD"},
			"daily_limit": {"minor_units": limit, "currency": "USD"},
		},
		"records.changed_since_drafted": {"record_type": "item", "record_id": "SKU-1", "based_on_version": 1, "current_version": 2},
	}
}

# Facts sort first among a reason's keys; the reasons keep the order of rule and message.
test_denied_facts_do_not_reorder_reasons if {
	clerk := {"id": "prn_clerk", "type": "user", "roles": ["clerk"]}
	d := order3.decision with input as _input("approve", clerk, _approve_as("clerk"), [])

	_well_formed(d)
	[r.rule | some r in d.reasons] == ["duties.not_an_approver", "spend.approver_limit_not_configured", "approval.role_not_required"]
	d.reasons[1].facts == {"role": "clerk", "currency": "USD"}
}

test_allowed_facts_do_not_reorder_the_rules_that_raised_the_requirement if {
	inp := json.patch(_input("submit", _manager, null, []), [
		{"op": "replace", "path": "/draft/kind", "value": "adjustment"},
		{"op": "replace", "path": "/draft/requester", "value": {"id": "prn_manager", "type": "user"}},
		{"op": "replace", "path": "/draft/amount/minor_units", "value": 300000},
		{"op": "replace", "path": "/draft/payload", "value": {"sku": "SKU-1", "location_id": "loc_1", "quantity_delta": -1, "reason_code": "damaged", "unit_cost": {"minor_units": 300000, "currency": "USD"}}},
		{"op": "replace", "path": "/context/items", "value": {"SKU-1": {"category": "parts"}}},
	])
	d := order3.decision with input as inp with data.settings.adjustments.required as {"manager": 1}

	_well_formed(d)
	[r.rule | some r in d.reasons] == ["submit.accepted", "adjustments.finance_required", "quorum.two_person"]
	d.reasons[1].facts.required == ["1 manager approval"]
	not d.reasons[1].required
}
