package order3.duties_test

import data.order3.duties

_draft := {
	"id": "drf_1",
	"kind": "purchase_order",
	"requester": {"id": "prn_requester", "type": "user"},
	"approval_owner": "prn_owner",
	"amount": {"minor_units": 100, "currency": "USD"},
}

_manager := {"id": "prn_manager", "type": "user", "roles": ["manager"]}

_agent := {"id": "prn_agent", "type": "agent", "roles": ["manager"]}

_requester := {"id": "prn_requester", "type": "user", "roles": ["manager"]}

_input(action, actor, approval, approvals) := {
	"action": action,
	"draft": _draft,
	"actor": actor,
	"approval": approval,
	"approvals": approvals,
	"context": {"now": "2026-12-03T10:06:00Z", "supplier": null},
}

_approve(actor) := _input("approve", actor, {"verdict": "approve", "role": "manager"}, [])

_reject(actor) := _input("reject", actor, {"verdict": "reject", "role": null}, [])

_ids(reasons) := {r.rule | some r in reasons}

# --- approve -------------------------------------------------------------------

test_allowed_manager_approves if {
	count(duties.deny) == 0 with input as _approve(_manager)
}

test_denied_requester_approves if {
	_ids(duties.deny) == {"duties.requester_cannot_approve"} with input as _approve(_requester)
}

test_denied_agent_approves if {
	_ids(duties.deny) == {"duties.agent_cannot_approve"} with input as _approve(_agent)
}

test_denied_requester_approves_facts if {
	[r] := [r | some r in duties.deny] with input as _approve(_requester)

	r.facts == {"actor_id": "prn_requester", "requester_id": "prn_requester"}
}

test_denied_agent_approves_facts if {
	[r] := [r | some r in duties.deny] with input as _approve(_agent)

	r.facts == {"actor_id": "prn_agent", "actor_type": "agent"}
}

test_denied_agent_requester_approves_gets_both if {
	agent_draft := object.union(_draft, {"requester": {"id": "prn_agent", "type": "agent"}})
	inp := object.union(_approve(_agent), {"draft": agent_draft})

	_ids(duties.deny) == {"duties.agent_cannot_approve", "duties.requester_cannot_approve"} with input as inp
}

test_denied_duplicate_approver if {
	prior := {"approver": _manager, "verdict": "approve", "role": "manager", "decided_at": "2026-12-03T10:05:00Z"}
	inp := _input("approve", object.union(_manager, {"roles": ["manager", "finance"]}), {"verdict": "approve", "role": "finance"}, [prior])

	_ids(duties.deny) == {"duties.duplicate_approver"} with input as inp
}

test_denied_duplicate_approver_facts if {
	prior := {"approver": _manager, "verdict": "approve", "role": "manager", "decided_at": "2026-12-03T10:05:00Z"}

	[r] := [r | some r in duties.deny] with input as _input("approve", _manager, {"verdict": "approve", "role": "manager"}, [prior])

	r.facts == {"actor_id": "prn_manager"}
}

test_allowed_prior_reject_is_not_duplicate if {
	prior := {"approver": _manager, "verdict": "reject", "role": null}

	count(duties.deny) == 0 with input as _input("approve", _manager, {"verdict": "approve", "role": "manager"}, [prior])
}

test_denied_role_not_held if {
	inp := _input("approve", _manager, {"verdict": "approve", "role": "finance"}, [])

	_ids(duties.deny) == {"duties.role_not_held"} with input as inp
}

test_denied_not_an_approver if {
	clerk := {"id": "prn_clerk", "type": "user", "roles": ["clerk"]}

	_ids(duties.deny) == {"duties.not_an_approver", "duties.role_not_held"} with input as _approve(clerk)
}

# --- reject --------------------------------------------------------------------

test_allowed_manager_rejects_without_role if {
	count(duties.deny) == 0 with input as _reject(_manager)
}

test_denied_requester_rejects if {
	_ids(duties.deny) == {"duties.requester_cannot_reject"} with input as _reject(_requester)
}

test_denied_agent_rejects if {
	_ids(duties.deny) == {"duties.agent_cannot_reject"} with input as _reject(_agent)
}

