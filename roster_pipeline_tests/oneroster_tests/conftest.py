"""Sandbox districts for the OneRoster client tests: one server, several small districts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from roster_pipeline.oneroster import OAuth1HmacSha256, OAuth2ClientCredentials, OneRosterClient, RetryPolicy
from roster_pipeline.sandbox.generator import DistrictSpec, SyntheticDistrict, generate_district
from roster_pipeline.sandbox.server import DistrictAuth, RequestRecord, SandboxServer

SECRET = "Zq9-secret-value-7"


def settled_log(server: SandboxServer, district_id: str) -> list[RequestRecord]:
    """The server's request log once it stops growing.

    The sandbox appends a request to its log just after writing the response, so the client can hold the
    last response a moment before its entry appears; read until two reads agree.
    """
    log = server.request_log(district_id)
    for _ in range(40):
        time.sleep(0.02)
        again = server.request_log(district_id)
        if len(again) == len(log):
            return again
        log = again
    return log


@dataclass
class Sandbox:
    """A running sandbox server and helpers to register districts and build clients for them."""

    server: SandboxServer

    def add(
        self,
        district_id: str,
        kind: str = "oauth2",
        header_mode: str = "both",
        max_page_size: int | None = None,
        offered: set[str] | None = None,
        **spec: object,
    ) -> SyntheticDistrict:
        district = generate_district(DistrictSpec(district_id, seed=3, **spec))  # type: ignore[arg-type]
        self.server.add_district(
            district,
            auth=DistrictAuth(kind=kind, client_id=f"{district_id}-id", client_secret=SECRET),  # type: ignore[arg-type]
            header_mode=header_mode,
            max_page_size=max_page_size,
            offered=offered,
        )
        return district

    def request_log(self, district_id: str) -> list[RequestRecord]:
        return settled_log(self.server, district_id)

    def client(
        self,
        district_id: str,
        kind: str = "oauth2",
        secret: str = SECRET,
        client_auth_method: str = "client_secret_basic",
        sleeps: list[float] | None = None,
        auth: httpx.Auth | None = None,
        **options: object,
    ) -> OneRosterClient:
        if auth is not None:
            pass
        elif kind == "oauth2":
            auth = OAuth2ClientCredentials(
                self.server.token_url(district_id),
                f"{district_id}-id",
                secret,
                client_auth_method=client_auth_method,
            )
        else:
            auth = OAuth1HmacSha256(f"{district_id}-id", secret)
        # Retries really happen over HTTP; only the waiting between them is recorded instead of slept.
        recorded = sleeps if sleeps is not None else []
        retry = RetryPolicy(max_attempts=5, sleep=recorded.append)
        options.setdefault("retry", retry)
        options.setdefault("timeout", 10.0)
        return OneRosterClient(
            self.server.base_url(district_id),
            auth,
            label=f"district {district_id!r}",
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with SandboxServer() as server:
        yield Sandbox(server)
