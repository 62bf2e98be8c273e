package order3.agents_test

import data.order3.agents

_limit := data.settings.agents.daily_spend_limit.USD

_input(action, type, minor, drafted) := {
	"action": action,
	"draft": {
		"id": "drf_1",
		"kind": "purchase_order",
		"requester": {"id": "prn_bot", "type": type},
		"approval_owner": "prn_owner",
		"amount": {"minor_units": minor, "currency": "USD"},
	},
	"actor": {"id": "prn_bot", "type": type, "roles": []},
	"approval": null,
	"approvals": [],
	"context": {
		"now": "2026-12-03T23:59:59.999999Z",
		"requester_daily_spend": {"day": "2026-12-03", "currency": "USD", "submitted_minor_units": drafted},
	},
}

_ids(reasons) := {r.rule | some r in reasons}

test_allowed_one_below_daily_limit if {
	count(agents.deny) == 0 with input as _input("submit", "agent", 100, _limit - 101)
}

test_allowed_at_daily_limit if {
	count(agents.deny) == 0 with input as _input("patch", "agent", 100, _limit - 100)
}

test_denied_one_above_daily_limit if {
	every action in {"submit", "patch"} {
		_ids(agents.deny) == {"agents.daily_spend_exceeded"} with input as _input(action, "agent", 100, _limit - 99)
	}
}

test_denied_daily_spend_facts_name_values if {
	[r] := [r | some r in agents.deny] with input as _input("submit", "agent", 100, _limit - 99)

	r.rule == "agents.daily_spend_exceeded"
	r.facts == {
		"requester_id": "prn_bot",
		"day": "2026-12-03",
		"drafted_today": {"minor_units": _limit - 99, "currency": "USD"},
		"amount": {"minor_units": 100, "currency": "USD"},
		"total": {"minor_units": _limit + 1, "currency": "USD"},
		"daily_limit": {"minor_units": _limit, "currency": "USD"},
	}
}

test_allowed_users_have_no_daily_limit if {
	count(agents.deny) == 0 with input as _input("submit", "user", _limit + 1, 0)
}

test_allowed_limit_not_checked_after_submit if {
	count(agents.deny) == 0 with input as _input("approve", "agent", _limit + 1, 0)
	count(agents.deny) == 0 with input as _input("execute", "agent", _limit + 1, 0)
}

test_allowed_null_amount_not_capped if {
	inp := json.patch(_input("submit", "agent", 1, 0), [
		{"op": "replace", "path": "/draft/amount", "value": null},
		{"op": "remove", "path": "/context/requester_daily_spend"},
	])

	count(agents.deny) == 0 with input as inp
}

test_denied_currency_without_limit if {
	inp := json.patch(_input("submit", "agent", 1, 0), [
		{"op": "replace", "path": "/draft/amount/currency", "value": "JPY"},
		{"op": "replace", "path": "/context/requester_daily_spend/currency", "value": "JPY"},
	])

	_ids(agents.deny) == {"agents.daily_limit_not_configured"} with input as inp
}

test_denied_daily_spend_missing_or_for_another_day if {
	missing := json.remove(_input("submit", "agent", 1, 0), ["context/requester_daily_spend"])
	yesterday := object.union(_input("submit", "agent", 1, 0), {"context": {"requester_daily_spend": {"day": "2026-12-02"}}})
	negative := _input("submit", "agent", 1, -1)

	_ids(agents.deny) == {"agents.daily_spend_unknown"} with input as missing
	_ids(agents.deny) == {"agents.daily_spend_unknown"} with input as yesterday
	_ids(agents.deny) == {"agents.daily_spend_unknown"} with input as negative
}

test_allowed_needs_human_only_for_agents if {
	agents.needs_human with input as _input("submit", "agent", 1, 0)
	not agents.needs_human with input as _input("submit", "user", 1, 0)
}

test_valid_settings_human_role_is_an_approver_role if {
	data.settings.agents.human_role in data.settings.approver_roles
}
