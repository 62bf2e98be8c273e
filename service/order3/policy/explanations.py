"""Explaining a recorded decision in words an approver understands and data an agent can use.

Each reason a policy gives names its rule and may carry ``facts``: the input values the rule
compared, money as ``{minor_units, currency}``. A rule's ``# METADATA`` may hold an
``explanation`` under ``custom``: a sentence whose ``{name}`` placeholders name those facts.
Filling it in gives, for example, "the total of 12,000.00 USD is above the manager limit of
5,000.00 USD". The words belong to the policy authors; this module only formats values.

A reason whose rule has no explanation, or whose facts lack a placeholder's value, is
explained by the message the policy gave, so an explanation never says less than the
decision did.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from order3.domain.money import display_money
from order3.policy.annotations import Annotation

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class RuleExplanation(msgspec.Struct, frozen=True, kw_only=True):
    """One rule that decided, with what it compared."""

    rule: str
    title: str | None
    """The rule's title from its metadata; None when the revision does not annotate it."""
    description: str | None
    explanation: str
    """A sentence for people: the rule's explanation filled in, or the policy's message."""
    message: str
    facts: dict[str, Any]
    """The values the rule compared, as the policy gave them; ``{}`` when it gave none."""


class RequirementExplanation(msgspec.Struct, frozen=True, kw_only=True):
    """Approvals still needed, in words and as data."""

    role: str
    count: int
    excluded: list[str]
    explanation: str


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    outcome: str
    summary: str
    """One sentence: the outcome and why."""
    rules: list[RuleExplanation]
    required: list[RequirementExplanation]


def explain(result: Mapping[str, Any], annotations: Iterable[Annotation]) -> Explanation:
    """Explain a decision ``result`` (the policy's answer as recorded) with the annotations
    of the policy revision that gave it."""
    by_id = {a.id: a for a in annotations if a.rule is not None and a.id is not None}
    rules = [_rule(reason, by_id.get(str(reason.get("rule")))) for reason in result["reasons"]]
    required = [_requirement(item) for item in result.get("required") or []]
    outcome = str(result["outcome"])

    return Explanation(
        outcome=outcome,
        summary=_summary(outcome, rules, required),
        rules=rules,
        required=required,
    )


def fill(template: str, facts: Mapping[str, Any]) -> str | None:
    """``template`` with each ``{name}`` replaced by the fact of that name, formatted for
    people; None when a placeholder names no fact."""
    missing = [name for name in _PLACEHOLDER.findall(template) if name not in facts]
    if missing:
        return None

    return _PLACEHOLDER.sub(lambda found: shown(facts[found.group(1)]), template)


def shown(value: Any) -> str:
    """A fact as people read it: money with its currency, lists joined, null as none."""
    if _is_money(value):
        return display_money(value["minor_units"], value["currency"])
    if isinstance(value, list):
        return ", ".join(shown(item) for item in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{key} {shown(item)}" for key, item in value.items()) or "none"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"

    return str(value)


def _rule(reason: Mapping[str, Any], annotation: Annotation | None) -> RuleExplanation:
    facts = reason.get("facts")
    facts = dict(facts) if isinstance(facts, Mapping) else {}
    message = str(reason.get("message", ""))
    filled = None
    if annotation is not None and annotation.explanation:
        filled = fill(annotation.explanation, facts)

    return RuleExplanation(
        rule=str(reason.get("rule")),
        title=annotation.title if annotation else None,
        description=annotation.description if annotation else None,
        explanation=filled or message,
        message=message,
        facts=facts,
    )


def _requirement(item: Mapping[str, Any]) -> RequirementExplanation:
    count, role = int(item["count"]), str(item["role"])
    excluded = [str(principal) for principal in item.get("excluded") or []]
    words = f"{count} more approval{'s' if count != 1 else ''} from role {role}"
    if excluded:
        words += f", from anyone but {', '.join(excluded)}"

    return RequirementExplanation(role=role, count=count, excluded=excluded, explanation=words)


def _summary(
    outcome: str, rules: list[RuleExplanation], required: list[RequirementExplanation]
) -> str:
    because = "; ".join(rule.explanation for rule in rules)
    summary = f"{outcome.capitalize()}: {because}" if because else outcome.capitalize()
    if required:
        summary += ". Still required: " + "; ".join(r.explanation for r in required)

    return summary + "."


def _is_money(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and set(value) == {"minor_units", "currency"}
        and isinstance(value["minor_units"], int)
        and not isinstance(value["minor_units"], bool)
        and isinstance(value["currency"], str)
    )
