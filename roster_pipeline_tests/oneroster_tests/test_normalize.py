"""Records from real providers normalise to one shape."""

from datetime import UTC, datetime

import pytest

from roster_pipeline.oneroster import normalize_record, parse_datetime

NOON_UTC = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-05-01T12:00:00.123Z", NOON_UTC.replace(microsecond=123000)),
        ("2024-05-01T12:00:00Z", NOON_UTC),
        ("2024-05-01T12:00:00.1234567Z", NOON_UTC.replace(microsecond=123456)),
        ("2024-05-01T14:00:00+02:00", NOON_UTC),
        ("2024-05-01T07:00:00-0500", NOON_UTC),
        ("2024-05-01t12:00:00z", NOON_UTC),
        ("2024-05-01 12:00:00Z", NOON_UTC),
        ("2024-05-01T12:00:00", NOON_UTC),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
    ],
)
def test_timestamp_variants_parse_to_aware_utc(text, expected):
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() is not None and parsed.tzinfo == UTC


def test_empty_timestamps_are_none_and_garbage_is_an_error():
    assert parse_datetime(None) is None
    assert parse_datetime("  ") is None
    with pytest.raises(ValueError, match="not an ISO-8601 timestamp"):
        parse_datetime("last tuesday")


@pytest.mark.parametrize(
    "status, expected",
    [
        ("active", "active"),
        ("Active", "active"),
        ("tobedeleted", "tobedeleted"),
        ("inactive", "tobedeleted"),
        ("INACTIVE", "tobedeleted"),
        ("toBeDeleted", "tobedeleted"),
    ],
)
def test_status_is_lowercased_and_inactive_means_tobedeleted(status, expected):
    assert normalize_record("orgs", {"status": status})["status"] == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("true", True),
        ("false", False),
        ("TRUE", True),
        ("False", False),
        (True, True),
        (False, False),
        ("1", True),
        ("0", False),
        ("", None),
        (None, None),
    ],
)
def test_enabled_user_and_primary_become_booleans(value, expected):
    assert normalize_record("users", {"enabledUser": value})["enabledUser"] is expected
    assert normalize_record("enrollments", {"primary": value})["primary"] is expected


def test_a_full_user_record_keeps_its_other_fields():
    record = {
        "sourcedId": "u1",
        "status": "inactive",
        "dateLastModified": "2024-05-01T12:00:00.000Z",
        "enabledUser": "false",
        "givenName": "Ada",
        "orgs": [{"href": "x", "sourcedId": "s1", "type": "org"}],
    }
    normalized = normalize_record("users", record)
    assert normalized == {
        "sourcedId": "u1",
        "status": "tobedeleted",
        "dateLastModified": NOON_UTC,
        "enabledUser": False,
        "givenName": "Ada",
        "orgs": [{"href": "x", "sourcedId": "s1", "type": "org"}],
    }


def test_boolean_fields_of_other_endpoints_are_left_alone():
    assert normalize_record("orgs", {"primary": "true"})["primary"] == "true"
