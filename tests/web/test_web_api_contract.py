"""The JSON API does what its schema says (issue 18) and sweeps only months the rule pack can
sweep (issue 11 point 4): one test per failure found by schemathesis and per refused month."""

from __future__ import annotations

import re

import pytest
from conftest import Seeded, csrf_of
from fastapi.testclient import TestClient
from freezegun import freeze_time


def _api(seeded: Seeded, user: str = "admin") -> TestClient:
    client = seeded.client()
    client.headers["Authorization"] = f"Bearer {seeded.token(user)}"
    return client


def _schema(client: TestClient) -> dict:
    return client.get("/api/v1/openapi.json").json()


def _flash(r) -> str:
    found = re.search(r'data-flash="(\w+)">([^<]*)<', r.text)
    return f"{found.group(1)}: {found.group(2)}" if found else ""


# ----------------------------------------------------------------- strict request types


def test_a_number_is_not_a_boolean(seeded: Seeded) -> None:
    api = _api(seeded)
    r = api.post("/api/v1/users/officer", json={"active": 0, "roles": []})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "active"]
    assert {u.username: u.active for u in seeded.ctx.accounts.users()}["officer"] is True
    r = api.post("/api/v1/users", json={"username": "zz-new", "password": "x" * 12, "pii": 0})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "pii"]
    assert "zz-new" not in seeded.ctx.accounts.user_names()


def test_a_string_is_not_an_integer_and_unknown_fields_are_refused(seeded: Seeded) -> None:
    api = _api(seeded)
    assert api.post("/api/v1/users/officer/tokens",
                    json={"name": "bank", "days": "30"}).status_code == 422
    assert api.post("/api/v1/users/officer/tokens",
                    json={"name": "bank", "days": True}).status_code == 422
    r = api.post("/api/v1/users/officer", json={"active": True, "admin": True})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "admin"]
    # 30.0 is an integer to JSON Schema, so it is accepted as 30 days
    assert api.post("/api/v1/users/officer/tokens",
                    json={"name": "bank", "days": 30.0}).status_code == 201


# ------------------------------------------------------------ what the schema requires


def test_assign_needs_an_assignee_and_the_schema_says_so(seeded: Seeded) -> None:
    api = _api(seeded, "officer")
    body = _schema(api)["paths"]["/api/v1/alerts/{alert_id}/actions"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["discriminator"]["propertyName"] == (
        "action")
    components = _schema(api)["components"]["schemas"]
    assign = components["AssignIn"]
    assert "assignee" in assign["required"] and assign["properties"]["assignee"]["minLength"] >= 1
    assert "note" in components["ResolveIn"]["required"]
    r = api.post("/api/v1/alerts/1/actions", json={"action": "assign", "assignee": ""})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:2] == ["body", "assign"]
    r = api.post("/api/v1/alerts/1/actions", json={"action": "assign", "assignee": "officer"})
    assert r.status_code == 200 and r.json()["assignee"] == "officer"
    # a user name that is well formed but not an active user: a conflict with what exists
    r = api.post("/api/v1/alerts/1/actions", json={"action": "assign", "assignee": "nobody"})
    assert r.status_code == 409 and "no active user 'nobody'" in r.json()["detail"]
    r = api.post("/api/v1/alerts/1/actions", json={"action": "reopen"})
    assert r.status_code == 409 and "not resolved" in r.json()["detail"]


def test_a_taken_user_name_is_a_conflict(seeded: Seeded) -> None:
    api = _api(seeded)
    r = api.post("/api/v1/users", json={"username": "officer", "password": "x" * 12})
    assert r.status_code == 409 and r.json() == {"detail": "user name 'officer' is taken"}
    r = api.post("/api/v1/users/admin", json={"active": False})  # the caller itself
    assert r.status_code == 409


# ------------------------------------------------------------------ documented answers


@pytest.mark.parametrize("path", ["/api/v1/persons/lookup", "/api/v1/users/officer/tokens",
                                  "/api/v1/items/1/release", "/api/v1/batches/1/reject"])
