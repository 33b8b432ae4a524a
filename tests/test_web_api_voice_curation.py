"""Curating the themes over the REST API (docs/web.md, "Curating themes"): rename, merge, split,
delete, add and remove keyword rules and restore a version, each a POST calling the
:mod:`cxloop.voice.themes` function of that name with the token's user as who, answering the new
taxonomy version; the core's refusals are 422 problems naming the body field, a change made
meanwhile a 409; only tokens whose role holds ``themes.curate`` may curate."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient

import conftest
import test_web_voice_curation
from cxloop import Store
from cxloop.voice import themes
from cxloop.voice.themes_store import ConcurrentChange
from cxloop.web.api_voice import curated
from cxloop.web.errors import Problem
from cxloop.web.roles import Capability, Role
from test_web_voice_curation import CURATOR, T0, by_size, current, declared

# A 300-customer demo with themes discovered and a user of each role (tests/test_web_voice_curation.py).
base_file = test_web_voice_curation.base_file
store = test_web_voice_curation.store
client = test_web_voice_curation.client

ROUTES = ["rename", "merge", "split", "delete", "rules", "rules/remove", "restore"]
PROBLEM = "application/problem+json"


def token(store: Store, email: str, role: Role) -> dict[str, str]:
    return conftest.bearer(store, email, role, now=T0)


def curate(client: TestClient, headers: dict[str, str], route: str, **body: Any) -> Any:
    response = client.post(f"/api/v1/voice/themes/{route}", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def same_as_the_library(answer: dict[str, Any], store: Store) -> None:
    """The answer is the store's current version, as the library reads it."""
    taxonomy = current(store)
    assert answer["version"] == taxonomy.version and answer["action"] == taxonomy.action
    assert answer["created_by"] == taxonomy.created_by == CURATOR
    assert dt.datetime.fromisoformat(answer["created_at"]) == taxonomy.created_at == T0
    assert answer["details"] == taxonomy.details
    assert answer["themes"] == [
        {"theme_id": t.theme_id, "label": t.label, "terms": list(t.terms), "keywords": list(t.keywords),
         "topics": len(t.topics), "curated": t.curated}
        for t in taxonomy.active
    ]  # fmt: skip


def test_a_token_with_themes_curate_curates_every_way(client: TestClient, store: Store) -> None:
    headers = token(store, CURATOR, Role.ANALYST)
    a, b, c, d = by_size(store)[:4]
    quote = str(themes.theme_report(store).set_index("theme_id").loc[d, "quotes"][0])

    renamed = curate(client, headers, "rename", theme=a, label="  Refunds   received ")
    same_as_the_library(renamed, store)
    assert renamed["version"] == 2 and renamed["what"] == f"theme {a} renamed “Refunds received”"
    merged = curate(client, headers, "merge", themes=[b, c], label="Parcels and orders")
    same_as_the_library(merged, store)
    assert next(t for t in merged["themes"] if t["theme_id"] == b)["topics"] == 2
    same_as_the_library(curate(client, headers, "split", theme=b), store)
    deleted = curate(client, headers, "delete", theme=d)
    same_as_the_library(deleted, store)
    assert d not in {t["theme_id"] for t in deleted["themes"]}
    same_as_the_library(curate(client, headers, "rules", keywords=["charged twice", "Double charge"], theme=a),
                        store)  # fmt: skip
    assert current(store).theme(a).keywords == ("charged twice", "double charge")
    ruled = curate(client, headers, "rules", keywords=["newsletter"], label="Newsletter")
    same_as_the_library(ruled, store)
    assert ruled["what"].startswith("keyword rule “newsletter” for new theme")
    unruled = curate(client, headers, "rules/remove", theme=a, keywords=["charged twice"])
    same_as_the_library(unruled, store)
    assert current(store).theme(a).keywords == ("double charge",)

    restored = curate(client, headers, "restore", version=deleted["version"] - 1)
    same_as_the_library(restored, store)
    assert restored["what"] == f"restored version {deleted['version'] - 1}"
    assert themes.tag(store, [quote])["theme_id"].iloc[0] == d  # the deleted theme is back

    history = themes.history(store)
    versions = client.get(
        "/api/v1/voice/themes/versions", headers=token(store, "viewer@example.com", Role.VIEWER)
    )
    assert versions.status_code == 200
    assert [(v["version"], v["action"], v["created_by"]) for v in versions.json()] == [
        (h["version"], h["action"], h["created_by"]) for h in history
    ]
    assert [v["action"] for v in versions.json()] == [
        "restore", "remove-rule", "rule", "rule", "delete", "split", "merge", "rename", "discover",
    ]  # fmt: skip
    # the read-only API follows at once (cached per taxonomy version)
    shown = client.get("/api/v1/voice/themes", headers=headers).json()
    assert shown["version"] == restored["version"] and d in {t["theme_id"] for t in shown["themes"]}


