"""The bundled demo districts, served by `roster-pipeline sandbox --port N`.

The demo credentials are fixed, non-sensitive strings. The pipeline reads them, like any district's, from
environment variables named in the registry; `demo_environment()` gives their values so the demo command can
set them, and a value already in the environment overrides the default on both sides.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline.sandbox.server import DistrictAuth, HeaderMode, SandboxServer


@dataclass(frozen=True)
class DemoDistrict:
    """One demo district: its data, how it authenticates and which provider quirks it shows."""

    spec: DistrictSpec
    name: str
    auth_kind: str
    client_id_env: str
    client_secret_env: str
    default_client_id: str
    default_client_secret: str
    header_mode: HeaderMode = "both"
    max_page_size: int | None = None
    offered: frozenset[str] | None = None

    @property
    def district_id(self) -> str:
        return self.spec.district_id

    def auth(self) -> DistrictAuth:
        """The credentials the sandbox accepts: from the environment, else the fixed demo values."""
        return DistrictAuth(
            self.auth_kind,  # type: ignore[arg-type]
            os.environ.get(self.client_id_env) or self.default_client_id,
            os.environ.get(self.client_secret_env) or self.default_client_secret,
        )


DEMO_DISTRICTS: tuple[DemoDistrict, ...] = (
    DemoDistrict(
        spec=DistrictSpec(
            "demo-oak", seed=7, schools=3, students_per_school=60, classes_per_school=8, teachers_per_school=5
        ),
        name="Oak Valley USD (OAuth 2.0 client credentials)",
        auth_kind="oauth2",
        client_id_env="DEMO_OAK_CLIENT_ID",
        client_secret_env="DEMO_OAK_CLIENT_SECRET",
        default_client_id="demo-oak-client",
        default_client_secret="demo-oak-not-a-secret",
    ),
    # Elm signs requests with OAuth 1.0a, pages with Link headers only, caps pages at 50 records and does
    # not offer demographics: the quirks of an older SIS.
    DemoDistrict(
        spec=DistrictSpec(
            "demo-elm", seed=11, schools=2, students_per_school=70, classes_per_school=6, teachers_per_school=4
        ),
        name="Elm Creek SD (OAuth 1.0a HMAC-SHA256)",
        auth_kind="oauth1",
        client_id_env="DEMO_ELM_CLIENT_ID",
        client_secret_env="DEMO_ELM_CLIENT_SECRET",
        default_client_id="demo-elm-key",
        default_client_secret="demo-elm-not-a-secret",
        header_mode="link",
        max_page_size=50,
        offered=frozenset({"academicSessions", "orgs", "users", "classes", "enrollments", "courses"}),
    ),
)


def demo_environment() -> dict[str, str]:
    """Environment variables holding the demo credentials, with their fixed default values."""
    env = {}
    for demo in DEMO_DISTRICTS:
        env[demo.client_id_env] = demo.default_client_id
        env[demo.client_secret_env] = demo.default_client_secret
    return env


def build_demo_server(port: int = 0, districts: Iterable[DemoDistrict] = DEMO_DISTRICTS) -> SandboxServer:
    """A sandbox server (not yet started) hosting the demo districts."""
    server = SandboxServer(port=port)
    for demo in districts:
        server.add_district(
            generate_district(demo.spec),
            auth=demo.auth(),
            header_mode=demo.header_mode,
            max_page_size=demo.max_page_size,
            offered=demo.offered,
        )
    return server


def run_demo_server(port: int) -> None:
    """Serve the demo districts on 127.0.0.1:`port` until Ctrl-C, printing their URLs (never secrets)."""
    server = build_demo_server(port).start()
    print(f"OneRoster 1.1 sandbox listening on {server.url} (Ctrl-C to stop)")
    for demo in DEMO_DISTRICTS:
        counts = server.district(demo.district_id).counts()
        print(f"\n  {demo.district_id}: {demo.name}, {counts['users']} users")
        print(f"    base URL   {server.base_url(demo.district_id)}")
        if demo.auth_kind == "oauth2":
            print(f"    token URL  {server.token_url(demo.district_id)}")
        print(f"    credentials from ${demo.client_id_env} / ${demo.client_secret_env}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nsandbox stopped")
