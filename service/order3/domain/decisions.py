"""Decisions: what the service asks the policy, and the shape every answer must have.

The service never decides an approval itself. It builds a decision input, hands it to the
policy engine and acts on the result; a result that does not have the shape below counts as
no result at all (fail closed). The contract is written out for policy authors in
``docs/policy-contract.md``.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

from order3.domain.identifiers import new_id

# RFC 3339 in UTC, written with a `Z`: the only form of time a result may carry.
_UTC_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z\Z")
UtcTime = Annotated[str, msgspec.Meta(pattern=_UTC_TIME.pattern)]
PrincipalId = Annotated[str, msgspec.Meta(min_length=1)]


def _decision_id() -> str:
    return new_id("dec")


class Action(enum.StrEnum):
    SUBMIT = "submit"
    PATCH = "patch"
    APPROVE = "approve"
    REJECT = "reject"
    EXECUTE = "execute"
    DISMISS = "dismiss"


class Reason(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One rule that decided, by its stable id, with words for people."""

    rule: Annotated[str, msgspec.Meta(min_length=1)]
    message: str
    facts: dict[str, Any] = {}
    """The input values the rule compared, by name (money as ``{minor_units, currency}``),
    which an explanation fills into the rule's sentence; omitted when the rule gives none."""


class Requirement(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Approvals still needed: ``count`` more from ``role``, from nobody in ``excluded``."""

    role: Annotated[str, msgspec.Meta(min_length=1)]
    count: Annotated[int, msgspec.Meta(ge=1)]
    excluded: list[PrincipalId]
    """Principals who may not give these approvals (the requester, for one)."""

    def __post_init__(self) -> None:
        if len(set(self.excluded)) != len(self.excluded):
            raise ValueError(f"`excluded` of role `{self.role}` names a principal twice")


class Escalation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When a draft still pending is escalated, and to whom."""

    at: UtcTime
    to_role: Annotated[str, msgspec.Meta(min_length=1)]


class DecisionResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The document the policy returns at its decision entrypoint."""

    allow: bool
    outcome: Literal["allowed", "denied"]
    reasons: Annotated[list[Reason], msgspec.Meta(min_length=1)]
    required: list[Requirement]
    expires_at: UtcTime | None = None
    """When the draft expires if still pending; set by an allowed submit or patch only."""
    escalation: Escalation | None = None
    """When and to whom a still-pending draft is escalated; only beside ``expires_at``."""

    def __post_init__(self) -> None:
        if self.allow != (self.outcome == "allowed"):
            raise ValueError("`allow` and `outcome` disagree")
        roles = [requirement.role for requirement in self.required]
        if len(set(roles)) != len(roles):
            raise ValueError("`required` names a role twice")
        expires = None if self.expires_at is None else parse_utc(self.expires_at, "expires_at")
        if self.escalation is not None:
            escalates = parse_utc(self.escalation.at, "escalation.at")
            if expires is None:
                raise ValueError("`escalation` without `expires_at`")
            if escalates >= expires:
                raise ValueError("`escalation.at` is not before `expires_at`")
        if not self.allow and (self.expires_at is not None or self.escalation is not None):
            raise ValueError("a denial carries `expires_at` or `escalation`")

    def workflow_problem(self, action: Action, now: str) -> str | None:
        """What is wrong with the expiry and escalation for ``action`` decided at ``now``,
        or None. An allowed submit or patch must set a future ``expires_at``; any other
        action sets neither field."""
        sets_workflow = self.allow and action in (Action.SUBMIT, Action.PATCH)
        if not sets_workflow:
            if self.expires_at is not None or self.escalation is not None:
                return f"the result of `{action}` carries `expires_at` or `escalation`"
            return None
        if self.expires_at is None:
            return f"an allowed `{action}` carries no `expires_at`"
        if parse_utc(self.expires_at, "expires_at") <= parse_utc(now, "context.now"):
            return f"`expires_at` {self.expires_at} is not after the decision time {now}"
        return None

    @property
    def rules(self) -> list[str]:
        """The ids of the rules that decided, in the order the policy gave them."""
        return [reason.rule for reason in self.reasons]


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """One evaluated decision: the input, the result and where the result came from."""

    action: Action
    input: dict[str, Any]
    result: DecisionResult
    engine: str
    policy_revision: str
    decision_id: str | None
    """OPA's id for the evaluation (it appears in OPA's own decision log), when OPA gives one."""
    duration_ms: float
    id: str = msgspec.field(default_factory=_decision_id)
    """This service's id for the decision, the one ``GET /v1/decisions/{id}`` takes."""

    @property
    def allowed(self) -> bool:
        return self.result.allow

    def audit_view(self) -> dict[str, Any]:
        """The decision as an audit record stores it."""
        return {
            "id": self.id,
            "input": self.input,
            "result": msgspec.to_builtins(self.result),
            "rules": self.result.rules,
            "engine": self.engine,
            "policy_revision": self.policy_revision,
            "decision_id": self.decision_id,
        }