def test_a_body_that_is_not_json_text_is_a_documented_400(seeded: Seeded, path: str) -> None:
    api = _api(seeded)
    r = api.post(path, content=b"\xff\xfe\x00", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and isinstance(r.json()["detail"], str)
    template = re.sub(r"/(officer|1)(/|$)", lambda m: "/{x}" + m.group(2), path)
    operations = {re.sub(r"\{[a-z_]+\}", "{x}", p): ops
                  for p, ops in _schema(api)["paths"].items()}  # fmt: skip
    responses = operations[template]["post"]["responses"]
    assert "400" in responses
    error = responses["400"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/ErrorOut")


def test_every_error_answer_has_the_documented_body(seeded: Seeded) -> None:
    schema = _schema(_api(seeded))
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorOut"), (method, path, status)
    error = schema["components"]["schemas"]["ErrorOut"]
    assert error["required"] == ["detail"]


def test_sweeping_unchanged_data_again_is_a_documented_200(seeded: Seeded) -> None:
    api = _api(seeded, "officer")
    responses = _schema(api)["paths"]["/api/v1/sweeps"]["post"]["responses"]
    assert {"200", "201", "422"} <= set(responses)
    r = api.post("/api/v1/sweeps", json={"month": "2025-01"})
    assert r.status_code == 200 and r.json()["already"] is True


def test_allow_lists_every_method_of_the_path(seeded: Seeded) -> None:
    api = _api(seeded)
    r = api.options("/api/v1/users")
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "POST"}
    r = api.delete("/api/v1/sweeps")
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_the_api_root_names_the_schema(seeded: Seeded) -> None:
    r = seeded.client().get("/api/v1")
    assert r.status_code == 200 and r.json()["openapi"] == "/api/v1/openapi.json"
    assert seeded.client().get(r.json()["openapi"]).json()["openapi"].startswith("3.")


# ------------------------------------------------------------------- months (issue 11)


@freeze_time("2025-03-10")
@pytest.mark.parametrize("month", ["0001-01", "1900-01", "2023-01", "2100-01", "9999-12"])
def test_api_refuses_a_month_outside_the_range(seeded: Seeded, month: str) -> None:
    api = _api(seeded, "officer")
    runs_before = len(seeded.ctx.ledger.runs())
    r = api.post("/api/v1/sweeps", json={"month": month})
    assert r.status_code == 422, r.text
    assert r.json() == {"detail": f"month {month} is outside the months this rule pack can "
                                  "sweep (2023-02 … 2026-03)"}  # fmt: skip
    assert len(seeded.ctx.ledger.runs()) == runs_before


@pytest.mark.parametrize("month", ["2025-13", "abc", "", 202501])
def test_api_refuses_what_is_not_a_month(seeded: Seeded, month: object) -> None:
    r = _api(seeded, "officer").post("/api/v1/sweeps", json={"month": month})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "month"]


@freeze_time("2025-03-10")
def test_schema_describes_the_months_a_sweep_may_cover(seeded: Seeded) -> None:
    month = _schema(_api(seeded))["components"]["schemas"]["SweepIn"]["properties"]["month"]
    pattern = re.compile(month["pattern"])
    assert pattern.match("2023-02") and pattern.match("2026-03") and pattern.match("2025-01")
    for outside in ("2023-01", "2026-04", "2100-01", "1900-01", "0001-01", "9999-12"):
        assert not pattern.match(outside), outside
    assert "2023-02 … 2026-03" in month["description"]


def test_api_never_answers_for_another_month(seeded: Seeded) -> None:
    api = _api(seeded, "auditor")
    r = api.get("/api/v1/dashboard", params={"month": "2024-06"})
    assert r.status_code == 404 and "no sweep of 2024-06 is recorded" in r.json()["detail"]
    assert api.get("/api/v1/dashboard", params={"month": "2025-01"}).json()["month"] == "2025-01"
    ctx = seeded.ctx
    item = ctx.ledger.items(ctx.ledger.batches()[0].id, limit=1)[0]
    ref = ctx.directory.ref(item.id_no)
    r = api.get(f"/api/v1/persons/{ref}/explanation", params={"month": "2024-06"})
    assert r.status_code == 404 and "2024-06" in r.json()["detail"]
    assert api.get(f"/api/v1/persons/{ref}/explanation",
                   params={"month": "2025-01"}).status_code == 200


@freeze_time("2025-03-10")
@pytest.mark.parametrize("month", ["0001-01", "1900-01", "2100-01", "9999-12"])
def test_sweep_page_shows_the_message(seeded: Seeded, month: str) -> None:
    officer = seeded.client("officer")
    r = officer.post("/sweeps", data={"csrf_token": csrf_of(officer), "month": month})
    assert r.status_code == 200, r.text[:300]
    assert _flash(r) == (f"error: month {month} is outside the months this rule pack can sweep "
                         "(2023-02 … 2026-03)")  # fmt: skip
    page = officer.get("/runs").text
    assert 'min="2023-02" max="2026-03"' in page and "2023-02 … 2026-03" in page


@pytest.mark.parametrize("month", ["2025-13", "abc"])
def test_sweep_page_refuses_what_is_not_a_month(seeded: Seeded, month: str) -> None:
    officer = seeded.client("officer")
    r = officer.post("/sweeps", data={"csrf_token": csrf_of(officer), "month": month})
    assert r.status_code == 200 and "month must look like 2025-01" in _flash(r)
