"""OneRoster error bodies are read in every shape providers send, and quoted safely in error messages."""

import orjson

from roster_pipeline.oneroster.errors import EXCERPT_CHARS, provider_words
from roster_pipeline.oneroster.normalize import StatusInfo, parse_status_info

STATUS = {
    "imsx_codeMajor": "failure",
    "imsx_severity": "error",
    "imsx_description": "Unknown token",
    "imsx_CodeMinor": {
        "imsx_codeMinorField": [
            {"imsx_codeMinorFieldName": "TargetEndSystem", "imsx_codeMinorFieldValue": "unauthorisedrequest"}
        ]
    },
}
EXPECTED = StatusInfo("failure", "error", "Unknown token", (("TargetEndSystem", "unauthorisedrequest"),))


def test_bare_status_info_object():
    assert parse_status_info(orjson.dumps(STATUS)) == EXPECTED


def test_status_info_set_wrapper_as_list_or_object():
    assert parse_status_info(orjson.dumps({"statusInfoSet": [STATUS]})) == EXPECTED
    assert parse_status_info(orjson.dumps({"statusInfoSet": STATUS})) == EXPECTED


def test_lower_case_code_minor_and_single_minor_field():
    status = dict(STATUS)
    minor = status.pop("imsx_CodeMinor")
    status["imsx_codeMinor"] = {"imsx_codeMinorField": minor["imsx_codeMinorField"][0]}
    assert parse_status_info(orjson.dumps(status)) == EXPECTED


def test_status_without_minor_codes():
    info = parse_status_info(b'{"imsx_codeMajor": "failure", "imsx_description": "Bad filter"}')
    assert info == StatusInfo("failure", None, "Bad filter", ())


def test_non_json_and_foreign_json_bodies_give_none():
    assert parse_status_info(b"<html><body>502 Bad Gateway</body></html>") is None
    assert parse_status_info(b"") is None
    assert parse_status_info(b'{"error": "invalid_client"}') is None
    assert parse_status_info(b"[1, 2]") is None


def test_summary_reads_as_one_line_for_error_messages():
    assert EXPECTED.summary() == (
        "imsx_codeMajor=failure imsx_description=Unknown token imsx_codeMinor=TargetEndSystem:unauthorisedrequest"
    )


def test_provider_words_name_the_content_type_and_an_html_page_by_its_title():
    page = b"<html><head><style>" + b" " * 5000 + b"</style><title>  502 &amp; Bad\nGateway </title></head></html>"
    assert provider_words("text/html", page) == "text/html: '502 & Bad Gateway'"


def test_provider_words_quote_a_body_without_title_by_its_first_characters_on_one_line():
    said = provider_words("text/plain", b"upstream connect error\r\n\x1b[0m" + b"x" * 500)
    assert said.startswith("text/plain: 'upstream connect error [0mxxx")
    assert said.endswith("x…'") and len(said) == len("text/plain: ''") + EXCERPT_CHARS


def test_provider_words_prefer_the_imsx_status_and_say_when_nothing_was_sent():
    assert provider_words("application/json", b"{}", "imsx_codeMajor=failure") == (
        "application/json: imsx_codeMajor=failure"
    )
    assert provider_words(None, b"") == "no Content-Type, empty body"
