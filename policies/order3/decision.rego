# METADATA
# title: Order3 approval decision
# description: >-
#   Entrypoint data.order3.decision for the Order3 Approvals service (see
#   docs/policy-contract.md). Composes the spend, quorum, duties, supplier,
#   budget, agent, approval and execution rules and the pending-draft workflow;
#   allows only when no deny rule fires, and fails closed otherwise.
package order3

import data.order3.agents
import data.order3.approvals
import data.order3.budgets
import data.order3.duties
import data.order3.execution
import data.order3.quorum
import data.order3.records
import data.order3.spend
import data.order3.suppliers
import data.order3.workflow

decision := {
	"allow": allow,
	"outcome": outcome,
	"reasons": reasons,
	"required": required,
	"expires_at": expires_at,
	"escalation": escalation,
}

default allow := false

allow if count(_denials) == 0

outcome := "allowed" if {
	allow
} else := "denied"

# When allowed: the allow reason, then every rule that raised the requirement. A reason
# may carry facts, the values its rule compared; they never change the order (_ordered).
reasons := _ordered(_denials) if {
	count(_denials) > 0
} else := array.concat(_ordered(_accepts), _shaped_by)

# A pending draft's expiry and escalation, set by an allowed submit or patch only.
default expires_at := null

expires_at := workflow.expires_at if _sets_workflow

default escalation := null

escalation := workflow.escalation if _sets_workflow

# Approvals still needed after this action, as [{role, count, excluded}] sorted by role.
default required := []

required := _as_list(quorum.requirement, quorum.excluded) if input.action == "submit"

# A patch that leaves the content as it was keeps the approvals bound to it.
required := _as_list(execution.missing, quorum.excluded) if input.action == "patch"

required := _as_list(_missing_if_counted, quorum.excluded | {input.actor.id}) if {
	input.action == "approve"
	allow
}

required := _as_list(execution.missing, quorum.excluded) if {
	input.action == "approve"
	not allow
}

required := _as_list(execution.missing, quorum.excluded) if input.action == "execute"

# METADATA
# title: Unknown action
# description: Any action other than the six in the contract is refused.
# custom:
#   id: decision.unknown_action
deny contains reason if {
	not _known_action

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("action %v is not one of %v", [_action, sort(_known_actions)]),
	}
}

# METADATA
# title: Malformed input
# description: The decision input lacks a field the rules rely on, so nothing is allowed.
# custom:
#   id: decision.input_invalid
deny contains reason if {
	_known_action
	not _input_well_formed
	count(_input_problems) > 0

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("decision input is malformed: %v", [concat("; ", sort(_input_problems))]),
	}
}

# METADATA
# title: No rule allowed the action
# description: Safety net; a known action that no allow reason covers is refused.
# custom:
#   id: decision.no_allow_reason
deny contains reason if {
	_known_action
	count(_accepts) == 0

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("no rule allows action %v", [_action]),
	}
}

# METADATA
# title: Approval names no role
# description: An approval must say in which role the approver signs.
# custom:
#   id: approval.role_missing
deny contains reason if {
	input.action == "approve"
	is_object(input.approval)
	not _approval_role_named

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("approval role %v is not a role name", [object.get(input.approval, "role", null)]),
	}
}

# METADATA
# title: Role not required
# description: >-
#   An approval is refused when its role is not (or no longer) required, for
#   example a second manager approval when one manager suffices.
# custom:
#   id: approval.role_not_required
deny contains reason if {
	input.action == "approve"
	quorum.requirement

	role := input.approval.role
	is_string(role)
	not execution.missing[role]

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("role %v is not required; still required: %v", [role, _describe(execution.missing)]),
	}
}

# METADATA
# title: Submit accepted
# description: Reported when a submit is allowed.
# custom:
#   id: submit.accepted
accept contains reason if {
	input.action == "submit"

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("draft accepted; approvals required: %v", [_describe(_requirement)]),
	}
}

# METADATA
# title: Patch accepted
# description: |
#   Reported when a patch is allowed. Approvals given to other content no longer bind;
#   the service sends only those bound to the patched content.
# custom:
#   id: patch.accepted
accept contains reason if {
	input.action == "patch"

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("patch accepted; approvals required: %v", [_describe(execution.missing)]),
	}
}

