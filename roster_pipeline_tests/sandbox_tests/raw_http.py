"""Raw-HTTP helpers for the sandbox's own tests (they talk to it with plain httpx, not the client library)."""

from __future__ import annotations

import httpx

from roster_pipeline_tests.conftest import ServedDistrict


def fetch_token(served: ServedDistrict) -> str:
    """An access token from the district's token endpoint (client_secret_basic)."""
    response = httpx.post(
        served.token_url,
        data={"grant_type": "client_credentials"},
        auth=(served.auth.client_id, served.auth.client_secret),
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer_client(served: ServedDistrict) -> httpx.Client:
    """An httpx client carrying a fresh bearer token, with the district's OneRoster base URL as base_url."""
    return httpx.Client(
        base_url=served.base_url + "/",
        headers={"Authorization": f"Bearer {fetch_token(served)}"},
        timeout=10,
    )


def imsx_description(response: httpx.Response) -> str:
    """The imsx_description of a OneRoster error body (flat or wrapped in statusInfoSet)."""
    body = response.json()
    status = body["statusInfoSet"][0] if "statusInfoSet" in body else body
    assert status["imsx_codeMajor"] == "failure"
    return status["imsx_description"]


def page_through(client: httpx.Client, endpoint: str, header_mode: str, limit: int, **params: str) -> list[dict]:
    """Every record of `endpoint`, paging the way `header_mode` allows a client to know when to stop."""
    records: list[dict] = []
    url: str | None = endpoint
    query: dict[str, str | int] | None = {**params, "limit": limit, "offset": 0}
    while url is not None:
        response = client.get(url, params=query)
        assert response.status_code == 200, response.text
        page = response.json()[endpoint]
        records += page
        if header_mode == "link":
            assert "x-total-count" not in response.headers
            next_link = response.links.get("next")
            url, query = (next_link["url"], None) if next_link else (None, None)
            continue
        assert query is not None
        offset = int(query["offset"]) + len(page)
        if header_mode in ("both", "total"):
            more = offset < int(response.headers["x-total-count"])
        else:  # no headers: only an empty page proves the end
            assert "x-total-count" not in response.headers and "link" not in response.headers
            more = bool(page)
        query = {**query, "offset": offset} if more else None
        url = endpoint if more else None
    return records