class EngineFailure(msgspec.Struct, frozen=True, kw_only=True):
    """Why the engine gave no usable result; audited as ``engine.failed``."""

    action: Action
    input: dict[str, Any]
    reason: str
    engine: str
    policy_revision: str | None
    id: str = msgspec.field(default_factory=_decision_id)

    def audit_view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "input": self.input,
            "result": None,
            "rules": [],
            "engine": self.engine,
            "policy_revision": self.policy_revision,
            "decision_id": None,
            "failure": self.reason,
        }


def parse_result(raw: Any) -> DecisionResult:
    """Validate a raw policy result; raise `ValueError` naming what is wrong."""
    try:
        return msgspec.convert(raw, DecisionResult, strict=True)
    except msgspec.ValidationError as exc:
        raise ValueError(f"malformed decision result: {exc}") from None


def parse_utc(value: str, field: str) -> datetime:
    """An RFC 3339 UTC time (``...Z``, up to nanoseconds, read to microseconds).

    Raises:
        ValueError: ``value`` is not such a time; the message names ``field``.
    """
    if not _UTC_TIME.match(value):
        raise ValueError(f"`{field}` is not an RFC 3339 UTC time: {value!r}")
    seconds, _, fraction = value[:-1].partition(".")
    try:
        moment = datetime.strptime(seconds, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"`{field}` is not a valid time: {value!r}") from None
    return moment.replace(microsecond=int((fraction + "000000")[:6]))


class DecisionContext(msgspec.Struct, frozen=True, kw_only=True):
    """What the service knows beyond the draft, as ``input.context`` carries it (every key
    always present; see docs/policy-contract.md)."""

    supplier: dict[str, Any] | None = None
    """``{id, status, created_by}`` of the supplier the payload names, when it exists."""
    items: dict[str, dict[str, Any]] = {}
    """SKU -> ``{category}`` for every item the payload names that exists."""
    records: list[dict[str, Any]] = []
    """``{type, id, based_on_version, current_version}`` for each affected record other
    than an exception; ``current_version`` is None for a record that does not exist."""
    location_spend: dict[str, Any] | None = None
    """``{location_id, month, currency, executed_minor_units}``: purchase orders for the
    draft's location executed in the month of ``now``, in the draft's currency."""
    requester_daily_spend: dict[str, Any] | None = None
    """``{day, currency, submitted_minor_units}``: what the requester submitted on the day
    of ``now`` in the draft's currency, the draft being decided left out."""


def build_input(
    action: Action,
    *,
    draft: dict[str, Any],
    actor: dict[str, Any],
    approvals: list[dict[str, Any]],
    now: str,
    approval: dict[str, Any] | None = None,
    context: DecisionContext | None = None,
) -> dict[str, Any]:
    """The decision input, in the shape ``docs/policy-contract.md`` promises."""
    return {
        "action": str(action),
        "draft": draft,
        "actor": actor,
        "approval": approval,
        "approvals": approvals,
        "context": {"now": now, **msgspec.to_builtins(context or DecisionContext())},
    }
