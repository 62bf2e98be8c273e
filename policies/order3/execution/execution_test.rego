package order3.execution_test

import data.order3.execution

_draft(minor) := {
	"id": "drf_1",
	"kind": "purchase_order",
	"requester": {"id": "prn_agent", "type": "agent"},
	"approval_owner": "prn_manager",
	"amount": {"minor_units": minor, "currency": "USD"},
}

_approval(id, role) := {
	"approver": {"id": id, "type": "user", "roles": [role]},
	"verdict": "approve",
	"role": role,
	"decided_at": "2026-12-03T10:05:00.000000Z",
}

_manager := _approval("prn_manager", "manager")

_finance := _approval("prn_finance", "finance")

_execute(minor, approvals) := {
	"action": "execute",
	"draft": _draft(minor),
	"actor": {"id": "prn_agent", "type": "agent", "roles": []},
	"approval": null,
	"approvals": approvals,
	"context": {"now": "2026-12-03T10:06:00.000000Z", "supplier": null},
}

_ids(reasons) := {r.rule | some r in reasons}

test_allowed_execute_small_with_manager if {
	inp := _execute(249999, [_manager])

	count(execution.deny) == 0 with input as inp
	execution.missing == {} with input as inp
	_ids(execution.accept) == {"execution.approvals_complete"} with input as inp
}

test_allowed_execute_large_with_manager_and_finance if {
	inp := _execute(500000, [_manager, _finance])

	count(execution.deny) == 0 with input as inp
	execution.given == {"manager": 1, "finance": 1} with input as inp
}

test_allowed_given_counts_approvers_per_role if {
	second_finance := _approval("prn_finance_2", "finance")
	inp := _execute(500000, [_manager, _finance, second_finance, _finance])

	execution.given == {"manager": 1, "finance": 2} with input as inp
}

test_denied_execute_without_approvals if {
	inp := _execute(1, [])

	_ids(execution.deny) == {"execution.approvals_incomplete"} with input as inp
	execution.missing == {"manager": 1} with input as inp
}

test_denied_execute_large_missing_finance if {
	inp := _execute(500000, [_manager])

	_ids(execution.deny) == {"execution.approvals_incomplete"} with input as inp
	execution.missing == {"finance": 1} with input as inp
}

test_denied_execute_incomplete_message_lists_roles if {
	some r in execution.deny with input as _execute(500000, [])
	r.message == "approvals still required before execution: finance x1, manager x1"
}

test_denied_execute_incomplete_facts_list_what_is_missing if {
	[r] := [r | some r in execution.deny] with input as _execute(500000, [])

	r.facts == {"missing": ["1 finance approval", "1 manager approval"]}
}

test_denied_execute_incomplete_facts_count_in_words if {
	settings := object.union(data.settings, {"approval_tiers": {"USD": [{"from_minor_units": 0, "required": {"manager": 3}}]}})

	[r] := [r | some r in execution.deny] with input as _execute(1, [_manager]) with data.settings as settings

	r.facts == {"missing": ["2 manager approvals"]}
}

test_denied_execute_rejection_does_not_count if {
	rejected := object.union(_manager, {"verdict": "reject"})

	_ids(execution.deny) == {"execution.approvals_incomplete"} with input as _execute(1, [rejected])
}

test_denied_execute_requester_approval_does_not_count if {
	own := _approval("prn_agent", "manager")

	_ids(execution.deny) == {"execution.approvals_incomplete"} with input as _execute(1, [own])
}

test_denied_execute_agent_approval_does_not_count if {
	agent := object.union(_approval("prn_bot", "manager"), {"approver": {"type": "agent"}})

	_ids(execution.deny) == {"execution.approvals_incomplete"} with input as _execute(1, [agent])
}

test_denied_execute_approval_over_current_limit_does_not_count if {
	# Pins tiers that still ask for a manager above the manager limit.
	inp := _execute(2500001, [_manager, _finance])
	tiers := {"USD": [{"from_minor_units": 0, "required": {"manager": 1}}, {"from_minor_units": 500000, "required": {"finance": 1, "manager": 1}}]}

	_ids(execution.deny) == {"execution.approvals_incomplete"} with input as inp with data.settings.approval_tiers as tiers
	execution.missing == {"manager": 1} with input as inp with data.settings.approval_tiers as tiers
}

test_denied_execute_duplicate_approver_counts_once if {
	inp := _execute(1, [_manager, _manager])
	settings := object.union(data.settings, {"approval_tiers": {"USD": [{"from_minor_units": 0, "required": {"manager": 2}}]}})

	execution.given == {"manager": 1} with input as inp with data.settings as settings
	_ids(execution.deny) == {"execution.approvals_incomplete"} with input as inp with data.settings as settings
}

test_allowed_execute_null_amount_with_manager if {
	inp := json.patch(_execute(1, [_manager]), [
		{"op": "replace", "path": "/draft/amount", "value": null},
		{"op": "replace", "path": "/draft/kind", "value": "count_task"},
	])

	count(execution.deny) == 0 with input as inp
}

test_allowed_execution_rules_ignore_other_actions if {
	inp := object.union(_execute(1, []), {"action": "submit"})

	count(execution.deny) == 0 with input as inp
	count(execution.accept) == 0 with input as inp
}
