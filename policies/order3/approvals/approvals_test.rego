package order3.approvals_test

import data.order3.approvals

_now := "2026-12-10T10:00:00.000000Z"

# Exactly the maximum age (7 days by the settings) before _now.
_at_max_age := "2026-12-03T10:00:00.000000Z"

_approval(id, decided_at) := {
	"approver": {"id": id, "type": "user", "roles": ["manager"]},
	"verdict": "approve",
	"role": "manager",
	"decided_at": decided_at,
}

_execute(approvals) := {
	"action": "execute",
	"draft": {
		"id": "drf_1",
		"kind": "count_task",
		"requester": {"id": "prn_requester", "type": "user"},
		"approval_owner": "prn_owner",
		"amount": null,
	},
	"actor": {"id": "prn_manager", "type": "user", "roles": ["manager"]},
	"approval": null,
	"approvals": approvals,
	"context": {"now": _now, "supplier": null},
}

_ids(reasons) := {r.rule | some r in reasons}

test_allowed_fresh_one_microsecond_before_max_age if {
	approvals.fresh(_approval("prn_a", "2026-12-03T10:00:00.000001Z")) with input as _execute([])
}

test_denied_fresh_at_max_age if {
	not approvals.fresh(_approval("prn_a", _at_max_age)) with input as _execute([])
}

test_denied_fresh_after_max_age if {
	not approvals.fresh(_approval("prn_a", "2026-12-01T00:00:00Z")) with input as _execute([])
}

test_denied_fresh_without_setting if {
	settings := json.remove(data.settings, ["approval_max_age_days"])

	not approvals.fresh(_approval("prn_a", "2026-12-10T09:00:00Z")) with input as _execute([]) with data.settings as settings
}

test_denied_fresh_with_unparseable_time if {
	not approvals.fresh(_approval("prn_a", "yesterday")) with input as _execute([])
}

test_denied_execute_with_lapsed_approval if {
	inp := _execute([_approval("prn_manager", _at_max_age)])

	_ids(approvals.deny) == {"approvals.expired"} with input as inp
	approvals.lapsed == {_approval("prn_manager", _at_max_age)} with input as inp
}

test_denied_expired_message_names_approvers if {
	some r in approvals.deny with input as _execute([_approval("prn_manager", _at_max_age)])
	r.message == "approvals by [\"prn_manager\"] are older than 7 days and no longer count"
}

test_denied_expired_facts_name_values if {
	inp := _execute([_approval("prn_manager", _at_max_age), _approval("prn_ann", "2026-11-01T00:00:00Z")])

	[r] := [r | some r in approvals.deny] with input as inp

	r.facts == {
		"approvers": ["prn_ann", "prn_manager"],
		"decided_at": ["2026-11-01T00:00:00Z", _at_max_age],
		"max_age_days": 7,
		"now": _now,
	}
}

test_allowed_lapsed_approval_ignored_when_nothing_missing if {
	inp := _execute([_approval("prn_old", _at_max_age), _approval("prn_manager", "2026-12-09T10:00:00Z")])

	count(approvals.deny) == 0 with input as inp
}

test_allowed_lapsed_rejection_is_not_reported if {
	rejected := object.union(_approval("prn_manager", _at_max_age), {"verdict": "reject"})

	approvals.lapsed == set() with input as _execute([rejected])
}

test_valid_settings_max_age_is_positive if {
	data.settings.approval_max_age_days > 0
}
