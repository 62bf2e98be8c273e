# METADATA
# title: Location budgets
# description: >-
#   Monthly purchase budgets per location and currency (data.settings.location_budgets).
#   The service sends what purchase orders for the draft's location already executed this
#   month (the UTC month of input.context.now) as input.context.location_spend.
package order3.budgets

import data.order3.spend

# budget: the monthly budget, in minor units, of the draft's location and currency; a
# location listed in data.settings.location_budgets.locations overrides the default.
budget := data.settings.location_budgets.locations[_location][spend.amount.currency]

budget := data.settings.location_budgets.default[spend.amount.currency] if {
	not data.settings.location_budgets.locations[_location]
}

# The deny rules below apply to a purchase order with an amount at submit, patch and
# execute. Each spells that guard out, rather than naming a helper rule, so that OPA's rule
# index skips them for other actions and kinds without evaluating them.

# METADATA
# title: Monthly location budget exceeded
# description: >-
#   A purchase order is refused at submit, patch and execute when the spend already
#   executed this month at its location plus its own amount is above the budget.
# custom:
#   id: budgets.monthly_budget_exceeded
#   explanation: the {executed} already spent at location {location_id} in {month} plus this purchase order's {amount} is above the monthly budget of {budget}
deny contains reason if {
	input.action in {"submit", "patch", "execute"}
	input.draft.kind == "purchase_order"
	amount := spend.amount
	_spend_known

	executed := input.context.location_spend.executed_minor_units
	total := executed + amount.minor_units
	total > budget

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("location %v would spend %d %v minor units in %v, above its budget of %d", [_location, total, amount.currency, _month, budget]),
		"facts": {
			"location_id": _location,
			"month": _month,
			"executed": spend.money(executed),
			"amount": spend.money(amount.minor_units),
			"total": spend.money(total),
			"budget": spend.money(budget),
		},
	}
}

# METADATA
# title: Location budget not configured
# description: A purchase order for a location and currency with no monthly budget is refused.
# custom:
#   id: budgets.not_configured
deny contains reason if {
	input.action in {"submit", "patch", "execute"}
	input.draft.kind == "purchase_order"
	currency := spend.amount.currency
	not _budget_configured

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("no monthly budget is configured for location %v in %v", [_location, currency]),
	}
}

# METADATA
# title: Location spend unknown
# description: >-
#   A purchase order is refused at submit, patch and execute when
#   input.context.location_spend is missing or does not describe the draft's location,
#   currency and the month of input.context.now: the budget cannot be checked.
# custom:
#   id: budgets.spend_unknown
deny contains reason if {
	input.action in {"submit", "patch", "execute"}
	input.draft.kind == "purchase_order"
	spend.amount
	not _spend_known

	shown := object.get(input, ["context", "location_spend"], "<missing>")

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("context.location_spend %v does not give this month's spend at location %v", [shown, _location]),
	}
}

default _location := "<missing>"

_location := input.draft.payload.location_id

_budget_configured if is_number(budget)

default _month := "<unknown>"

_month := substring(input.context.now, 0, 7)

_spend_known if {
	spent := input.context.location_spend

	spent.location_id == _location
	spent.currency == spend.amount.currency
	spent.month == _month
	is_number(spent.executed_minor_units)
	spent.executed_minor_units == floor(spent.executed_minor_units)
	spent.executed_minor_units >= 0
}