test_denied_requester_and_agent_reject_facts if {
	[r] := [r | some r in duties.deny] with input as _reject(_requester)
	[s] := [s | some s in duties.deny] with input as _reject(_agent)

	r.facts == {"actor_id": "prn_requester", "requester_id": "prn_requester"}
	s.facts == {"actor_id": "prn_agent", "actor_type": "agent"}
}

test_denied_reject_in_role_not_held if {
	inp := _input("reject", _manager, {"verdict": "reject", "role": "finance"}, [])

	_ids(duties.deny) == {"duties.role_not_held"} with input as inp
}

test_denied_reject_by_non_approver if {
	clerk := {"id": "prn_clerk", "type": "user", "roles": []}

	_ids(duties.deny) == {"duties.not_an_approver"} with input as _reject(clerk)
}

# --- submit, patch -------------------------------------------------------------------

test_allowed_agent_submits if {
	count(duties.deny) == 0 with input as _input("submit", _agent, null, [])
}

test_allowed_requester_patches if {
	count(duties.deny) == 0 with input as _input("patch", _requester, null, [])
}

test_denied_stranger_patches if {
	_ids(duties.deny) == {"duties.patch_not_requester"} with input as _input("patch", _manager, null, [])
}

# --- dismiss -------------------------------------------------------------------

test_allowed_dismiss_by_requester if {
	count(duties.deny) == 0 with input as _input("dismiss", _requester, null, [])
}

test_allowed_dismiss_by_owner if {
	owner := {"id": "prn_owner", "type": "user", "roles": []}

	count(duties.deny) == 0 with input as _input("dismiss", owner, null, [])
}

test_allowed_dismiss_by_admin if {
	admin := {"id": "prn_admin", "type": "user", "roles": ["admin"]}

	count(duties.deny) == 0 with input as _input("dismiss", admin, null, [])
}

test_denied_dismiss_by_stranger if {
	_ids(duties.deny) == {"duties.dismiss_not_permitted"} with input as _input("dismiss", _manager, null, [])
}

# --- recorded approvals ------------------------------------------------------------

test_allowed_independent_approval if {
	duties.independent_approval({"approver": _manager, "verdict": "approve", "role": "manager"}) with input as _approve(_manager)
}

test_denied_independent_approval_requester_agent_or_role if {
	inp := _approve(_manager)

	not duties.independent_approval({"approver": _requester, "role": "manager"}) with input as inp
	not duties.independent_approval({"approver": object.union(_agent, {"id": "prn_other"}), "role": "manager"}) with input as inp
	not duties.independent_approval({"approver": _manager, "role": "finance"}) with input as inp
	not duties.independent_approval({"approver": object.union(_manager, {"roles": ["admin"]}), "role": "admin"}) with input as inp
}

test_denied_rules_still_fire_without_role_settings if {
	settings := json.remove(data.settings, ["approver_roles", "dismiss_roles"])
	clerk := {"id": "prn_clerk", "type": "user", "roles": []}

	_ids(duties.deny) == {"duties.not_an_approver"} with input as _reject(clerk) with data.settings as settings
	_ids(duties.deny) == {"duties.dismiss_not_permitted"} with input as _input("dismiss", _manager, null, [])
		with data.settings as settings
}

# --- suppliers and lapsed approvals ----------------------------------------------------

test_denied_independent_approval_by_supplier_creator if {
	inp := object.union(_approve(_manager), {
		"draft": {"payload": {"supplier_id": "sup_1"}},
		"context": {"supplier": {"id": "sup_1", "status": "active", "created_by": "prn_manager"}},
	})

	not duties.independent_approval({"approver": _manager, "verdict": "approve", "role": "manager"}) with input as inp
}

test_allowed_lapsed_approval_may_be_renewed if {
	prior := {"approver": _manager, "verdict": "approve", "role": "manager", "decided_at": "2026-11-01T10:00:00Z"}
	inp := _input("approve", _manager, {"verdict": "approve", "role": "manager"}, [prior])

	count(duties.deny) == 0 with input as inp
}
