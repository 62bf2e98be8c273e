# METADATA
# title: Spend controls
# description: >-
#   Approvals required by amount tier and currency, and the per-role approval
#   limits by currency and item category. Every threshold is read from data.settings
#   (policies/settings/data.json).
package order3.spend

# The approvals a draft needs, as an object role -> count. Undefined when the
# draft's amount or the settings do not allow it to be computed; a deny rule
# below then explains why.
requirement := _tier.required

requirement := data.settings.no_amount_required if input.draft.amount == null

# amount: the draft's money, {minor_units, currency}, when it is valid and not null.
amount := given if {
	given := input.draft.amount

	is_number(given.minor_units)
	given.minor_units == floor(given.minor_units)
	given.minor_units >= 0
	is_string(given.currency)
}

# money(minor_units): minor_units of the draft's currency, {minor_units, currency}; the shape
# every amount takes in a reason's facts.
money(minor_units) := {"minor_units": minor_units, "currency": _currency}

# category_amounts: limited item category -> the part of the amount spent on items of that
# category. An item's category is its inventory record's (input.context.items); only the
# categories data.settings.category_limits names are limited.
category_amounts[category] := sum(values) if {
	amount

	some category in _priced_categories
	data.settings.category_limits[category]

	values := [value | some [_, sku, value] in _priced; input.context.items[sku].category == category]
}

# within_limit(role) holds when an approval in role may cover the draft amount: the whole
# amount within the role's limit, and each category's part within its category limit.
within_limit(_) if input.draft.amount == null

within_limit(role) if {
	currency := amount.currency

	amount.minor_units <= data.settings.approval_limits[role][currency]

	every category, part in category_amounts {
		part <= data.settings.category_limits[category][role][currency]
	}
}

# The rules that say why the requirement cannot be computed (_unavailable) are only asked
# when it cannot be, so that the usual decision, with a requirement, passes one rule
# rather than each of them.
deny contains reason if {
	_requirement_missing
	some reason in _unavailable
}

# METADATA
# title: Amount is not valid
# description: >-
#   The draft amount must be null, or an object with a non-negative integer
#   minor_units and a currency code.
# custom:
#   id: spend.amount_invalid
_unavailable contains reason if {
	not _amount_valid # an invalid amount leaves the requirement undefined

	shown := object.get(input, ["draft", "amount"], "<missing>")

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("draft amount %v is not null or {minor_units: non-negative integer, currency: code}", [shown]),
	}
}

# METADATA
# title: Amount is required for this kind
# description: >-
#   Only the kinds listed in data.settings.no_amount_kinds may carry a null amount;
#   any other kind commits money and must say how much.
# custom:
#   id: spend.amount_required
deny contains reason if {
	_needs_requirement
	input.draft.amount == null

	not _no_amount_kind

	kind := object.get(input, ["draft", "kind"], "<missing>")

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("draft kind %v needs an amount; only %v may have none", [kind, _no_amount_kinds]),
	}
}

# METADATA
# title: Currency is not configured
# description: A draft whose currency has no approval tiers in data.settings.approval_tiers is refused.
# custom:
#   id: spend.currency_not_configured
_unavailable contains reason if {
	amount
	not _currency_configured # no tiers leave the requirement undefined

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("currency %v has no approval tiers configured", [_currency]),
	}
}

# METADATA
# title: No approval tier applies
# description: The currency is configured but no tier starts at or below the amount.
# custom:
#   id: spend.no_applicable_tier
_unavailable contains reason if {
	amount
	_currency_configured
	not _tier # no tier leaves the requirement undefined

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("no %v approval tier starts at or below amount %d minor units", [_currency, _minor]),
	}
}

# METADATA
# title: Approval requirement unavailable
# description: >-
#   Catch-all that keeps the policy closed when the required approvals cannot be
#   computed for a reason no other spend rule explains (for example, incomplete settings).
# custom:
#   id: spend.requirement_unavailable
_unavailable contains reason if {
	not _failure_explained

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": "the approvals this draft requires cannot be computed from the settings",
	}
}

# METADATA
# title: Approval is over the approver's limit
# description: An approval in a role whose limit for the currency is below the draft amount is refused.
# custom:
#   id: spend.over_approver_limit
#   explanation: the total of {amount} is above the {role} limit of {limit}
deny contains reason if {
	input.action == "approve"
	given := amount

	role := input.approval.role
	limit := data.settings.approval_limits[role][given.currency]
	given.minor_units > limit

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("amount %d %v minor units exceeds %v limit %d", [given.minor_units, given.currency, role, limit]),
		"facts": {"amount": money(given.minor_units), "role": role, "limit": money(limit)},
	}
}

