# METADATA
# title: Separation of duties
# description: >-
#   Who may approve, reject, patch and dismiss a draft: requesters never decide
#   their own drafts, agents never decide at all, an approver approves once and
#   only in a role they hold.
package order3.duties

import data.order3.approvals
import data.order3.suppliers

# independent_approval(approval) holds when a recorded approval still satisfies
# separation of duties: not given by the requester, an agent or the supplier's creator,
# in an approver role the approver holds.
independent_approval(approval) if {
	approval.approver.id != input.draft.requester.id
	approval.approver.type != "agent"
	approval.role in approval.approver.roles
	approval.role in data.settings.approver_roles

	not _created_supplier(approval.approver.id)
}

# METADATA
# title: Requester cannot approve
# description: The requester of a draft can never approve it.
# custom:
#   id: duties.requester_cannot_approve
#   explanation: the requester of this draft, {actor_id}, cannot approve it
deny contains reason if {
	input.action == "approve"
	_is_requester

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("%v requested this draft and cannot approve it", [_actor_id]),
		"facts": {"actor_id": _actor_id, "requester_id": input.draft.requester.id},
	}
}

# METADATA
# title: Requester cannot reject
# description: The requester of a draft can never reject it (they may dismiss it instead).
# custom:
#   id: duties.requester_cannot_reject
#   explanation: the requester of this draft, {actor_id}, cannot reject it
deny contains reason if {
	input.action == "reject"
	_is_requester

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("%v requested this draft and cannot reject it", [_actor_id]),
		"facts": {"actor_id": _actor_id, "requester_id": input.draft.requester.id},
	}
}

# METADATA
# title: Agents cannot approve
# description: Agents may submit drafts but never approve them.
# custom:
#   id: duties.agent_cannot_approve
#   explanation: the agent {actor_id} cannot approve, as agents never approve drafts
deny contains reason if {
	input.action == "approve"
	_is_agent

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("%v is an agent and agents cannot approve", [_actor_id]),
		"facts": {"actor_id": _actor_id, "actor_type": input.actor.type},
	}
}

# METADATA
# title: Agents cannot reject
# description: Agents may submit drafts but never reject them.
# custom:
#   id: duties.agent_cannot_reject
#   explanation: the agent {actor_id} cannot reject, as agents never reject drafts
deny contains reason if {
	input.action == "reject"
	_is_agent

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("%v is an agent and agents cannot reject", [_actor_id]),
		"facts": {"actor_id": _actor_id, "actor_type": input.actor.type},
	}
}

# METADATA
# title: Approver cannot approve twice
# description: >-
#   An approver whose approval of the current content still counts cannot approve it
#   again, in any role: one person fills one place. A lapsed approval may be renewed.
# custom:
#   id: duties.duplicate_approver
#   explanation: the approver {actor_id} has already approved this content
deny contains reason if {
	input.action == "approve"

	some prior in input.approvals
	prior.verdict == "approve"
	prior.approver.id == input.actor.id
	approvals.fresh(prior)

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("%v has already approved this content", [_actor_id]),
		"facts": {"actor_id": _actor_id},
	}
}

# METADATA
# title: Approver must hold the role
# description: An approval or rejection given in a role must come from an actor who holds that role.
# custom:
#   id: duties.role_not_held
deny contains reason if {
	input.action in {"approve", "reject"}

	role := input.approval.role
	role != null
	not _holds(role)

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("%v acts in role %v but holds roles %v", [_actor_id, role, object.get(input, ["actor", "roles"], [])]),
	}
}

# METADATA
# title: Actor is not an approver
# description: Only an actor holding one of data.settings.approver_roles may approve or reject.
# custom:
#   id: duties.not_an_approver
deny contains reason if {
	input.action in {"approve", "reject"}
	not _holds_approver_role

	roles := object.get(input, ["actor", "roles"], [])

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("actor roles %v include none of the approver roles %v", [roles, _approver_roles]),
	}
}

# METADATA
# title: Only the requester may patch
# description: Only the requester of a draft may change its content.
# custom:
#   id: duties.patch_not_requester
deny contains reason if {
	input.action == "patch"
	not _is_requester

	requester := object.get(input, ["draft", "requester", "id"], "<missing>")

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("%v may not patch a draft requested by %v", [_actor_id, requester]),
	}
}

# METADATA
# title: Dismiss not permitted
# description: >-
#   A draft may be dismissed only by its requester, its approval owner, or an
#   actor holding one of data.settings.dismiss_roles.
# custom:
#   id: duties.dismiss_not_permitted
deny contains reason if {
	input.action == "dismiss"
	not _may_dismiss

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("%v is not the requester, the approval owner, or a holder of %v", [_actor_id, _dismiss_roles]),
	}
}

# Settings shown in messages default to [] so a missing setting cannot make
# a deny rule's message (and so the rule) undefined.
default _approver_roles := []

_approver_roles := data.settings.approver_roles

default _dismiss_roles := []

_dismiss_roles := data.settings.dismiss_roles

_actor_id := object.get(input, ["actor", "id"], "<missing>")

_created_supplier(id) if {
	input.draft.kind == "purchase_order"
	suppliers.creator == id
}

_is_requester if input.actor.id == input.draft.requester.id

_is_agent if input.actor.type == "agent"

_holds(role) if role in input.actor.roles

_holds_approver_role if {
	some role in input.actor.roles
	role in data.settings.approver_roles
}

_may_dismiss if _is_requester

_may_dismiss if input.actor.id == input.draft.approval_owner

_may_dismiss if {
	some role in input.actor.roles
	role in data.settings.dismiss_roles
}
