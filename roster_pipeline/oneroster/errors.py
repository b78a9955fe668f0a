"""Errors raised by the OneRoster library.

Every message says what failed and where (district label, endpoint, page offset) so that a data
engineer reading a failed run knows what to check. Messages never carry a secret or a token.
"""

from __future__ import annotations


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

    Raised for 404, 403 and 501 on optional endpoints; callers skip the endpoint with a note.
    """

    def __init__(self, endpoint: str, status: int, *, label: str | None = None) -> None:
        super().__init__(
            f"HTTP {status}: optional endpoint not offered by this provider",
            label=label,
            endpoint=endpoint,
            status=status,
        )


class AuthenticationFailed(OneRosterError):
    """The provider refused our credentials (token request rejected, or 401 after a token refresh).

    Raised from inside the auth flow without location; the client re-raises it as a
    ``OneRosterError`` that names the district, endpoint and page.
    """
