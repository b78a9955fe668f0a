"""The district registry: the bundled file loads, and a bad one gets one clear line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from roster_pipeline.config.registry import (
    CsvSource,
    MissingSecretError,
    RegistryError,
    RestSource,
    load_registry,
    parse_registry,
)
from roster_pipeline.oneroster import ENDPOINT_NAMES

BUNDLED = Path(__file__).resolve().parents[2] / "data" / "districts.yaml"


def rest_district(**overrides):
    entry = {
        "id": "lincoln-usd",
        "name": "Lincoln USD",
        "provider": "generic",
        "source": {
            "kind": "rest",
            "version": "1.1",
            "base_url": "https://sis.example.org/ims/oneroster/v1p1",
            "auth": {
                "type": "oauth2",
                "token_url": "https://sis.example.org/oauth/token",
                "client_id_env": "LINCOLN_ID",
                "client_secret_env": "LINCOLN_SECRET",
            },
        },
    }
    entry.update(overrides)
    return entry


def test_bundled_registry_has_an_oauth2_and_an_oauth1_demo_district():
    registry = load_registry(BUNDLED)
    kinds = {d.id: d.source.auth.type for d in registry.districts if isinstance(d.source, RestSource)}
    assert kinds == {"demo-oak": "oauth2", "demo-elm": "oauth1"}


def test_registry_file_and_data_dir_follow_environment(tmp_path, monkeypatch):
    other = tmp_path / "elsewhere.yaml"
    other.write_text(yaml.safe_dump({"districts": [rest_district(id="other-district")]}))
    monkeypatch.setenv("ROSTER_DISTRICTS_FILE", str(other))
    assert [d.id for d in load_registry().districts] == ["other-district"]
    monkeypatch.delenv("ROSTER_DISTRICTS_FILE")
    monkeypatch.setenv("ROSTER_DATA_DIR", str(tmp_path))
    (tmp_path / "districts.yaml").write_text(yaml.safe_dump({"districts": [rest_district(id="in-data-dir")]}))
    assert [d.id for d in load_registry().districts] == ["in-data-dir"]


def test_defaults_fill_endpoints_schedule_and_schools():
    district = parse_registry({"districts": [rest_district()]}).district("lincoln-usd")
    assert district.endpoints == ENDPOINT_NAMES  # the endpoint table's load order
    assert district.schedule == "0 2 * * *"
    assert district.enabled
    assert district.school_setting("sch-1").site_id == "sch-1"
    assert district.school_setting("sch-1").enabled


def test_bad_registry_reports_every_problem_with_district_and_field():
    bad = rest_district(id="Bad_ID", provider="nosuch", schedule="every night", enabled="yes")
    bad["source"]["auth"]["type"] = "oauth3"
    bad["source"]["auth"]["client_secret_env"] = "lowercase-name"
    second = rest_district(id="second")
    second["source"]["base_url"] = "https://sis.example.org/api"
    second["endpoints"] = ["users", "gradebook"]
    with pytest.raises(RegistryError) as raised:
        parse_registry({"districts": [bad, second]})
    problems = raised.value.problems
    text = "\n".join(problems)
    assert "district 'Bad_ID', field id" in text
    assert "field provider: 'nosuch' is not a known provider profile (allowed: " in text
    assert "field schedule: 'every night' is not a cron expression" in text
    assert "field enabled" in text
    assert "field source.auth.type: 'oauth3' is not allowed (allowed: oauth2, oauth1)" in text
    assert "field source.auth.client_secret_env: must name an environment variable" in text
    assert "district 'second', field source.base_url" in text and "/ims/oneroster/v1p1" in text
    assert "district 'second', field endpoints: unknown ['gradebook']" in text
    assert len(problems) == 8


def test_inline_secrets_and_oauth1_on_1_2_are_refused():
    entry = rest_district()
    entry["source"]["auth"]["client_secret"] = "hunter2"
    v12 = rest_district(id="v12")
    v12["source"].update(version="1.2", base_url="https://x.example.org/ims/oneroster/rostering/v1p2")
    v12["source"]["auth"] = {"type": "oauth1", "client_id_env": "A", "client_secret_env": "B"}
    with pytest.raises(RegistryError) as raised:
        parse_registry({"districts": [entry, v12]})
    text = str(raised.value)
    assert "inline credentials are not allowed" in text
    assert "hunter2" not in text
    assert "OneRoster 1.2 requires oauth2" in text


def test_duplicate_ids_are_refused():
    with pytest.raises(RegistryError, match="id is used twice"):
        parse_registry({"districts": [rest_district(), rest_district()]})


def test_missing_secret_is_named_never_valued(monkeypatch):
    district = parse_registry({"districts": [rest_district()]}).district("lincoln-usd")
    monkeypatch.delenv("LINCOLN_SECRET", raising=False)
    with pytest.raises(MissingSecretError, match="LINCOLN_SECRET is not set"):
        district.secret("LINCOLN_SECRET")
    monkeypatch.setenv("LINCOLN_SECRET", "s3cr3t-value")
    assert district.secret("LINCOLN_SECRET") == "s3cr3t-value"


def test_csv_sources_need_exactly_one_of_path_or_sftp():
    folder = rest_district(id="csv-folder", source={"kind": "csv", "path": "/drop/lincoln"})
    both = rest_district(id="csv-both", source={"kind": "csv", "path": "/x", "sftp": {"host": "h"}})
    with pytest.raises(RegistryError, match=r"district 'csv-both'.*exactly one of path or sftp"):
        parse_registry({"districts": [folder, both]})
    registry = parse_registry({"districts": [folder]})
    assert isinstance(registry.district("csv-folder").source, CsvSource)


def test_school_sites_map_site_ids_and_enabled_flags():
    entry = rest_district(schools={"default_enabled": False, "sites": [{"sourced_id": "sch-1", "site_id": "NORTH-HS"}]})
    district = parse_registry({"districts": [entry]}).district("lincoln-usd")
    assert district.school_setting("sch-1").site_id == "NORTH-HS"
    assert district.school_setting("sch-1").enabled
    assert not district.school_setting("sch-2").enabled


def test_unknown_district_lookup_names_known_ones():
    registry = parse_registry({"districts": [rest_district()]})
    with pytest.raises(KeyError, match="known: lincoln-usd"):
        registry.district("nope")


def test_a_misspelt_key_is_refused_with_the_likely_meant_one_instead_of_ignored():
    entry = {
        "id": "oak",
        "provider": "generic",
        "source": {"kind": "csv", "path": "/tmp/nowhere"},
        "schedul": "0 3 * * *",
    }
    with pytest.raises(RegistryError) as refused:
        parse_registry({"timezon": "America/Chicago", "districts": [entry]})
    problems = refused.value.problems
    assert "timezon: unknown key (did you mean 'timezone'?)" in problems
    assert "district 'oak', field schedul: unknown key (did you mean 'schedule'?)" in problems
