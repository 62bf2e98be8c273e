# METADATA
# title: Quorum
# description: >-
#   The whole approval requirement of a draft: its spend tier, raised to the minimums of
#   the quorum overlays, suppliers on hold and large adjustments, then topped up so that
#   an agent's draft gets a human approval and a draft at or above the two-person
#   threshold gets approvals from at least two people.
package order3.quorum

import data.order3.adjustments
import data.order3.agents
import data.order3.approvals
import data.order3.spend
import data.order3.suppliers

# requirement: role -> count, everything the draft needs. Undefined when the spend tier
# cannot be computed (a spend rule then denies).
requirement := _merged if {
	spend.requirement
	_short <= 0
} else := object.union(_merged, {_top_up_role: object.get(_merged, _top_up_role, 0) + _short}) if {
	spend.requirement
	_short > 0
}

# contributions: every rule that raised the requirement above the spend tier, as
# {rule, message, required}; decisions report them next to the allow reason.
contributions := _raised | _top_ups

# excluded: principals who may fill none of the required approvals: the requester, the
# supplier's creator, and whoever already gave an approval that still counts (one
# person fills one place, so two approvals always mean two people).
excluded contains input.draft.requester.id

excluded contains suppliers.creator if input.draft.kind == "purchase_order"

excluded contains approval.approver.id if {
	some approval in input.approvals
	approval.verdict == "approve"

	approvals.fresh(approval)
}

# METADATA
# title: Quorum overlay
# description: >-
#   At or above an amount in data.settings.quorum for the draft's currency, at least the
#   roles and counts the overlay names are required, whatever the tier asks.
# custom:
#   id: quorum.minimum_roles
#   explanation: the total of {amount} is at or above {threshold}, from which the draft needs at least {required}
_overlays contains item if {
	amount := spend.amount
	some overlay in data.settings.quorum[amount.currency]
	amount.minor_units >= overlay.from_minor_units

	item := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("at or above %d %v minor units at least %v are required", [overlay.from_minor_units, amount.currency, _describe(overlay.required)]),
		"required": overlay.required,
		"facts": {
			"amount": spend.money(amount.minor_units),
			"threshold": spend.money(overlay.from_minor_units),
			"required": _approvals(overlay.required),
		},
	}
}

# METADATA
# title: Two-person approval
# description: >-
#   At or above data.settings.two_person.from_minor_units for the draft's currency, at
#   least two people must approve; when the tier asks for fewer approvals, the
#   difference is asked of data.settings.two_person.role.
# custom:
#   id: quorum.two_person
#   explanation: the total of {amount} is at or above {threshold}, from which two people must approve, so the {role} approvals needed go up by {count}
_top_ups contains item if {
	_short > 0
	_two_person

	item := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("at or above %d %v minor units two people must approve: %v x%d added", [_two_person_from, spend.amount.currency, _top_up_role, _short]),
		"required": {_top_up_role: _short},
		"facts": {
			"amount": spend.money(spend.amount.minor_units),
			"threshold": spend.money(_two_person_from),
			"role": _top_up_role,
			"count": _short,
		},
	}
}

# METADATA
# title: Agent drafts need a human approval
# description: >-
#   A draft an agent requested always needs at least one approval (agents' approvals
#   never count); when the requirement would be empty, one approval of
#   data.settings.agents.human_role is required.
# custom:
#   id: agents.human_approval_required
#   explanation: an agent ({requester_id}) requested this draft and a human must approve it, so the {role} approvals needed go up by {count}
_top_ups contains item if {
	_short > 0
	not _two_person
	agents.needs_human

	item := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("an agent requested this draft: %v x%d added so that a human approves", [_top_up_role, _short]),
		"required": {_top_up_role: _short},
		"facts": {
			"requester_id": object.get(input, ["draft", "requester", "id"], "<missing>"),
			"role": _top_up_role,
			"count": _short,
		},
	}
}

# METADATA
# title: Quorum cannot be computed
# description: >-
#   Catch-all that keeps the policy closed when the spend tier is known but the whole
#   requirement is not (for example, a top-up role missing from the settings).
# custom:
#   id: quorum.requirement_unavailable
deny contains reason if {
	input.action in {"submit", "patch", "approve", "execute"}
	spend.requirement
	not requirement

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": "the approvals this draft requires cannot be computed from the quorum settings",
	}
}

# The rules that raise the spend tier to a minimum of their own (top-ups come after).
_raised := (_overlays | suppliers.contribution) | adjustments.contribution

# The spend tier with each role raised to the highest count any raising rule asks; just
# the tier when none does.
_merged := tier if {
	count(_raised) == 0
	tier := spend.requirement
	is_object(tier)
} else := {role: max(counts) |
	some source in _sources
	some role, _ in source

	counts := [n | some other in _sources; n := other[role]]
}

_sources := array.concat([spend.requirement], [item.required | some item in _raised])

_two_person_from := data.settings.two_person.from_minor_units[spend.amount.currency]

_two_person if {
	amount := spend.amount
	amount.minor_units >= data.settings.two_person.from_minor_units[amount.currency]
}

# The fewest people who must approve: 2 from the two-person threshold, 1 for an agent's draft.
_minimum := 2 if {
	_two_person
} else := 1 if {
	agents.needs_human
} else := 0

_short := _minimum - sum([n | some n in _merged])

_top_up_role := data.settings.two_person.role if _two_person

_top_up_role := data.settings.agents.human_role if not _two_person

_describe(counts) := concat(", ", [sprintf("%v x%d", [role, counts[role]]) | some role in sort(object.keys(counts))])

# The approvals in counts as words for a reason's facts, sorted by role: ["3 finance approvals"].
_approvals(counts) := [_approval_words(role, counts[role]) | some role in sort(object.keys(counts))]

_approval_words(role, 1) := sprintf("1 %v approval", [role])

_approval_words(role, n) := sprintf("%d %v approvals", [n, role]) if n != 1
