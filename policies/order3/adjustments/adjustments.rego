# METADATA
# title: Inventory adjustment controls
# description: >-
#   Adjustments and reconciliations change the value of stock on the books; above a
#   value threshold per currency (data.settings.adjustments) they need finance.
package order3.adjustments

import data.order3.spend

# METADATA
# title: Large adjustment needs finance
# description: >-
#   A draft of a kind in data.settings.adjustments.kinds whose amount is at or above
#   data.settings.adjustments.from_minor_units for its currency needs the approvals in
#   data.settings.adjustments.required on top of its tier. A currency with no threshold
#   always needs them.
# custom:
#   id: adjustments.finance_required
#   explanation: this {kind} is worth {amount}, at or above {threshold}, so it needs at least {required}
contribution contains item if {
	input.draft.kind in data.settings.adjustments.kinds
	spend.amount.minor_units >= _threshold

	required := data.settings.adjustments.required

	item := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("%v of %d %v minor units is at or above %d: %v required", [input.draft.kind, spend.amount.minor_units, spend.amount.currency, _threshold, _describe(required)]),
		"required": required,
		"facts": {
			"kind": input.draft.kind,
			"amount": spend.money(spend.amount.minor_units),
			"threshold": spend.money(_threshold),
			"required": _approvals(required),
		},
	}
}

_threshold := object.get(data.settings.adjustments.from_minor_units, spend.amount.currency, 0)

_describe(counts) := concat(", ", [sprintf("%v x%d", [role, counts[role]]) | some role in sort(object.keys(counts))])

# The approvals in counts as words for a reason's facts, sorted by role: ["1 finance approval"].
_approvals(counts) := [_approval_words(role, counts[role]) | some role in sort(object.keys(counts))]

_approval_words(role, 1) := sprintf("1 %v approval", [role])

_approval_words(role, n) := sprintf("%d %v approvals", [n, role]) if n != 1