# METADATA
# title: Approval counted
# description: Reported when an approval is allowed and counted toward the requirement.
# custom:
#   id: approval.counted
accept contains reason if {
	input.action == "approve"

	role := object.get(input, ["approval", "role"], null)

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("%v approval counted; still required: %v", [role, _describe(_missing_if_counted)]),
	}
}

# METADATA
# title: Reject accepted
# description: Reported when a rejection is allowed.
# custom:
#   id: reject.accepted
accept contains reason if {
	input.action == "reject"

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": "rejection accepted; the draft is rejected",
	}
}

# METADATA
# title: Dismiss accepted
# description: Reported when a dismissal is allowed.
# custom:
#   id: dismiss.accepted
accept contains reason if {
	input.action == "dismiss"

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("dismissed by %v", [object.get(input, ["actor", "id"], "<missing>")]),
	}
}

_known_actions := {"submit", "patch", "approve", "reject", "execute", "dismiss"}

default _action := null

_action := input.action

_known_action if input.action in _known_actions

_denials := union({
	deny, spend.deny, quorum.deny, duties.deny, suppliers.deny, budgets.deny,
	agents.deny, approvals.deny, execution.deny, workflow.deny, records.deny,
})

_accepts := accept | execution.accept

default _requirement := {}

_requirement := quorum.requirement

_sets_workflow if {
	allow
	input.action in {"submit", "patch"}
}

# The rules that raised the requirement above the spend tier, as reasons (with their facts).
default _shaped_by := []

_shaped_by := [object.remove(item, {"required"}) | some item in _ordered(quorum.contributions)] if {
	input.action in {"submit", "patch", "approve", "execute"}
	count(quorum.contributions) > 0
}

# A set of reasons as an array, in the order of the reasons without their facts: the order
# the set alone gave before reasons carried facts, which sort first by their key. A single
# reason (the usual allowed decision) needs no sorting, so that case is tried first.
_ordered(items) := [item | some item in items] if {
	count(items) < 2
} else := [pair[1] | some pair in sort([[object.remove(item, {"facts"}), item] | some item in items])]

# What is still missing once the approval being decided is counted: one less of its role.
_missing_if_counted[role] := left if {
	counted := object.get(input, ["approval", "role"], null)
	some role, before in execution.missing

	left := before - to_number(role == counted)

	left > 0
}

# Negations go through helper rules: `not f(x)` with x undefined is itself
# undefined, which would let a deny rule silently not fire.
_approval_role_named if is_string(input.approval.role)

# The shapes _shape checks one by one, all at once: a well-formed input (the usual case)
# has no _input_problems, and they are only listed when it is not.
_input_well_formed if {
	is_string(input.actor.id)
	is_string(input.actor.type)
	is_array(input.actor.roles)
	is_object(input.draft)
	is_string(input.draft.requester.id)
	is_array(input.approvals)
	time.parse_rfc3339_ns(input.context.now)
	_verdict_matches
}

_verdict_matches if not input.action in {"approve", "reject"}

_verdict_matches if _shape.verdict

_input_problems contains "actor.id must be a string" if not _shape.actor_id

_input_problems contains "actor.type must be a string" if not _shape.actor_type

_input_problems contains "actor.roles must be an array" if not _shape.actor_roles

_input_problems contains "draft must be an object" if not _shape.draft

_input_problems contains "draft.requester.id must be a string" if not _shape.requester_id

_input_problems contains "approvals must be an array" if not _shape.approvals

_input_problems contains "context.now must be an RFC 3339 time" if not _shape.now

_input_problems contains msg if {
	input.action in {"approve", "reject"}
	not _shape.verdict

	msg := sprintf("approval.verdict must be %v for action %v", [input.action, input.action])
}

_shape["actor_id"] if is_string(input.actor.id)

_shape["actor_type"] if is_string(input.actor.type)

_shape["actor_roles"] if is_array(input.actor.roles)

_shape["draft"] if is_object(input.draft)

_shape["requester_id"] if is_string(input.draft.requester.id)

_shape["approvals"] if is_array(input.approvals)

_shape["now"] if time.parse_rfc3339_ns(input.context.now)

_shape["verdict"] if input.approval.verdict == input.action

_as_list(counts, excluded) := [{"role": role, "count": counts[role], "excluded": sorted} |
	sorted := sort(excluded)
	some role in sort(object.keys(counts))
]

_describe(counts) := "nothing" if {
	count(counts) == 0
} else := concat(", ", [sprintf("%v x%d", [role, counts[role]]) | some role in sort(object.keys(counts))])
