"""Paging and retry headers are read as RFC 8288 and RFC 9110 define them."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from roster_pipeline.oneroster.client import RetryPolicy, parse_next_link, parse_retry_after


def test_next_link_is_found_among_other_relations():
    header = (
        '<https://sis.example/users?limit=5&offset=0>; rel="first", '
        '<https://sis.example/users?limit=5&offset=10>; rel="next", '
        '<https://sis.example/users?limit=5&offset=95>; rel="last"'
    )
    assert parse_next_link([header]) == "https://sis.example/users?limit=5&offset=10"


def test_next_link_with_unquoted_or_multi_valued_rel_and_commas_in_the_url():
    assert parse_next_link(["</users?filter=a%2Cb,c&offset=5>; rel=next"]) == "/users?filter=a%2Cb,c&offset=5"
    assert parse_next_link(['</users?offset=5>; title="x"; rel="next last"']) == "/users?offset=5"
    assert parse_next_link(['</users?offset=0>; rel="first"', '</users?offset=5>; rel="next"']) == "/users?offset=5"


def test_no_next_link_on_the_last_page():
    assert parse_next_link(['</users?offset=0>; rel="first", </users?offset=0>; rel="last"']) is None
    assert parse_next_link([]) is None


def test_retry_after_in_seconds_or_as_an_http_date():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after(later) <= 30
    earlier = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(earlier) == 0.0


def test_backoff_is_exponential_capped_and_fully_jittered():
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, random=lambda: 1.0)
    assert [policy.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert RetryPolicy(random=lambda: 0.25).backoff(3) == 0.25 * 2.0
    assert policy.delay(1, "7") == 7.0
    assert RetryPolicy(max_retry_after=60).delay(1, "3600") == 60
