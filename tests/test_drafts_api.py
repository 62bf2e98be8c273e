"""The draft life cycle through the HTTP API, decided by the real OPA, on both databases."""

from __future__ import annotations

import pytest

from support.api import Api, purchase_order


def test_submitted_draft_is_pending_with_what_the_policy_requires(api: Api) -> None:
    """A submitted 1,250.00 USD purchase order is pending and needs one manager, who is
    neither the requester nor the admin who created its supplier."""
    response = api.submit("bot", purchase_order(api.id("mia")))

    assert response.status_code == 201
    body = response.json()
    assert body["draft"]["state"] == "pending"
    assert body["draft"]["amount"] == {"minor_units": 125000, "currency": "USD"}
    assert body["draft"]["requester"] == {"id": api.id("bot"), "type": "agent"}
    assert body["decision"]["outcome"] == "allowed"
    assert body["decision"]["required"] == [
        {"role": "manager", "count": 1, "excluded": sorted([api.id("bot"), api.id("admin")])}
    ]
    assert body["decision"]["reasons"][0]["rule"] == "submit.accepted"
    assert body["decision"]["policy_revision"].startswith("sha256:")
    assert body["decision"]["decision_id"]


def test_agent_can_never_approve_even_with_an_approver_role(api: Api) -> None:
    """An agent holding the manager role is refused by policy, and the refusal is audited."""
    draft_id = api.submitted("rogue")

    response = api.approve("rogue", draft_id, "manager")

    assert response.status_code == 403
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    rules = {reason["rule"] for reason in problem["decision"]["reasons"]}
    assert rules == {"duties.agent_cannot_approve", "duties.requester_cannot_approve"}
    [record] = api.audit(draft=draft_id, action="decision.refused")
    assert record["seq"] == problem["decision"]["audit_seq"]
    assert record["record"]["outcome"] == "denied"
    assert api.get("mia", f"/v1/drafts/{draft_id}").json()["state"] == "pending"


def test_requester_cannot_approve_own_draft(api: Api) -> None:
    """A manager who drafted the work cannot approve it."""
    draft_id = api.submitted("sam")

    response = api.approve("sam", draft_id, "manager")

    assert response.status_code == 403
    rules = [reason["rule"] for reason in response.json()["decision"]["reasons"]]
    assert rules == ["duties.requester_cannot_approve"]


def test_manager_approval_completes_a_small_draft_and_execute_decides_again(api: Api) -> None:
    """One manager approves a small order; execution is decided and recorded."""
    draft_id = api.submitted()

    approved = api.approve("mia", draft_id, "manager")
    executed = api.post("mia", f"/v1/drafts/{draft_id}/execute")

    assert approved.status_code == 200
    assert approved.json()["draft"]["state"] == "approved"
    assert approved.json()["approval"]["approver"] == {"id": api.id("mia"), "type": "user"}
    assert executed.status_code == 200
    assert executed.json()["draft"]["state"] == "executed"
    assert executed.json()["decision"]["reasons"][0]["rule"] == "execution.approvals_complete"
    assert executed.json()["draft"]["execution"]["executed_by"]["id"] == api.id("mia")
    actions = [r["record"]["action"] for r in api.audit(draft=draft_id)]
    assert actions == ["draft.submitted", "approval.decided", "draft.executed"]


def test_large_draft_needs_manager_and_finance(api: Api) -> None:
    """Above 5,000.00 a manager's approval leaves one finance approval required."""
    draft_id = api.submitted(unit_cost=60000)

    after_manager = api.approve("mia", draft_id, "manager")
    early_execute = api.post("mia", f"/v1/drafts/{draft_id}/execute")
    after_finance = api.approve("fay", draft_id, "finance")

    assert after_manager.json()["draft"]["state"] == "pending"
    assert after_manager.json()["draft"]["required"] == [
        {
            "role": "finance",
            "count": 1,
            "excluded": sorted([api.id("bot"), api.id("mia"), api.id("admin")]),
        }
    ]
    assert early_execute.status_code == 409
    assert after_finance.json()["draft"]["state"] == "approved"