def test_refusals_are_422_problems_naming_the_field(client: TestClient, store: Store) -> None:
    headers = token(store, CURATOR, Role.ANALYST)
    a = by_size(store)[0]
    version = current(store).version
    cases = [
        ("rename", {"theme": 999, "label": "Anything"}, "theme", "no theme 999"),
        ("rename", {"theme": a, "label": "   "}, "label", "a theme label must have 1 to 80 characters"),
        ("merge", {"themes": [a, a]}, "themes", "merge needs at least two different themes"),
        ("merge", {"themes": [a, 999]}, "themes", "no theme 999"),
        ("split", {"theme": a, "parts": 11}, "parts", "parts must be between 2 and 10"),
        ("delete", {"theme": 999}, "theme", "no theme 999"),
        ("rules", {"keywords": [" "], "theme": a}, "keywords", "a rule needs at least one keyword"),
        ("rules", {"keywords": ["refund"]}, "theme", "a rule needs a theme"),
        ("rules/remove", {"theme": a, "keywords": ["zyzzyva"]}, "keywords", "has no keyword rule 'zyzzyva'"),
        ("restore", {"version": 99}, "version", "no taxonomy version 99"),
        ("restore", {"version": version}, "version", f"version {version} is the current version"),
    ]
    for route, body, field, reason in cases:
        response = client.post(f"/api/v1/voice/themes/{route}", json=body, headers=headers)
        assert response.status_code == 422, (route, body, response.text)
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["field"] == field and reason in problem["detail"], (route, body, problem)
        assert problem["errors"] == [{"loc": ["body", field], "msg": problem["errors"][0]["msg"],
                                      "type": "value_error"}]  # fmt: skip
        assert (
            reason in problem["errors"][0]["msg"] and problem["instance"] == f"/api/v1/voice/themes/{route}"
        )
    # the request's own shape: a missing or misspelt field, a wrong type
    for body, loc in (({"theme": a}, ["body", "label"]), ({"theme": a, "label": "x", "lable": "y"}, ["body", "lable"]),
                      ({"theme": "first", "label": "x"}, ["body", "theme"])):  # fmt: skip
        response = client.post("/api/v1/voice/themes/rename", json=body, headers=headers)
        assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
        assert [e["loc"] for e in response.json()["errors"]] == [loc]
    assert current(store).version == version  # nothing was written


def test_only_themes_curate_may_curate(client: TestClient, store: Store) -> None:
    assert declared(client, "/api/v1/voice/themes/") == {
        **{("POST", f"/api/v1/voice/themes/{r}"): {Capability.THEMES_CURATE.value} for r in ROUTES},
        ("GET", "/api/v1/voice/themes/versions"): {Capability.DASHBOARDS_READ.value},
    }
    schema = client.get("/api/v1/openapi.json").json()
    for route in ROUTES:
        operation = schema["paths"][f"/api/v1/voice/themes/{route}"]["post"]
        assert {"201", "401", "403", "409", "422"} <= set(operation["responses"]), route
        assert operation["requestBody"]["required"], route
    version = current(store).version
    body = {"theme": 1, "themes": [1, 2], "label": "Mine", "keywords": ["x"], "version": 1}
    for role in (Role.VIEWER, Role.AGENT):
        headers = token(store, f"{role.value}@example.com", role)
        for route in ROUTES:
            fields = {k: body[k] for k in _fields(route)}
            response = client.post(f"/api/v1/voice/themes/{route}", json=fields, headers=headers)
            assert response.status_code == 403, (role, route, response.text)
            assert response.headers["content-type"] == PROBLEM
    # an analyst's token acting as a viewer is capped to the viewer's capabilities
    capped = token(store, CURATOR, Role.VIEWER)
    assert client.post("/api/v1/voice/themes/delete", json={"theme": 1}, headers=capped).status_code == 403
    assert client.post("/api/v1/voice/themes/delete", json={"theme": 1}).status_code == 401
    assert current(store).version == version
    for role in (Role.MANAGER, Role.ADMIN):
        headers = token(store, f"{role.value}@example.com", role)
        assert client.post("/api/v1/voice/themes/rename", json={"theme": 1, "label": role.value},
                           headers=headers).status_code == 201  # fmt: skip
    assert current(store).created_by == "admin@example.com"


def _fields(route: str) -> tuple[str, ...]:
    return {
        "rename": ("theme", "label"), "merge": ("themes", "label"), "split": ("theme",), "delete": ("theme",),
        "rules": ("keywords", "theme"), "rules/remove": ("theme", "keywords"), "restore": ("version",),
    }[route]  # fmt: skip


def test_a_change_made_meanwhile_is_a_409() -> None:
    def meanwhile() -> themes.Taxonomy:
        raise ConcurrentChange("the themes changed meanwhile (now version 5, this change was made from 4)")

    with pytest.raises(Problem) as refused:
        curated(meanwhile)
    assert refused.value.status == 409 and "changed meanwhile" in str(refused.value.detail)
