# METADATA
# title: Pending-draft workflow
# description: >-
#   When a pending draft expires and when it is escalated, from data.settings.workflow.
#   Both count from the draft's created_at, so a patch does not extend them. Times are
#   RFC 3339 UTC with microseconds, like every time the service stores.
package order3.workflow

# expires_at: when the draft, if still pending, expires.
expires_at := time.format([_created + _pending_ns, "UTC", _layout])

# escalation: {at, to_role}, when and to whom a still-pending draft is escalated; null
# when the kind's escalation would come at or after its expiry, or none is configured.
default escalation := null

escalation := {"at": time.format([_created + after_ns, "UTC", _layout]), "to_role": step.to_role} if {
	step := object.get(data.settings.workflow.escalation, input.draft.kind, data.settings.workflow.escalation.default)
	after_ns := step.after_seconds * _seconds_ns

	after_ns < _pending_ns
	is_string(step.to_role)
}

_layout := "2006-01-02T15:04:05.000000Z"

_created := time.parse_rfc3339_ns(input.draft.created_at)

_seconds_ns := 1000000000

_pending_ns := object.get(data.settings.workflow.pending_seconds, input.draft.kind, data.settings.workflow.pending_seconds.default) * _seconds_ns

# METADATA
# title: Expiry cannot be computed
# description: >-
#   A submit or patch is refused when the draft's expiry cannot be computed (its
#   created_at is not an RFC 3339 time, or data.settings.workflow is incomplete): every
#   pending draft must have an expiry, so that silence never leaves it open for ever.
# custom:
#   id: workflow.expiry_unavailable
deny contains reason if {
	input.action in {"submit", "patch"}
	not expires_at

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("no expiry can be computed for a %v draft created at %v", [object.get(input, ["draft", "kind"], "<missing>"), object.get(input, ["draft", "created_at"], "<missing>")]),
	}
}