def test_second_manager_is_not_required(api: Api) -> None:
    """An approval in a role nobody still needs is refused."""
    draft_id = api.submitted(unit_cost=60000)
    api.approve("mia", draft_id, "manager")

    response = api.approve("max", draft_id, "manager")

    assert response.status_code == 403
    rules = [reason["rule"] for reason in response.json()["decision"]["reasons"]]
    assert "approval.role_not_required" in rules


def test_patch_drops_approvals_given_to_the_old_content(api: Api) -> None:
    """Changing a draft's content drops approvals bound to the old content hash."""
    draft_id = api.submitted("sam", unit_cost=60000)
    api.approve("mia", draft_id, "manager")
    before = api.get("sam", f"/v1/drafts/{draft_id}").json()

    patched = api.patch("sam", f"/v1/drafts/{draft_id}", {"rationale": "Supplier price rose."})
    after = api.get("sam", f"/v1/drafts/{draft_id}").json()

    assert patched.status_code == 200
    assert after["content_hash"] != before["content_hash"]
    assert [a["current"] for a in after["approvals"]] == [False]
    assert [(r["role"], r["count"], r["excluded"]) for r in after["required"]] == [
        ("finance", 1, sorted([api.id("sam"), api.id("admin")])),
        ("manager", 1, sorted([api.id("sam"), api.id("admin")])),
    ]
    assert api.approve("fay", draft_id, "finance").json()["draft"]["state"] == "pending"


def test_only_the_requester_may_patch(api: Api) -> None:
    """Someone else's patch is refused by policy and leaves the draft as it was."""
    draft_id = api.submitted("sam")

    response = api.patch("mia", f"/v1/drafts/{draft_id}", {"rationale": "Mine now."})

    assert response.status_code == 403
    assert api.get("sam", f"/v1/drafts/{draft_id}").json()["version"] == 1


def test_reject_ends_the_draft(api: Api) -> None:
    """A rejected draft can be neither approved nor executed."""
    draft_id = api.submitted()

    rejected = api.post("mia", f"/v1/drafts/{draft_id}/approvals", {"verdict": "reject"})
    approve_after = api.approve("max", draft_id, "manager")
    execute_after = api.post("mia", f"/v1/drafts/{draft_id}/execute")

    assert rejected.json()["draft"]["state"] == "rejected"
    assert approve_after.status_code == 409
    assert approve_after.json()["state"] == "rejected"
    assert execute_after.status_code == 409


def test_dismiss_by_owner_and_not_by_a_stranger(api: Api) -> None:
    """The approval owner may dismiss with a reason; a stranger is refused."""
    draft_id = api.submitted()

    stranger = api.post("fay", f"/v1/drafts/{draft_id}/dismiss", {"reason": "not mine"})
    owner = api.post("mia", f"/v1/drafts/{draft_id}/dismiss", {"reason": "Stock arrived."})

    assert stranger.status_code == 403
    assert owner.status_code == 200
    assert owner.json()["draft"]["state"] == "dismissed"
    [record] = api.audit(draft=draft_id, action="draft.dismissed")
    assert record["record"]["details"] == {"reason": "Stock arrived."}
    assert record["record"]["actor"]["id"] == api.id("mia")


