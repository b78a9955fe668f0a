"""Custody and pickup flags from a district's OneRoster `metadata`, as the registry maps them; nothing guessed."""

from __future__ import annotations

from typing import Any

import pytest

from roster_pipeline.config.registry import RegistryError, parse_registry
from roster_pipeline_tests.hand_records import district_of, org, session, user
from roster_pipeline_tests.pipeline_fixtures import PipelineWorld

MAPPING = {
    "pickup_allowed": {"user": "guardian", "key": "pickup.allowed"},
    "do_not_release": {"user": "guardian", "key": "doNotRelease"},
    "custody_note": {"user": "student", "key": "custodyNote"},
    "valid_until": {"user": "guardian", "key": "guardianUntil"},
}


def _with_metadata(record: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    return {**record, "metadata": metadata}


def _family_district() -> Any:
    """s1 with an allowed parent, a do-not-release relative and a temporary guardian; s2's parents say nothing clear."""
    users = [
        _with_metadata(user("s1", "student", ["north"], ["g1", "g2", "g3"]), {"custodyNote": "Court order 2026-114"}),
        _with_metadata(user("g1", "parent", ["north"], []), {"pickup": {"allowed": "Yes"}}),
        _with_metadata(user("g2", "relative", ["north"], []), {"doNotRelease": True, "pickup": {"allowed": "true"}}),
        _with_metadata(user("g3", "guardian", ["north"], []), {"guardianUntil": "2027-01-31"}),
        user("s2", "student", ["north"], ["g4", "g5"]),
        _with_metadata(user("g4", "parent", ["north"], []), {"pickup": {"allowed": "sometimes"}}),
        _with_metadata(user("g5", "parent", ["north"], []), {"doNotRelease": "checked", "pickup": {"allowed": "yes"}}),
    ]
    return district_of(
        "pickup",
        orgs=[org("d", "district"), org("north", "school", "d")],
        academicSessions=[session("y1")],
        users=users,
    )


def _contacts(world: PipelineWorld) -> dict[tuple[str, str], tuple[Any, ...]]:
    with world.roster() as con:
        rows = con.execute(
            "SELECT student_sourced_id, guardian_sourced_id, pickup_allowed, custody_note, valid_until::VARCHAR "
            "FROM student_contacts WHERE district_id = 'pickup'"
        ).fetchall()
    return {(row[0], row[1]): row[2:] for row in rows}


def test_mapped_metadata_fills_the_contact_card_and_unmapped_or_unreadable_values_stay_unknown(
    world: PipelineWorld,
) -> None:
    world.add_rest_district(_family_district(), registry_entry={"pickup_metadata": MAPPING})

    assert world.sync("pickup").success

    assert _contacts(world) == {
        ("s1", "g1"): (True, "Court order 2026-114", None),
        ("s1", "g2"): (False, "Court order 2026-114", None),  # do-not-release wins over an allowed flag
        ("s1", "g3"): (None, "Court order 2026-114", "2027-01-31"),
        ("s2", "g4"): (None, None, None),  # "sometimes" is not a yes or a no: not guessed
        ("s2", "g5"): (None, None, None),  # a do-not-release that is not a clear "no" is no permission
    }
    with world.roster() as con:
        links = con.execute(
            "SELECT count(*) FROM guardian_student_links WHERE district_id = 'pickup' AND pickup_allowed = false"
        ).fetchone()
    assert links == (1,)


def test_without_a_mapping_no_pickup_flag_is_read_even_when_the_metadata_has_one(world: PipelineWorld) -> None:
    world.add_rest_district(_family_district())

    assert world.sync("pickup").success

    assert set(_contacts(world).values()) == {(None, None, None)}


@pytest.mark.parametrize(
    ("mapping", "problem"),
    [
        ({"pickup_ok": {"user": "guardian", "key": "x"}}, "pickup_metadata.pickup_ok: unknown column"),
        ({"custody_note": {"user": "teacher", "key": "x"}}, "pickup_metadata.custody_note.user: 'teacher'"),
        ({"valid_until": {"user": "guardian", "key": "a b"}}, "pickup_metadata.valid_until.key: 'a b'"),
        ({"valid_until": "guardianUntil"}, "pickup_metadata.valid_until: must be {user"),
    ],
)
def test_a_wrong_pickup_mapping_is_refused_naming_the_field(mapping: dict[str, Any], problem: str) -> None:
    entry = {
        "id": "pickup",
        "provider": "generic",
        "source": {"kind": "csv", "path": "/tmp/nowhere"},
        "pickup_metadata": mapping,
    }
    with pytest.raises(RegistryError) as refused:
        parse_registry({"districts": [entry]})
    assert problem in str(refused.value)
