# METADATA
# title: Supplier controls
# description: >-
#   Purchase orders to blocked suppliers are refused, those to suppliers on hold need
#   finance, and whoever created a supplier cannot approve a purchase order to it. The
#   lists are data.settings.suppliers; input.context.supplier adds what the service knows
#   of the supplier, or is null when it knows nothing.
package order3.suppliers

# creator: the principal that created the draft's supplier, when the service knows it.
creator := created_by if {
	created_by := _record.created_by
	is_string(created_by)
}

# METADATA
# title: Supplier on hold needs finance
# description: >-
#   A purchase order to a supplier on hold (listed in data.settings.suppliers.on_hold, or
#   with status on_hold in input.context.supplier) needs the approvals in
#   data.settings.suppliers.on_hold_required on top of its tier.
# custom:
#   id: suppliers.on_hold_needs_finance
#   explanation: supplier {supplier_id} is on hold, so a purchase order to it needs at least {required}
contribution contains item if {
	input.draft.kind == "purchase_order"
	_on_hold

	required := data.settings.suppliers.on_hold_required

	item := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("supplier %v is on hold: %v required", [_supplier_id, _describe(required)]),
		"required": required,
		"facts": {"supplier_id": _supplier_id, "status": "on_hold", "required": _approvals(required)},
	}
}

# METADATA
# title: Supplier is blocked
# description: >-
#   A purchase order to a blocked supplier (listed in data.settings.suppliers.blocked, or
#   with status blocked in input.context.supplier) is refused at submit, patch and execute.
# custom:
#   id: suppliers.blocked
#   explanation: supplier {supplier_id} is blocked, so no purchase order to it may go ahead
deny contains reason if {
	input.action in {"submit", "patch", "execute"}
	input.draft.kind == "purchase_order"
	_blocked

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("supplier %v is blocked; no purchase order to it may go ahead", [_supplier_id]),
		"facts": {"supplier_id": _supplier_id, "status": "blocked"},
	}
}

# METADATA
# title: Supplier creator cannot approve
# description: Whoever created a supplier cannot approve a purchase order to that supplier.
# custom:
#   id: suppliers.creator_cannot_approve
#   explanation: the approver {creator_id} created supplier {supplier_id} and cannot approve a purchase order to it
deny contains reason if {
	input.action == "approve"
	input.draft.kind == "purchase_order"

	creator == input.actor.id

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("%v created supplier %v and cannot approve a purchase order to it", [creator, _supplier_id]),
		"facts": {"supplier_id": _supplier_id, "creator_id": creator},
	}
}

# METADATA
# title: Supplier context is malformed
# description: >-
#   input.context.supplier must be null, or an object whose id is the draft's
#   supplier_id, whose status is active, on_hold or blocked, and whose created_by is a
#   principal id or null.
# custom:
#   id: suppliers.context_invalid
deny contains reason if {
	input.context.supplier != null
	not _record

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("context.supplier %v does not describe supplier %v", [input.context.supplier, object.get(input, ["draft", "payload", "supplier_id"], null)]),
	}
}

_supplier_id := input.draft.payload.supplier_id

# The service's record of the draft's supplier (input.context.supplier), when it describes
# that supplier: an id that is the draft's supplier_id, a known status, and a created_by
# that is a principal id or null.
_record := supplier if {
	supplier := input.context.supplier

	is_object(supplier)
	supplier.id == input.draft.payload.supplier_id
	supplier.status in {"active", "on_hold", "blocked"}
	type_name(supplier.created_by) in {"null", "string"}
}

# The rules above spell out the purchase-order guard, so that OPA's rule index skips them
# for other kinds; the checks below read the supplier id directly (_supplier_id is for
# messages), so that the usual decision evaluates one rule fewer.
_blocked if input.draft.payload.supplier_id in data.settings.suppliers.blocked

_blocked if _record.status == "blocked"

_on_hold if input.draft.payload.supplier_id in data.settings.suppliers.on_hold

_on_hold if _record.status == "on_hold"

_describe(counts) := concat(", ", [sprintf("%v x%d", [role, counts[role]]) | some role in sort(object.keys(counts))])

# The approvals in counts as words for a reason's facts, sorted by role: ["1 finance approval"].
_approvals(counts) := [_approval_words(role, counts[role]) | some role in sort(object.keys(counts))]

_approval_words(role, 1) := sprintf("1 %v approval", [role])

_approval_words(role, n) := sprintf("%d %v approvals", [n, role]) if n != 1
