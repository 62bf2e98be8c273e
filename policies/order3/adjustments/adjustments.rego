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
contribution contains item if {
	input.draft.kind in data.settings.adjustments.kinds
	spend.amount.minor_units >= _threshold

	required := data.settings.adjustments.required

	item := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("%v of %d %v minor units is at or above %d: %v required", [input.draft.kind, spend.amount.minor_units, spend.amount.currency, _threshold, _describe(required)]),
		"required": required,
	}
}

_threshold := object.get(data.settings.adjustments.from_minor_units, spend.amount.currency, 0)

_describe(counts) := concat(", ", [sprintf("%v x%d", [role, counts[role]]) | some role in sort(object.keys(counts))])
