"""A user of one environment sees nothing of another through lists, the event stream or the audit log."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.security.conftest import People

COMPOSE = "services:\n  web:\n    image: corral/busybox\n"


def test_the_event_stream_of_a_user_carries_only_their_environment(api: TestClient, people: People) -> None:
    other_id = api.get("/v1/environments/other").json()["id"]
    with api.websocket_connect("/v1/events", headers=people.stranger) as events:  # no environment named
        api.put("/v1/stacks", json={"name": "secret-plans", "compose": COMPOSE, "environment": "default"})
        api.put("/v1/stacks", json={"name": "visible", "compose": COMPOSE, "environment": "other"})
        first = events.receive_json()
    assert first["environment_id"] == other_id, first
    assert "secret-plans" not in str(first)


def test_lists_without_an_environment_show_only_the_caller_s(api: TestClient, people: People) -> None:
    api.put("/v1/stacks", json={"name": "secret-plans", "compose": COMPOSE, "environment": "default"})
    api.put("/v1/stacks", json={"name": "visible", "compose": COMPOSE, "environment": "other"})
    for path in ("/v1/stacks", "/v1/services", "/v1/containers", "/v1/hosts", "/v1/catalogs"):
        response = api.get(path, headers=people.stranger)
        assert response.status_code == 200, (path, response.text)
        assert "secret-plans" not in response.text
    assert [s["name"] for s in api.get("/v1/stacks", headers=people.stranger).json()["data"]] == ["visible"]
    assert sorted(s["name"] for s in api.get("/v1/stacks").json()["data"]) == ["secret-plans", "visible"]  # admin
    owner = people.by_role["owner"]
    api.put("/v1/environments/other/members", json={"user": "u-owner", "role": "read-only"})
    response = api.get("/v1/stacks", headers=owner)  # a member of two environments names one
    assert response.status_code == 422 and "name an environment" in response.json()["message"]
    assert [e["name"] for e in api.get("/v1/environments", headers=owner).json()["data"]] == ["default", "other"]
    audit = api.get("/v1/audit", params={"environment": "other"}, headers=owner)
    assert audit.status_code == 403  # read-only there: no audit


FILTERS = ("environment", "stack", "service", "host", "user")  # the query parameters that pick what is listed


def test_no_route_read_or_searched_by_a_stranger_shows_anything_of_another_environment(
    api: TestClient, people: People
) -> None:
    """Every GET route of the OpenAPI document, as the owner of `other`: with `default`'s ids in the path, with no
    environment, with their own, and with every filter of the route set to `default`'s ids and names (the search
    a curious user would try). No answer carries an id or a name of `default`'s objects."""
    from tests.security.routes import openapi_routes
    from tests.security.test_role_matrix import objects

    assert (
        api.put("/v1/stacks", json={"name": "visible", "compose": COMPOSE, "environment": "other"}).status_code == 201
    )
    with objects(api) as values:
        default_id = api.get("/v1/environments/default").json()["id"]
        ids = ("host_id", "token_id", "stack_id", "service_id", "container_id", "registry_id", "access_key")
        markers = {default_id, "secret-plans", *(values[name] for name in ids)} - {"none"}
        api.put("/v1/stacks", json={"name": "secret-plans", "compose": COMPOSE, "environment": "default"})
        searches = {
            "environment": ("default", default_id),
            "stack": (values["stack_id"], "shop", "secret-plans"),
            "service": (values["service_id"], "web"),
            "host": (values["host_id"],),
            "user": ("u-owner", "victim"),
        }
        document = api.app.openapi()  # type: ignore[attr-defined]
        leaks: list[str] = []
        calls = 0
        for method, path in sorted(openapi_routes(api.app)):  # type: ignore[arg-type]
            if method != "GET":
                continue
            declared = {p["name"] for p in document["paths"][path]["get"].get("parameters", []) if p["in"] == "query"}
            queries: list[dict[str, str]] = [{}, *([{"environment": "other"}] if "environment" in declared else [])]
            queries += [
                {
                    name: value,
                    **({"environment": "other"} if "environment" in declared and name != "environment" else {}),
                }
                for name in FILTERS
                if name in declared
                for value in searches[name]
            ]
            urls = {path.replace("{ref}", ref) for ref in ("default", "other")}
            for url in urls:
                url = url.format(**values)
                for query in queries:
                    response = api.get(url, params=query, headers=people.stranger)
                    calls += 1
                    asked = url + " " + " ".join(query.values())  # an error may repeat what was asked, no more
                    found = sorted(m for m in markers if m in response.text and m not in asked)
                    if found or response.status_code >= 500:
                        leaks.append(f"GET {url} {query}: {response.status_code} shows {found}")
                    made_up = {
                        k: v if (k, v) == ("environment", "other") else "no-such-thing" for k, v in query.items()
                    }
                    if made_up != query:  # what exists elsewhere answers as what does not exist at all
                        unknown = api.get(url, params=made_up, headers=people.stranger)
                        if unknown.status_code != response.status_code:
                            leaks.append(f"GET {url} {query}: {response.status_code}, unknown: {unknown.status_code}")
    assert calls > 50
    assert not leaks, "\n".join(leaks)
