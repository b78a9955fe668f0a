"""The registry's declared schema: unknown keys refused at every level, every problem named at once, defaults
applied, and the same declaration exported as a JSON Schema for editors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from roster_pipeline.config.registry import (
    GUARD_DEFAULTS,
    GuardSettings,
    NetworkSettings,
    RegistryError,
    parse_registry,
    registry_json_schema,
)

BUNDLED = Path(__file__).resolve().parents[2] / "data" / "districts.yaml"


def csv_district(district_id: str = "oak", **overrides: Any) -> dict[str, Any]:
    return {"id": district_id, "source": {"kind": "csv", "path": "/srv/drops/oak"}, **overrides}


def rest_district(district_id: str = "elm") -> dict[str, Any]:
    return {
        "id": district_id,
        "source": {
            "kind": "rest",
            "base_url": "https://sis.example.org/ims/oneroster/v1p1",
            "auth": {"token_url": "https://sis.example.org/token", "client_id_env": "A", "client_secret_env": "B"},
        },
    }


def problems_of(document: dict[str, Any]) -> list[str]:
    """Every problem of a document: a bad `notifications` section is kept apart from the districts (it must not
    stop their syncs) and raised where alerts are sent."""
    try:
        registry = parse_registry(document)
    except RegistryError as refused:
        return refused.problems
    assert registry.notification_problems, "the document was accepted"
    return list(registry.notification_problems)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"districts": [csv_district()], "timezon": "UTC"}, "timezon: unknown key (did you mean 'timezone'?)"),
        ({"districts": [csv_district(schedul="0 1 * * *")]}, "district 'oak', field schedul: unknown key"),
        (
            {"districts": [csv_district(source={"kind": "csv", "path": "/x", "paht": "/y"})]},
            "district 'oak', field source.paht: unknown key (did you mean 'path'?)",
        ),
        (
            {"districts": [csv_district(guard={"max_removed_shares": 0.2})]},
            "district 'oak', field guard.max_removed_shares: unknown limit (did you mean 'max_removed_share'?)",
        ),
        (
            {"districts": [csv_district()], "network": {"read_timout": 5}},
            "network.read_timout: unknown setting (did you mean 'read_timeout'?)",
        ),
        (
            {"districts": [csv_district(pauses=[{"from": "2027-06-20", "to": "2027-08-15", "why": "x"}])]},
            "district 'oak', field pauses[1].why: unknown key",
        ),
        (
            {"districts": [csv_district(schools={"sites": [{"sourced_id": "s1", "site": "N"}]})]},
            "district 'oak', field schools.sites[1].site: unknown key (did you mean 'site_id'?)",
        ),
        (
            {"districts": [csv_district()], "notifications": {"webhook": {"url_env": "HOOK", "channel": "#ops"}}},
            "notifications.webhook.channel: unknown setting",
        ),
    ],
)
def test_an_unknown_key_is_refused_at_every_level(document: dict[str, Any], problem: str) -> None:
    assert any(line.startswith(problem) for line in problems_of(document)), problems_of(document)


def test_every_problem_is_named_at_once_with_its_district_and_field() -> None:
    second = rest_district()
    second["source"]["page_size"] = 0
    problems = problems_of(
        {
            "districts": [
                csv_district(network={"max_attempts": 0}, blackouts=[{"days": ["funday"], "from": "7", "to": "8"}]),
                second,
                {"name": "No id", "source": {"kind": "csv", "path": "/x"}},
            ],
            "guard": {"max_users_changed": 1.5},
        }
    )
    assert problems == [
        "district 'oak', field network.max_attempts: '0' must be an integer of at least 1",
        "district 'oak', field blackouts[1]: '7' to '8' must be two different times (HH:MM)",
        "district 'elm', field source.page_size: '0' must be a positive integer",
        "district #3, field id: 'None' is not allowed: use lowercase letters, digits and '-'",
        "guard.max_users_changed: '1.5' must be a number between 0 and 1 (e.g. 0.1)",
    ]


def test_top_level_sections_are_every_districts_defaults_and_a_district_overrides_them_key_by_key() -> None:
    registry = parse_registry(
        {
            "districts": [csv_district("oak", guard={"max_malformed": 5}), csv_district("elm", pauses=[])],
            "guard": {"max_removed_share": 0.2, "max_malformed": 50},
            "network": {"read_timeout": 10},
            "pauses": [{"from": "2027-06-20", "to": "2027-08-15", "reason": "summer"}],
        }
    )
    oak, elm = registry.district("oak"), registry.district("elm")
    assert (oak.max_removed_share, oak.max_malformed) == (0.2, 5)
    assert (elm.max_removed_share, elm.max_malformed) == (0.2, 50)
    assert oak.max_users_changed == GUARD_DEFAULTS.max_users_changed
    assert oak.network == NetworkSettings(read_timeout=10)
    assert [pause.reason for pause in oak.pauses] == ["summer"] and elm.pauses == ()


def test_a_district_that_says_nothing_gets_the_declared_defaults() -> None:
    district = parse_registry({"districts": [rest_district()]}).district("elm")
    guard = {name: getattr(district, name) for name in GuardSettings.model_fields}
    assert (
        guard
        == GuardSettings().model_dump()
        == {
            "max_removed_share": 0.10,
            "max_malformed": 100,
            "max_students_removed": None,
            "max_links_removed": None,
            "max_users_changed": 0.75,
            "max_enrollments_changed": 0.75,
        }
    )
    assert district.network == NetworkSettings()
    assert district.name == "elm" and district.provider.key == "generic"
    assert district.source.auth.type == "oauth2"  # type: ignore[union-attr]
    assert district.source.page_size == district.provider.page_size_cap  # type: ignore[union-attr]


def test_a_page_size_above_the_providers_cap_is_lowered_to_it() -> None:
    entry = rest_district()
    entry["source"]["page_size"] = 10**6
    district = parse_registry({"districts": [entry]}).district("elm")
    assert district.source.page_size == district.provider.page_size_cap  # type: ignore[union-attr]


def test_the_notifications_section_is_part_of_the_schema() -> None:
    registry = parse_registry({"districts": [csv_district()], "notifications": {"webhook": {"url_env": "HOOK"}}})
    assert registry.notifications is not None and registry.notifications.failed_runs == 3


def test_the_json_schema_declares_every_section_and_refuses_unknown_keys() -> None:
    schema = registry_json_schema()
    definitions = schema["$defs"]
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["required"] == ["districts"] and schema["additionalProperties"] is False
    assert {"districts", "timezone", "network", "guard", "pauses", "blackouts", "notifications"} == set(
        schema["properties"]
    )
    district = definitions["DistrictSection"]
    assert district["required"] == ["id", "source"]
    assert {"provider", "endpoints", "schedule", "guard", "network", "pickup_metadata"} <= set(district["properties"])
    assert district["properties"]["source"]["discriminator"]["propertyName"] == "kind"
    for name, definition in definitions.items():
        assert definition["additionalProperties"] is False, name
    assert definitions["GuardSettings"]["properties"]["max_removed_share"]["default"] == 0.10
    assert set(definitions["Pause"]["required"]) == {"from", "to"}  # the keys as written, not the attributes
    endpoints = district["properties"]["endpoints"]["anyOf"][0]["items"]["enum"]
    assert "users" in endpoints and "gradebook" not in endpoints


def test_the_bundled_registry_matches_the_json_schema() -> None:
    """With `jsonschema` installed the bundled file is checked against the schema; without it, by hand: every key
    of the file is declared where it is used."""
    document = yaml.safe_load(BUNDLED.read_text(encoding="utf-8"))
    schema = registry_json_schema()
    try:
        import jsonschema
    except ImportError:
        definitions = schema["$defs"]
        assert set(document) <= set(schema["properties"])
        for entry in document["districts"]:
            assert set(entry) <= set(definitions["DistrictSection"]["properties"])
            source = definitions[f"{entry['source']['kind'].capitalize()}SourceSection"]
            assert set(entry["source"]) <= set(source["properties"])
            if "auth" in entry["source"]:
                assert set(entry["source"]["auth"]) <= set(definitions["AuthSection"]["properties"])
    else:
        jsonschema.validate(document, schema)
