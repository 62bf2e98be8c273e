"""Decisions: what the service asks the policy, and the shape every answer must have.

The service never decides an approval itself. It builds a decision input, hands it to the
policy engine and acts on the result; a result that does not have the shape below counts as
no result at all (fail closed). The contract is written out for policy authors in
``docs/policy-contract.md``.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

import msgspec

from order3.domain.identifiers import new_id


def _decision_id() -> str:
    return new_id("dec")


class Action(enum.StrEnum):
    SUBMIT = "submit"
    PATCH = "patch"
    APPROVE = "approve"
    REJECT = "reject"
    EXECUTE = "execute"
    DISMISS = "dismiss"


class Reason(msgspec.Struct, frozen=True, kw_only=True):
    """One rule that decided, by its stable id, with words for people."""

    rule: Annotated[str, msgspec.Meta(min_length=1)]
    message: str


class Requirement(msgspec.Struct, frozen=True, kw_only=True):
    """Approvals still needed: ``count`` more from ``role``."""

    role: Annotated[str, msgspec.Meta(min_length=1)]
    count: Annotated[int, msgspec.Meta(ge=1)]


class DecisionResult(msgspec.Struct, frozen=True, kw_only=True):
    """The document the policy returns at its decision entrypoint."""

    allow: bool
    outcome: Literal["allowed", "denied"]
    reasons: Annotated[list[Reason], msgspec.Meta(min_length=1)]
    required: list[Requirement]

    def __post_init__(self) -> None:
        if self.allow != (self.outcome == "allowed"):
            raise ValueError("`allow` and `outcome` disagree")

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


def build_input(
    action: Action,
    *,
    draft: dict[str, Any],
    actor: dict[str, Any],
    approvals: list[dict[str, Any]],
    now: str,
    approval: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The decision input, in the shape ``docs/policy-contract.md`` promises."""
    return {
        "action": str(action),
        "draft": draft,
        "actor": actor,
        "approval": approval,
        "approvals": approvals,
        "context": {"now": now},
    }