def test_list_filters_and_paginates(api: Api) -> None:
    """Listing filters by state, kind and owner and pages with a cursor."""
    ids = [api.submitted() for _ in range(5)]
    api.approve("mia", ids[0], "manager")

    first = api.get("mia", "/v1/drafts", state="pending", limit=2).json()
    second = api.get("mia", "/v1/drafts", state="pending", limit=2, cursor=first["next_cursor"])
    approved = api.get("mia", "/v1/drafts", state="approved").json()
    by_owner = api.get("mia", "/v1/drafts", owner=api.id("max")).json()

    assert [d["id"] for d in first["items"]] == ids[1:3]
    assert [d["id"] for d in second.json()["items"]] == ids[3:5]
    assert [d["id"] for d in approved["items"]] == ids[:1]
    assert by_owner["items"] == []


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["payload", "lines", 0, "quantity"], "ten", "$.payload.lines[0].quantity"),
        (["payload", "lines", 0, "quantity"], 0, "$.payload.lines[0].quantity"),
        (
            ["payload", "lines", 0, "unit_cost", "minor_units"],
            12.5,
            "$.payload.lines[0].unit_cost.minor_units",
        ),
        (
            ["payload", "lines", 0, "unit_cost", "currency"],
            "EUR",
            "$.payload.lines[0].unit_cost.currency",
        ),
        (["payload", "currency"], "XYZ", "$.payload.currency"),
        (["rationale"], "   ", "$.rationale"),
        (["rationale"], "", "$.rationale"),
        (["affected_records"], [], "$.affected_records"),
        (["kind"], "teleport", "$.kind"),
        (["approval_owner"], "prn_nobody", "$.approval_owner"),
    ],
)
def test_bad_input_is_a_problem_naming_the_field_and_leaves_nothing(
    api: Api, path: list[str | int], value: object, field: str
) -> None:
    """Bad draft input answers 422 naming the field; no draft and no audit record remain."""
    body = purchase_order(api.id("mia"))
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    records_before = len(api.audit())

    response = api.submit("bot", body)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == field
    assert api.get("mia", "/v1/drafts").json()["items"] == []
    assert len(api.audit()) == records_before


@pytest.mark.parametrize(
    ("change", "field", "detail"),
    [
        ({"sku": "SKU-404"}, "$.payload.lines[0].sku", "no item SKU-404"),
        ({"currency": "EUR"}, "$.payload.lines[0].unit_cost.currency", "valued in"),
    ],
    ids=["unknown-item", "item-valued-in-another-currency"],
)
def test_a_draft_names_only_records_the_inventory_holds_as_it_holds_them(
    api: Api, change: dict[str, str], field: str, detail: str
) -> None:
    """A line for an item nobody stocks, or priced in a currency other than the one its item
    is valued in (SKU-1 is valued in USD), is refused at submit: execution could not place
    it. The answer names the field, and nothing is left behind."""
    body = purchase_order(api.id("mia"), currency=change.get("currency", "USD"))
    body["payload"]["lines"][0]["sku"] = change.get("sku", "SKU-1")
    records_before = len(api.audit())

    response = api.submit("bot", body)

    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert detail in error["message"]
    assert len(api.audit()) == records_before


def test_malformed_json_is_a_400_problem(api: Api) -> None:
    """A body that is not JSON answers 400, not 500."""
    response = api.post("bot", "/v1/drafts", raw=b"{not json", key="broken")

    assert response.status_code == 400
    assert response.json()["type"] == "/problems/bad-request"


def test_submitting_needs_an_idempotency_key(api: Api) -> None:
    """An agent cannot create a draft without a key that makes its retries safe."""
    response = api.post("bot", "/v1/drafts", purchase_order(api.id("mia")))

    assert response.status_code == 400
    assert response.json()["header"] == "Idempotency-Key"


def test_same_key_and_body_replays_the_first_answer(api: Api) -> None:
    """A retried submission returns the same draft and creates no second one."""
    body = purchase_order(api.id("mia"))

    first = api.post("bot", "/v1/drafts", body, key="order-7")
    again = api.post("bot", "/v1/drafts", body, key="order-7")

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert len(api.get("mia", "/v1/drafts").json()["items"]) == 1
    assert len(api.audit(action="draft.submitted")) == 1


