"""The filter builder renders OneRoster 1.1 §3.4.2 filter text."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from roster_pipeline.oneroster import Filter


def test_each_operator_renders_field_operator_and_quoted_value():
    assert str(Filter.eq("role", "student")) == "role='student'"
    assert str(Filter.ne("status", "active")) == "status!='active'"
    assert str(Filter.gt("familyName", "M")) == "familyName>'M'"
    assert str(Filter.ge("familyName", "M")) == "familyName>='M'"
    assert str(Filter.lt("familyName", "M")) == "familyName<'M'"
    assert str(Filter.le("familyName", "M")) == "familyName<='M'"
    assert str(Filter.contains("email", "@oak.")) == "email~'@oak.'"


def test_single_quote_in_value_is_escaped_by_doubling():
    assert str(Filter.eq("familyName", "O'Brien")) == "familyName='O''Brien'"
    assert str(Filter.eq("familyName", "''")) == "familyName=''''''"


def test_ampersand_space_and_equals_pass_through_unescaped_in_the_filter_text():
    # Percent-encoding is the query string's job, not the filter's.
    assert str(Filter.eq("givenName", "A & B = C")) == "givenName='A & B = C'"


def test_aware_datetime_renders_in_utc_with_z_and_whole_seconds():
    eastern = timezone(timedelta(hours=-5))
    dt = datetime(2024, 5, 1, 7, 30, 15, 987654, tzinfo=eastern)
    assert str(Filter.gt("dateLastModified", dt)) == "dateLastModified>'2024-05-01T12:30:15Z'"
    assert str(Filter.gt("dateLastModified", datetime(2024, 1, 2, tzinfo=UTC))) == (
        "dateLastModified>'2024-01-02T00:00:00Z'"
    )


def test_naive_datetime_is_rejected_as_ambiguous():
    with pytest.raises(ValueError, match="timezone-aware"):
        Filter.gt("dateLastModified", datetime(2024, 5, 1, 12, 0))


def test_dates_booleans_and_numbers_render_as_text():
    assert str(Filter.ge("startDate", date(2024, 8, 20))) == "startDate>='2024-08-20'"
    assert str(Filter.eq("enabledUser", True)) == "enabledUser='true'"
    assert str(Filter.eq("identifier", 42)) == "identifier='42'"


def test_two_predicates_join_with_uppercase_and_or():
    modified = Filter.gt("dateLastModified", datetime(2024, 5, 1, tzinfo=UTC))
    assert str(modified & Filter.eq("status", "active")) == (
        "dateLastModified>'2024-05-01T00:00:00Z' AND status='active'"
    )
    assert str(Filter.eq("role", "parent") | Filter.eq("role", "guardian")) == "role='parent' OR role='guardian'"


def test_a_third_predicate_is_rejected():
    two = Filter.eq("role", "parent") | Filter.eq("role", "guardian")
    with pytest.raises(ValueError, match="at most two predicates"):
        _ = two | Filter.eq("role", "relative")
    with pytest.raises(ValueError, match="at most two predicates"):
        _ = Filter.eq("status", "active") & two


@pytest.mark.parametrize("field", ["", "given name", "role='x' OR role", "1abc"])
def test_field_names_that_could_inject_filter_syntax_are_rejected(field):
    with pytest.raises(ValueError, match="invalid filter field"):
        Filter.eq(field, "x")
