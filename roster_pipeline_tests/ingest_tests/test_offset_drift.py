"""A full sync over a collection that changes while it is paged: unseen is not deleted until confirmed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import yaml

from roster_pipeline.sandbox.generator import SyntheticDistrict
from roster_pipeline_tests.pipeline_fixtures import PipelineWorld

DISTRICT = "drift-usd"


def _serve(world: PipelineWorld, district: SyntheticDistrict, **network: Any) -> None:
    world.add_rest_district(district, registry_entry={"network": network} if network else None)
    world.entries[-1]["source"]["page_size"] = 25  # many pages, so records before the offset can vanish
    (world.data_dir / "districts.yaml").write_text(yaml.safe_dump({"districts": world.entries}))


def _delete_users_while_paging(world: PipelineWorld, district: SyntheticDistrict) -> tuple[set[str], set[str]]:
    """While the next full sync pages users, the SIS hard-deletes the 8 users that sort first (already served,
    so later pages shift back and 8 live users are never served) and the 2 that sort last (never served)."""
    users = district.records("users")
    served_then_deleted = {user["sourcedId"] for user in users[:8]}
    never_served = {user["sourcedId"] for user in users[-2:]}

    def hard_delete() -> None:
        for sourced_id in served_then_deleted | never_served:
            district.remove("users", sourced_id)

    world.server.faults(DISTRICT).change_while_paging("users", 100, hard_delete)
    return served_then_deleted, never_served


def _active_user_ids(world: PipelineWorld) -> set[str]:
    with world.roster() as con:
        rows = con.execute("SELECT sourced_id FROM users WHERE district_id = ?", [DISTRICT]).fetchall()
    return {row[0] for row in rows}


def _live_ids(district: SyntheticDistrict) -> set[str]:
    return {u["sourcedId"] for u in district.records("users") if u["status"] == "active"}


def test_full_sync_during_deletions_keeps_every_live_guardian_and_tombstones_only_the_deleted(
    world: PipelineWorld, small_district: Callable[..., SyntheticDistrict]
) -> None:
    district = small_district(DISTRICT)
    _serve(world, district)
    assert world.sync(DISTRICT).success
    served_then_deleted, never_served = _delete_users_while_paging(world, district)

    result = world.sync(DISTRICT, full=True)

    assert result.success, result.error
    confirmations = result.endpoints["users"]["confirmations"]
    # Which pages shift depends on which of the concurrent page requests the deletion came before: at least 8
    # live users were skipped, and exactly the 2 never served are gone.
    assert confirmations["confirmed_gone"] == 2 and confirmations["held"] == 0
    assert confirmations["present_landed"] >= 8
    assert confirmations["unseen"] == confirmations["looked_up"] == confirmations["present_landed"] + 2
    # Every live user is still there; of the deleted, only those this sync could confirm gone are tombstoned.
    assert _active_user_ids(world) == _live_ids(district) | served_then_deleted
    assert _tombstoned_user_ids(world) == never_served
    details = _latest_run_details(world)
    assert details["confirmations"] == confirmations

    links_kept = _link_count(world, excluding=served_then_deleted)
    next_full = world.sync(DISTRICT, full=True)  # the served-then-deleted users are unseen now, and gone

    assert next_full.success, next_full.error
    assert next_full.endpoints["users"]["confirmations"]["confirmed_gone"] == 8
    assert _active_user_ids(world) == _live_ids(district)
    assert _link_count(world) == links_kept


def test_confirmations_past_the_budget_are_held_and_asked_again_next_full_sync(
    world: PipelineWorld, small_district: Callable[..., SyntheticDistrict]
) -> None:
    district = small_district(DISTRICT)
    _serve(world, district, max_confirmations=3)
    assert world.sync(DISTRICT).success
    served_then_deleted, never_served = _delete_users_while_paging(world, district)

    held_sync = world.sync(DISTRICT, full=True)

    assert held_sync.success, held_sync.error
    confirmations = held_sync.endpoints["users"]["confirmations"]
    assert confirmations["looked_up"] == 3 and confirmations["held"] == confirmations["unseen"] - 3 >= 7
    assert "max_confirmations=3" in confirmations["held_reason"]
    # Nothing live was lost; what could not be confirmed stays until it is.
    assert _live_ids(district) <= _active_user_ids(world)
    with world.roster() as con:
        rows = con.execute("SELECT mode FROM ops.applied_batches WHERE endpoint = 'users'").fetchall()
    modes = [row[0] for row in rows]
    assert any("unseen records held (not confirmed gone)" in mode for mode in modes)

    removed = served_then_deleted | never_served
    for _ in range(5):  # no drift now: each full sync confirms three more of the removed users
        not_yet = removed - _tombstoned_user_ids(world)
        if not not_yet:
            break
        follow_up = world.sync(DISTRICT, full=True)
        assert follow_up.success, follow_up.error
        assert follow_up.endpoints["users"]["confirmations"]["unseen"] == len(not_yet)
    assert _tombstoned_user_ids(world) == removed
    assert _active_user_ids(world) == _live_ids(district)


def _tombstoned_user_ids(world: PipelineWorld) -> set[str]:
    with world.roster() as con:
        rows = con.execute("SELECT sourced_id FROM users_all WHERE district_id = ? AND is_deleted", [DISTRICT])
        return {row[0] for row in rows.fetchall()}


def _latest_run_details(world: PipelineWorld) -> dict[str, Any]:
    with world.roster() as con:
        row = con.execute(
            "SELECT details FROM ops.sync_runs WHERE district_id = ? AND endpoint = 'users' "
            "ORDER BY started_at DESC LIMIT 1",
            [DISTRICT],
        ).fetchone()
    assert row is not None and row[0] is not None
    return orjson.loads(row[0])


def _link_count(world: PipelineWorld, excluding: set[str] = frozenset()) -> int:  # type: ignore[assignment]
    """Published guardian links of the district, leaving out those touching `excluding` users."""
    with world.roster() as con:
        rows = con.execute(
            "SELECT student_sourced_id, guardian_sourced_id FROM guardian_student_links WHERE district_id = ?",
            [DISTRICT],
        ).fetchall()
    return sum(1 for student, guardian in rows if student not in excluding and guardian not in excluding)


def test_a_provider_without_single_record_lookups_gets_its_unseen_records_held_not_tombstoned(
    world: PipelineWorld, small_district: Callable[..., SyntheticDistrict]
) -> None:
    district = small_district(DISTRICT)
    _serve(world, district)
    assert world.sync(DISTRICT).success
    world.server.faults(DISTRICT).without_single_records()
    _delete_users_while_paging(world, district)

    result = world.sync(DISTRICT, full=True)

    assert result.success, result.error
    confirmations = result.endpoints["users"]["confirmations"]
    assert confirmations["looked_up"] == 0 and confirmations["held"] == confirmations["unseen"] >= 10
    assert "does not find" in confirmations["held_reason"]
    assert _live_ids(district) <= _active_user_ids(world)
    assert not _tombstoned_user_ids(world)


def test_a_full_sync_that_serves_no_users_tombstones_none(
    world: PipelineWorld, small_district: Callable[..., SyntheticDistrict]
) -> None:
    district = small_district(DISTRICT)
    _serve(world, district)
    assert world.sync(DISTRICT).success
    users = district.records("users")
    before = _active_user_ids(world)
    for user in users:  # the provider answers {"users": []} for one full sync
        district.remove("users", user["sourcedId"])

    result = world.sync(DISTRICT, full=True)

    assert result.success, result.error
    confirmations = result.endpoints["users"]["confirmations"]
    assert confirmations["held"] == len(before) and "saw no record" in confirmations["held_reason"]
    assert _active_user_ids(world) == before


def test_a_record_the_provider_cannot_answer_for_is_held_while_the_others_are_confirmed(
    world: PipelineWorld, small_district: Callable[..., SyntheticDistrict]
) -> None:
    district = small_district(DISTRICT)
    _serve(world, district, max_attempts=2)
    assert world.sync(DISTRICT).success
    gone = [user["sourcedId"] for user in district.records("users")[-3:]]
    for sourced_id in gone:
        district.remove("users", sourced_id)
    world.server.faults(DISTRICT).fail_records({gone[0]}, status=500)  # after its retries, still a 500

    result = world.sync(DISTRICT, full=True)

    assert result.success, result.error
    confirmations = result.endpoints["users"]["confirmations"]
    assert (confirmations["confirmed_gone"], confirmations["held"]) == (2, 1)
    assert "HTTP 500" in confirmations["held_reason"]
    assert _tombstoned_user_ids(world) == set(gone[1:])


def test_a_district_can_opt_out_of_confirmations_when_its_provider_cannot_look_records_up(
    world: PipelineWorld, small_district: Callable[..., SyntheticDistrict]
) -> None:
    district = small_district(DISTRICT)
    _serve(world, district, confirm_unseen=False)
    assert world.sync(DISTRICT).success
    world.server.faults(DISTRICT).without_single_records()
    gone = {user["sourcedId"] for user in district.records("users")[-2:]}
    for sourced_id in gone:
        district.remove("users", sourced_id)

    result = world.sync(DISTRICT, full=True)

    assert result.success, result.error
    assert "confirmations" not in result.endpoints["users"]
    assert _tombstoned_user_ids(world) == gone