def test_same_key_with_another_body_is_refused(api: Api) -> None:
    """Reusing a key for different content is a client error, not a silent replay."""
    api.post("bot", "/v1/drafts", purchase_order(api.id("mia")), key="order-8")

    response = api.post(
        "bot", "/v1/drafts", purchase_order(api.id("mia"), quantity=11), key="order-8"
    )

    assert response.status_code == 422
    assert response.json()["type"] == "/problems/idempotency-key-reused"


def test_denied_answers_replay_too(api: Api) -> None:
    """A refused approval retried with its key replays the refusal without a second record."""
    draft_id = api.submitted("sam")
    path = f"/v1/drafts/{draft_id}/approvals"
    body = {"verdict": "approve", "role": "manager"}

    first = api.post("sam", path, body, key="approve-1")
    again = api.post("sam", path, body, key="approve-1")

    assert first.status_code == again.status_code == 403
    assert again.content == first.content
    assert len(api.audit(draft=draft_id, action="decision.refused")) == 1


def test_a_failed_request_releases_its_key(api: Api) -> None:
    """After a 422 the same key may carry a corrected request."""
    broken = purchase_order(api.id("mia"))
    broken["rationale"] = " "

    first = api.post("bot", "/v1/drafts", broken, key="order-9")
    fixed = api.post("bot", "/v1/drafts", purchase_order(api.id("mia")), key="order-9")

    assert first.status_code == 422
    assert fixed.status_code == 201


def test_scopes_guard_each_endpoint(api: Api) -> None:
    """A viewer reads but cannot draft, approve or execute; an agent cannot execute."""
    draft_id = api.submitted()

    assert api.get("viewer", f"/v1/drafts/{draft_id}").status_code == 200
    assert api.submit("viewer", purchase_order(api.id("mia"))).status_code == 403
    assert api.approve("viewer", draft_id, "manager").status_code == 403
    assert api.post("bot", f"/v1/drafts/{draft_id}/execute").json()["required_scope"] == "execute"


def test_missing_or_revoked_token_is_401(api: Api) -> None:
    """No token, a wrong token and a revoked token all answer 401."""
    token_id = api.get("bot", "/v1/me").json()["token_id"]

    revoked = api.client.delete(f"/v1/tokens/{token_id}", headers=api.headers("admin"))
    after = api.get("bot", "/v1/drafts")

    assert api.client.get("/v1/drafts").status_code == 401
    assert api.client.get("/v1/drafts", headers={"Authorization": "Bearer o3_x"}).status_code == 401
    assert revoked.status_code == 200
    assert after.status_code == 401
    assert after.headers["www-authenticate"].startswith("Bearer")
    [record] = api.audit(action="token.revoked")
    assert record["record"]["subject"] == {"type": "token", "id": token_id}


def test_a_patch_that_changes_nothing_keeps_its_approvals(api: Api) -> None:
    """Patching a draft to the content it already has leaves its approvals standing."""
    draft_id = api.submitted("sam", unit_cost=60000)
    api.approve("mia", draft_id, "manager")
    rationale = api.get("sam", f"/v1/drafts/{draft_id}").json()["rationale"]

    patched = api.patch("sam", f"/v1/drafts/{draft_id}", {"rationale": rationale})

    assert patched.json()["draft"]["required"] == [
        {
            "role": "finance",
            "count": 1,
            "excluded": sorted([api.id("sam"), api.id("mia"), api.id("admin")]),
        }
    ]
    assert api.approve("fay", draft_id, "finance").json()["draft"]["state"] == "approved"


def test_a_cursor_the_api_never_gave_is_a_422(api: Api) -> None:
    """Garbage in the cursor is named, not silently read as the first page."""
    for cursor in ["!!!", "é", "eHl6"]:
        response = api.get("mia", "/v1/drafts", cursor=cursor)

        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "cursor"


def test_a_bad_filter_names_the_query_parameter(api: Api) -> None:
    """An unknown state filter is refused under the name the client used."""
    response = api.get("mia", "/v1/drafts", state="lost")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "state"
