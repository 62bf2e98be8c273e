package order3.records_test

import data.order3.records

_record(based_on, current) := {"type": "item", "id": "SKU-1", "based_on_version": based_on, "current_version": current}

_input(action, context_records) := {
	"action": action,
	"draft": {"kind": "purchase_order", "requester": {"id": "prn_buyer", "type": "user"}},
	"actor": {"id": "prn_manager", "type": "user", "roles": ["manager"]},
	"approval": null,
	"approvals": [],
	"context": {"now": "2026-12-03T10:06:00.000000Z", "records": context_records},
}

_ids(reasons) := {r.rule | some r in reasons}

test_allowed_records_at_the_versions_drafted if {
	inp := _input("execute", [_record(3, 3), {"type": "supplier", "id": "sup_1", "based_on_version": 1, "current_version": 1}])

	count(records.deny) == 0 with input as inp
	records.changed == set() with input as inp
}

test_allowed_records_named_without_a_version_are_not_compared if {
	count(records.deny) == 0 with input as _input("approve", [_record(null, 7)])
}

test_allowed_no_records if {
	count(records.deny) == 0 with input as _input("submit", [])
}

test_denied_changed_record_at_every_deciding_action if {
	every action in ["submit", "patch", "approve", "execute"] {
		_ids(records.deny) == {"records.changed_since_drafted"} with input as _input(action, [_record(3, 4)])
	}
}

test_denied_changed_record_message_names_both_versions if {
	[reason] := [r | some r in records.deny] with input as _input("execute", [_record(3, 4)])

	reason.message == "the draft is based on records that have changed since: item SKU-1 is at version 4, not 3"
}

test_denied_record_that_no_longer_exists if {
	[reason] := [r | some r in records.deny] with input as _input("approve", [_record(2, null)])

	contains(reason.message, "item SKU-1 no longer exists (the draft is based on version 2)")
}

test_denied_changed_record_facts_name_versions if {
	[reason] := [r | some r in records.deny] with input as _input("submit", [_record(3, 4)])

	reason.facts == {"record_type": "item", "record_id": "SKU-1", "based_on_version": 3, "current_version": 4}
}

test_denied_deleted_record_facts_have_no_current_version if {
	[reason] := [r | some r in records.deny] with input as _input("execute", [_record(2, null)])

	reason.facts == {"record_type": "item", "record_id": "SKU-1", "based_on_version": 2, "current_version": null}
}

test_denied_one_reason_per_changed_record if {
	supplier := {"type": "supplier", "id": "sup_1", "based_on_version": 1, "current_version": 2}
	inp := _input("approve", [_record(3, 4), _record(5, 5), supplier])

	{r.facts | some r in records.deny} == {
		{"record_type": "item", "record_id": "SKU-1", "based_on_version": 3, "current_version": 4},
		{"record_type": "supplier", "record_id": "sup_1", "based_on_version": 1, "current_version": 2},
	} with input as inp
	{r.message | some r in records.deny} == {
		"the draft is based on records that have changed since: item SKU-1 is at version 4, not 3",
		"the draft is based on records that have changed since: supplier sup_1 is at version 2, not 1",
	} with input as inp
}

test_allowed_reject_and_dismiss_of_a_stale_draft if {
	count(records.deny) == 0 with input as _input("reject", [_record(3, 4)])
	count(records.deny) == 0 with input as _input("dismiss", [_record(3, 4)])
}

test_denied_malformed_context if {
	_ids(records.deny) == {"records.context_invalid"} with input as _input("submit", null)
	_ids(records.deny) == {"records.context_invalid"} with input as _input("execute", [{"type": "item", "id": "SKU-1", "based_on_version": 0, "current_version": 1}])
	_ids(records.deny) == {"records.context_invalid"} with input as _input("approve", [{"type": "item", "based_on_version": 1, "current_version": 1}])
}

test_denied_missing_context if {
	inp := object.remove(_input("execute", []), ["context"])

	_ids(records.deny) == {"records.context_invalid"} with input as inp
}
