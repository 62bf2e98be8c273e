# METADATA
# title: Execution gate
# description: >-
#   Counts the approvals recorded on the current content (input.approvals) under
#   the policy in force now (fresh, independent, within limits), and allows execution
#   only when nothing the quorum requires is still missing.
package order3.execution

import data.order3.approvals
import data.order3.duties
import data.order3.quorum
import data.order3.spend

# given: role -> number of distinct approvers whose recorded approval still counts.
given[role] := count(approvers) if {
	some role in {counted_role | some [counted_role, _] in _counted}

	approvers := {approver | some [other_role, approver] in _counted; other_role == role}
}

# missing: role -> approvals still needed, computed from input.approvals only.
missing[role] := needed - have if {
	some role, needed in quorum.requirement

	have := object.get(given, role, 0)

	needed > have
}

# METADATA
# title: Approvals incomplete
# description: A draft executes only when every approval its tier requires has been given.
# custom:
#   id: execution.approvals_incomplete
#   explanation: the draft still needs {missing} before it can be executed
deny contains reason if {
	input.action == "execute"
	count(missing) > 0

	still := [sprintf("%v x%d", [role, missing[role]]) | some role in sort(object.keys(missing))]

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("approvals still required before execution: %v", [concat(", ", still)]),
		"facts": {"missing": _approvals(missing)},
	}
}

# METADATA
# title: Approvals complete
# description: Reported when execution is allowed; every required approval is present.
# custom:
#   id: execution.approvals_complete
accept contains reason if {
	input.action == "execute"

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("all required approvals are present (%d counted)", [count(_counted)]),
	}
}

# A recorded approval counts when it is an approve verdict, still fresh, that passes
# separation of duties and the approver limits in force now.
_counted contains [approval.role, approval.approver.id] if {
	some approval in input.approvals
	approval.verdict == "approve"

	approvals.fresh(approval)
	duties.independent_approval(approval)
	spend.within_limit(approval.role)
}

# The approvals in counts as words for a reason's facts, sorted by role: ["1 finance approval"].
_approvals(counts) := [_approval_words(role, counts[role]) | some role in sort(object.keys(counts))]

_approval_words(role, 1) := sprintf("1 %v approval", [role])

_approval_words(role, n) := sprintf("%d %v approvals", [n, role]) if n != 1
