package order3.quorum_test

import data.order3.quorum

_two_person := data.settings.two_person.from_minor_units.USD

_overlay := data.settings.quorum.USD[0]

_input(type, minor) := {
	"action": "submit",
	"draft": {
		"id": "drf_1",
		"kind": "purchase_order",
		"requester": {"id": "prn_requester", "type": type},
		"approval_owner": "prn_owner",
		"amount": {"minor_units": minor, "currency": "USD"},
		"payload": {"supplier_id": "sup_1", "location_id": "loc_1", "currency": "USD", "lines": []},
	},
	"actor": {"id": "prn_requester", "type": type, "roles": []},
	"approval": null,
	"approvals": [],
	"context": {"now": "2026-12-03T10:06:00Z", "supplier": null},
}

_rules(inp) := rules if {
	rules := {c.rule | some c in quorum.contributions} with input as inp
}

_total(requirement) := sum([n | some n in requirement])

# --- two-person approval -------------------------------------------------------------

test_allowed_one_below_two_person_needs_one if {
	inp := _input("user", _two_person - 1)

	quorum.requirement == {"manager": 1} with input as inp
	_rules(inp) == set()
}

test_allowed_at_two_person_needs_two if {
	inp := _input("user", _two_person)

	quorum.requirement == {"manager": 1, data.settings.two_person.role: 1} with input as inp
	_rules(inp) == {"quorum.two_person"}
}

test_allowed_two_person_facts_name_values if {
	[item] := [c | some c in quorum.contributions] with input as _input("user", _two_person + 1)

	item.facts == {
		"amount": {"minor_units": _two_person + 1, "currency": "USD"},
		"threshold": {"minor_units": _two_person, "currency": "USD"},
		"role": data.settings.two_person.role,
		"count": 1,
	}
}

test_allowed_two_person_facts_count_what_was_added if {
	tiers := {"USD": [{"from_minor_units": 0, "required": {}}]}

	[item] := [c | some c in quorum.contributions] with input as _input("user", _two_person)
		with data.settings.approval_tiers as tiers

	item.facts.count == 2
}

test_allowed_two_person_not_added_when_tier_has_two if {
	inp := _input("user", 500000)

	quorum.requirement == {"manager": 1, "finance": 1} with input as inp
	_rules(inp) == set()
}

test_allowed_two_person_tops_up_an_existing_role if {
	tiers := {"USD": [{"from_minor_units": 0, "required": {"finance": 1}}]}

	quorum.requirement == {"finance": 2} with input as _input("user", _two_person)
		with data.settings.approval_tiers as tiers
}

# --- quorum overlay ----------------------------------------------------------------

test_allowed_one_below_overlay if {
	inp := _input("user", _overlay.from_minor_units - 1)

	quorum.requirement == {"finance": 2} with input as inp
	_rules(inp) == set()
}

test_allowed_at_overlay if {
	inp := _input("user", _overlay.from_minor_units)

	quorum.requirement == object.union({"finance": 2}, _overlay.required) with input as inp
	_rules(inp) == {"quorum.minimum_roles"}
}

test_allowed_overlay_facts_name_values if {
	overlays := {"USD": [{"from_minor_units": 10000000, "required": {"finance": 3, "manager": 1}}]}

	[item] := [c | some c in quorum.contributions] with input as _input("user", 12000000)
		with data.settings.quorum as overlays

	item.facts == {
		"amount": {"minor_units": 12000000, "currency": "USD"},
		"threshold": {"minor_units": 10000000, "currency": "USD"},
		"required": ["3 finance approvals", "1 manager approval"],
	}
}

test_allowed_overlay_adds_roles_the_tier_lacks if {
	overlays := {"USD": [{"from_minor_units": 0, "required": {"finance": 1}}]}

	quorum.requirement == {"manager": 1, "finance": 1} with input as _input("user", 1)
		with data.settings.quorum as overlays
}

# --- agents ----------------------------------------------------------------------------

test_allowed_agent_draft_keeps_its_tier if {
	inp := _input("agent", 1)

	quorum.requirement == {"manager": 1} with input as inp
	_rules(inp) == set()
}

test_allowed_agent_draft_with_empty_tier_needs_a_human if {
	tiers := {"USD": [{"from_minor_units": 0, "required": {}}]}
	inp := _input("agent", 1)

	quorum.requirement == {data.settings.agents.human_role: 1} with input as inp with data.settings.approval_tiers as tiers
	_rules(inp) == {"agents.human_approval_required"} with data.settings.approval_tiers as tiers
}

test_allowed_agent_draft_facts_name_the_role_added if {
	tiers := {"USD": [{"from_minor_units": 0, "required": {}}]}

	[item] := [c | some c in quorum.contributions] with input as _input("agent", 1)
		with data.settings.approval_tiers as tiers

	item.facts == {"requester_id": "prn_requester", "role": data.settings.agents.human_role, "count": 1}
}

test_allowed_user_draft_with_empty_tier_needs_nothing if {
	tiers := {"USD": [{"from_minor_units": 0, "required": {}}]}

	quorum.requirement == {} with input as _input("user", 1) with data.settings.approval_tiers as tiers
}

# --- merging and exclusions -----------------------------------------------------------

test_allowed_on_hold_and_adjustment_merge_by_maximum if {
	inp := object.union(_input("user", 500000), {"context": {"supplier": {"id": "sup_1", "status": "on_hold", "created_by": "prn_clerk"}}})

	quorum.requirement == {"manager": 1, "finance": 1} with input as inp
	_rules(inp) == {"suppliers.on_hold_needs_finance"}
}

test_allowed_excluded_names_requester_creator_and_fresh_approvers if {
	fresh := {"approver": {"id": "prn_fay", "type": "user", "roles": ["finance"]}, "verdict": "approve", "role": "finance", "decided_at": "2026-12-03T10:00:00Z"}
	stale := object.union(fresh, {"approver": {"id": "prn_old"}, "decided_at": "2026-11-01T10:00:00Z"})
	rejected := object.union(fresh, {"approver": {"id": "prn_no"}, "verdict": "reject"})
	inp := object.union(_input("user", 1), {
		"approvals": [fresh, stale, rejected],
		"context": {"supplier": {"id": "sup_1", "status": "active", "created_by": "prn_clerk"}},
	})

	quorum.excluded == {"prn_requester", "prn_clerk", "prn_fay"} with input as inp
}

test_denied_requirement_unavailable_without_top_up_role if {
	settings := json.remove(data.settings, ["two_person/role"])
	inp := _input("user", _two_person)

	{r.rule | some r in quorum.deny} == {"quorum.requirement_unavailable"} with input as inp with data.settings as settings
	not quorum.requirement with input as inp with data.settings as settings
}

# --- settings sanity -----------------------------------------------------------------

test_valid_settings_overlays_and_two_person_use_approver_roles if {
	data.settings.two_person.role in data.settings.approver_roles
	every _, overlays in data.settings.quorum {
		every overlay in overlays {
			every role, n in overlay.required {
				role in data.settings.approver_roles
				n > 0
			}
		}
	}
}
