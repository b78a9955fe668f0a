"""Errors raised by the OneRoster library.

Every message says what failed and where (district label, endpoint, page offset) so that a data
engineer reading a failed run knows what to check. Messages never carry a secret or a token.
"""

from __future__ import annotations

import html
import re

# Enough of a body to recognise it (an nginx error page, a JSON fragment) without flooding a run's log.
EXCERPT_CHARS = 200
# Where an HTML page's <title> is looked for: a maintenance page's <head> may carry kilobytes of inline style.
_TITLE_WINDOW = 64 * 1024
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


class OneRosterError(Exception):
    """A request to a OneRoster provider failed for good (after any retries).

    The message reads ``<label>, endpoint <name>, page offset=<n>: <detail>``; the parts are also
    available as attributes for callers that want to branch on them.
    """

    def __init__(
        self,
        detail: str,
        *,
        label: str | None = None,
        endpoint: str | None = None,
        offset: int | None = None,
        status: int | None = None,
        code_major: str | None = None,
        description: str | None = None,
    ) -> None:
        self.detail = detail
        self.label = label
        self.endpoint = endpoint
        self.offset = offset
        self.status = status
        self.code_major = code_major
        self.description = description
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.label:
            where.append(self.label)
        if self.endpoint:
            where.append(f"endpoint {self.endpoint}")
        if self.offset is not None:
            where.append(f"page offset={self.offset}")
        return f"{', '.join(where)}: {self.detail}" if where else self.detail


class EndpointNotOffered(OneRosterError):
    """An optional endpoint (courses, demographics, ...) is not offered by this provider.

    Raised for 404, 403 and 501 on optional endpoints; callers skip the endpoint with a note. ``said`` is the
    provider's own account (see ``provider_words``): a 403 may be a scope the credentials lack, not a missing
    endpoint, and the note should let an engineer tell which.
    """

    def __init__(
        self,
        endpoint: str,
        status: int,
        *,
        label: str | None = None,
        said: str = "",
        code_major: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(
            f"HTTP {status}: optional endpoint not offered by this provider" + (f" ({said})" if said else ""),
            label=label,
            endpoint=endpoint,
            status=status,
            code_major=code_major,
            description=description,
        )


class AuthenticationFailed(OneRosterError):
    """The provider refused our credentials (token request rejected, or 401 after a token refresh).

    Raised from inside the auth flow without location; the client re-raises it as a
    ``OneRosterError`` that names the district, endpoint and page.
    """


def clean_text(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A provider's text made safe for one log line: control characters (escape sequences, line breaks)
    become spaces, runs of whitespace one space, and anything past ``limit`` characters an ellipsis."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def body_excerpt(body: bytes) -> str:
    """What a body says, for an error message: an HTML page's ``<title>`` when it has one (a maintenance page
    names itself there), otherwise its first ``EXCERPT_CHARS`` characters; cleaned either way."""
    title = _TITLE.search(body[:_TITLE_WINDOW])
    if title is not None:
        text = clean_text(html.unescape(title.group(1).decode("utf-8", "replace")))
        if text:
            return text
    # Four bytes per character at most in UTF-8: enough bytes for the excerpt, never the whole body.
    return clean_text(body[: EXCERPT_CHARS * 4].decode("utf-8", "replace"))


def provider_words(content_type: str | None, body: bytes, imsx_summary: str | None = None) -> str:
    """``<content type>: <what the provider said>`` — its imsx status when it sent one, else the body's excerpt.

    Part of every error about a response, so a failed run shows "Backend database unavailable" or "Scheduled
    maintenance" rather than a bare status code.
    """
    kind = clean_text(content_type) if content_type else "no Content-Type"
    if imsx_summary:
        return f"{kind}: {clean_text(imsx_summary, 2 * EXCERPT_CHARS)}"
    if not body:
        return f"{kind}, empty body"
    return f"{kind}: {body_excerpt(body)!r}"
