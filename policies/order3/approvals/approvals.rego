# METADATA
# title: Approval freshness
# description: >-
#   An approval counts for data.settings.approval_max_age_days after it was given,
#   measured at input.context.now; an older approval lapses and counts for nothing.
package order3.approvals

import data.order3.execution

# fresh(approval) holds while a recorded approval is younger than the maximum age at
# input.context.now. Undefined settings or times make every approval stale (fail closed).
fresh(approval) if {
	given := time.parse_rfc3339_ns(approval.decided_at)

	given + _max_age_ns > _now
}

# lapsed: the approve verdicts in input.approvals that are too old to count.
lapsed contains approval if {
	some approval in input.approvals
	approval.verdict == "approve"

	not fresh(approval)
}

# METADATA
# title: Approvals expired
# description: >-
#   Execution is refused while approvals are missing and some of the approvals given
#   have lapsed; those approvers must approve again.
# custom:
#   id: approvals.expired
#   explanation: the approvals by {approvers} are {max_age_days} days old or older and no longer count
deny contains reason if {
	input.action == "execute"
	count(execution.missing) > 0
	count(lapsed) > 0

	approvers := sort({object.get(a, ["approver", "id"], "<missing>") | some a in lapsed})
	given_at := sort({sprintf("%v", [object.get(a, "decided_at", "<missing>")]) | some a in lapsed})

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("approvals by %v are older than %v days and no longer count", [approvers, _max_age_days]),
		"facts": {
			"approvers": [sprintf("%v", [id]) | some id in approvers],
			"decided_at": given_at,
			"max_age_days": _max_age_days,
			"now": object.get(input, ["context", "now"], "<missing>"),
		},
	}
}

_day_ns := (24 * 60) * 60000000000

_now := time.parse_rfc3339_ns(input.context.now)

_max_age_ns := data.settings.approval_max_age_days * _day_ns

default _max_age_days := "<unset>"

_max_age_days := data.settings.approval_max_age_days
