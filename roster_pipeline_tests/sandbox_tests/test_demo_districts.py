"""The bundled demo districts: what `roster-pipeline sandbox` serves."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from roster_pipeline.sandbox.demo_districts import DEMO_DISTRICTS, build_demo_server, demo_environment
from roster_pipeline.sandbox.server import SandboxServer


@pytest.fixture
def demo_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    for name in demo_environment():
        monkeypatch.delenv(name, raising=False)
    with build_demo_server() as server:
        yield server


def test_demo_credentials_live_in_named_environment_variables() -> None:
    env = demo_environment()
    assert set(env) == {"DEMO_OAK_CLIENT_ID", "DEMO_OAK_CLIENT_SECRET", "DEMO_ELM_CLIENT_ID", "DEMO_ELM_CLIENT_SECRET"}
    assert {d.district_id: d.auth_kind for d in DEMO_DISTRICTS} == {"demo-oak": "oauth2", "demo-elm": "oauth1"}


def test_demo_oak_serves_a_few_hundred_users_over_oauth2(demo_server: SandboxServer) -> None:
    env = demo_environment()
    token = httpx.post(
        demo_server.token_url("demo-oak"),
        data={"grant_type": "client_credentials"},
        auth=(env["DEMO_OAK_CLIENT_ID"], env["DEMO_OAK_CLIENT_SECRET"]),
    ).json()["access_token"]
    response = httpx.get(f"{demo_server.base_url('demo-oak')}/users", headers={"Authorization": f"Bearer {token}"})
    assert 200 <= int(response.headers["x-total-count"]) <= 1000


def test_demo_elm_is_oauth1_with_link_paging_and_no_demographics(demo_server: SandboxServer) -> None:
    elm = demo_server.district("demo-elm")
    assert 200 <= elm.counts()["users"] <= 1000
    assert httpx.get(f"{demo_server.base_url('demo-elm')}/users").status_code == 401
    assert httpx.post(demo_server.token_url("demo-elm")).status_code == 404
