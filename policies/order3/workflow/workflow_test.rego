package order3.workflow_test

import data.order3.workflow

_input(action, kind, created_at) := {
	"action": action,
	"draft": {"id": "drf_1", "kind": kind, "created_at": created_at},
	"context": {"now": created_at},
}

_created := "2026-12-03T10:00:00.123456Z"

_plus(seconds) := time.format([time.parse_rfc3339_ns(_created) + (seconds * 1000000000), "UTC", "2006-01-02T15:04:05.000000Z"])

test_allowed_expiry_from_default_seconds if {
	seconds := data.settings.workflow.pending_seconds.default

	workflow.expires_at == _plus(seconds) with input as _input("submit", "purchase_order", _created)
}

test_allowed_expiry_per_kind if {
	seconds := data.settings.workflow.pending_seconds.count_task

	workflow.expires_at == _plus(seconds) with input as _input("submit", "count_task", _created)
}

test_allowed_expiry_keeps_microseconds_and_utc if {
	workflow.expires_at == "2026-12-17T10:00:00.123456Z" with input as _input("submit", "purchase_order", _created)
		with data.settings.workflow.pending_seconds as {"default": 1209600}
}

test_allowed_escalation_before_expiry if {
	escalation := data.settings.workflow.escalation.default

	workflow.escalation == {"at": _plus(escalation.after_seconds), "to_role": escalation.to_role} with input as _input("patch", "purchase_order", _created)
}

test_allowed_no_escalation_at_or_after_expiry if {
	settings := {
		"pending_seconds": {"default": 60},
		"escalation": {"default": {"after_seconds": 60, "to_role": "admin"}},
	}

	workflow.escalation == null with input as _input("submit", "purchase_order", _created)
		with data.settings.workflow as settings
}

test_allowed_no_escalation_configured if {
	settings := {"pending_seconds": {"default": 60}, "escalation": {}}

	workflow.escalation == null with input as _input("submit", "purchase_order", _created)
		with data.settings.workflow as settings
}

test_denied_expiry_unavailable_without_created_at if {
	inp := json.remove(_input("submit", "purchase_order", _created), ["draft/created_at"])

	{r.rule | some r in workflow.deny} == {"workflow.expiry_unavailable"} with input as inp
}

test_denied_expiry_unavailable_without_settings if {
	{r.rule | some r in workflow.deny} == {"workflow.expiry_unavailable"} with input as _input("patch", "count_task", _created)
		with data.settings.workflow as {}
}

test_allowed_expiry_not_required_for_other_actions if {
	count(workflow.deny) == 0 with input as json.remove(_input("approve", "purchase_order", _created), ["draft/created_at"])
}

test_valid_settings_pending_times_are_positive if {
	every _, seconds in data.settings.workflow.pending_seconds {
		seconds > 0
	}
	every _, escalation in data.settings.workflow.escalation {
		escalation.after_seconds > 0
		is_string(escalation.to_role)
	}
}
