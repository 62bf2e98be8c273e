# METADATA
# title: Agent limits
# description: >-
#   Drafts requested by agents: each needs at least one human approval, and an agent's
#   spend drafted in one UTC day is capped per currency (data.settings.agents). The
#   service sends what the requester already drafted today as
#   input.context.requester_daily_spend.
package order3.agents

import data.order3.spend

# needs_human holds for a draft an agent requested: at least one approval must be given,
# and only humans' approvals count (see order3.duties).
needs_human if input.draft.requester.type == "agent"

# The deny rules below apply to an agent's submit or patch with an amount. Each spells that
# guard out, rather than naming a helper rule, so that OPA's rule index skips them for every
# other decision without evaluating them.

# METADATA
# title: Agent daily spend exceeded
# description: >-
#   An agent's submit or patch is refused when what it drafted today in the draft's
#   currency plus this draft's amount is above data.settings.agents.daily_spend_limit.
# custom:
#   id: agents.daily_spend_exceeded
#   explanation: the {drafted_today} this agent already drafted on {day} plus this draft's {amount} is above its daily limit of {daily_limit}
deny contains reason if {
	input.action in {"submit", "patch"}
	input.draft.requester.type == "agent"
	amount := spend.amount
	_spend_known

	limit := data.settings.agents.daily_spend_limit[amount.currency]
	drafted_today := input.context.requester_daily_spend.submitted_minor_units
	total := drafted_today + amount.minor_units
	total > limit

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("agent %v would draft %d %v minor units today, above its daily limit of %d", [input.draft.requester.id, total, amount.currency, limit]),
		"facts": {
			"requester_id": input.draft.requester.id,
			"day": input.context.requester_daily_spend.day,
			"drafted_today": spend.money(drafted_today),
			"amount": spend.money(amount.minor_units),
			"total": spend.money(total),
			"daily_limit": spend.money(limit),
		},
	}
}

# METADATA
# title: Agent daily limit not configured
# description: An agent's draft in a currency with no daily spend limit is refused.
# custom:
#   id: agents.daily_limit_not_configured
deny contains reason if {
	input.action in {"submit", "patch"}
	input.draft.requester.type == "agent"
	currency := spend.amount.currency
	not _limit_configured

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("agents have no daily spend limit configured for %v", [currency]),
	}
}

# METADATA
# title: Agent daily spend unknown
# description: >-
#   An agent's submit or patch is refused when input.context.requester_daily_spend is
#   missing or does not describe today (the UTC date of input.context.now) and the
#   draft's currency: the cap cannot be checked.
# custom:
#   id: agents.daily_spend_unknown
deny contains reason if {
	input.action in {"submit", "patch"}
	input.draft.requester.type == "agent"
	currency := spend.amount.currency
	not _spend_known

	shown := object.get(input, ["context", "requester_daily_spend"], "<missing>")

	reason := {
		"rule": rego.metadata.rule().custom.id,
		"message": sprintf("context.requester_daily_spend %v does not give today's %v spend", [shown, currency]),
	}
}

_limit_configured if is_number(data.settings.agents.daily_spend_limit[spend.amount.currency])

_spend_known if {
	daily := input.context.requester_daily_spend

	daily.day == substring(input.context.now, 0, 10)
	daily.currency == spend.amount.currency
	is_number(daily.submitted_minor_units)
	daily.submitted_minor_units == floor(daily.submitted_minor_units)
	daily.submitted_minor_units >= 0
}