# METADATA
# title: Approver limit not configured
# description: An approval in a role with no limit for the draft currency is refused.
# custom:
#   id: spend.approver_limit_not_configured
#   explanation: the {role} role has no approval limit in {currency}
deny contains reason if {
	input.action == "approve"
	currency := amount.currency

	role := input.approval.role
	is_string(role)
	not data.settings.approval_limits[role][currency]

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("role %v has no approval limit configured for %v", [role, currency]),
		"facts": {"role": role, "currency": currency},
	}
}

# METADATA
# title: Approval is over the approver's category limit
# description: >-
#   An approval is refused when the part of the amount spent on one item category is
#   above the role's limit for that category (data.settings.category_limits).
# custom:
#   id: spend.over_category_limit
#   explanation: the {category} items come to {category_amount}, above the {role} limit of {limit} for that category
deny contains reason if {
	input.action == "approve"

	role := input.approval.role
	some category, part in category_amounts
	limit := data.settings.category_limits[category][role][_currency]
	part > limit

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("%d %v minor units of %v items exceeds %v limit %d for that category", [part, _currency, category, role, limit]),
		"facts": {"category": category, "category_amount": money(part), "role": role, "limit": money(limit)},
	}
}

# METADATA
# title: Approver category limit not configured
# description: >-
#   An approval is refused when the draft has items of a category for which the role has
#   no limit in the draft's currency: that role may not approve such items at all.
# custom:
#   id: spend.category_limit_not_configured
deny contains reason if {
	input.action == "approve"

	role := input.approval.role
	is_string(role)
	some category, _ in category_amounts
	not data.settings.category_limits[category][role][_currency]

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("role %v has no %v limit configured for %v items", [role, _currency, category]),
	}
}

# METADATA
# title: Item unknown
# description: >-
#   A draft that spends money on a SKU missing from input.context.items is refused: the
#   item's category, and so its category limits, cannot be known.
# custom:
#   id: spend.item_unknown
#   explanation: item {sku} is not known, so its category limits cannot be checked
deny contains reason if {
	_needs_requirement
	amount

	some [_, sku, _] in _priced
	not _item_known(sku)

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("item %v is not in context.items, so its category limits cannot be checked", [sku]),
		"facts": {"sku": sprintf("%v", [sku])},
	}
}

_item_known(sku) if is_string(input.context.items[sku].category)

# The item categories of the priced lines.
_priced_categories contains input.context.items[sku].category if some [_, sku, _] in _priced

# Each priced line as [position, sku, value in minor units]; the position keeps equal
# lines apart. Deltas count by their size: removing stock moves value as much as adding it.
_priced contains [i, line.sku, line.unit_cost.minor_units * line.quantity] if {
	input.draft.kind == "purchase_order"
	some i, line in input.draft.payload.lines
}

_priced contains [i, line.sku, line.unit_cost.minor_units * abs(line.quantity_delta)] if {
	input.draft.kind == "reconciliation"
	some i, line in input.draft.payload.corrections
}

_priced contains [0, p.sku, p.unit_cost.minor_units * abs(p.quantity_delta)] if {
	input.draft.kind == "adjustment"
	p := input.draft.payload
}

_priced contains [0, p.sku, p.unit_cost.minor_units * p.quantity] if {
	input.draft.kind == "transfer"
	p := input.draft.payload
}

_needs_requirement if input.action in {"submit", "patch", "approve", "execute"}

# A decision that needs the requirement, which cannot be computed: the rules that say why
# check this first, so that the usual decision, with a requirement, passes them at once.
_requirement_missing if {
	_needs_requirement
	not requirement
}

_amount_valid if amount

_amount_valid if input.draft.amount == null

# Negations below go through helper rules: `not f(x)` with x undefined is
# itself undefined, which would let a deny rule silently not fire.
_no_amount_kind if input.draft.kind in data.settings.no_amount_kinds

# Shown in messages; defaults to [] so a missing setting cannot hide a denial.
default _no_amount_kinds := []

_no_amount_kinds := data.settings.no_amount_kinds

_minor := input.draft.amount.minor_units

_currency := input.draft.amount.currency

_currency_configured if count(data.settings.approval_tiers[_currency]) > 0

# The tier with the highest from_minor_units at or below the amount.
_tier := tier if {
	given := amount
	minor := given.minor_units
	tiers := data.settings.approval_tiers[given.currency]

	starts := [t.from_minor_units | some t in tiers; t.from_minor_units <= minor]
	count(starts) > 0
	start := max(starts)

	some tier in tiers
	tier.from_minor_units == start
}

_failure_explained if not _amount_valid

_failure_explained if {
	amount
	not _tier
}
