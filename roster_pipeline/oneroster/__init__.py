"""OneRoster library: REST client (auth, paging, filters, retries), endpoint specs and normalisation.

Usable without Dagster: a script can page through a district with ``OneRosterClient`` alone.
"""

from .auth import OAuth1HmacSha256, OAuth2ClientCredentials
from .client import OneRosterClient, Page, RetryPolicy
from .endpoints import ENDPOINT_NAMES, ENDPOINTS_V1P1, ENDPOINTS_V1P2, EndpointSpec, endpoint_spec, scopes_for
from .errors import EndpointNotOffered, OneRosterError
from .filters import Filter
from .normalize import normalize_record, parse_datetime

__all__ = [
    "ENDPOINTS_V1P1",
    "ENDPOINTS_V1P2",
    "ENDPOINT_NAMES",
    "EndpointNotOffered",
    "EndpointSpec",
    "Filter",
    "OAuth1HmacSha256",
    "OAuth2ClientCredentials",
    "OneRosterClient",
    "OneRosterError",
    "Page",
    "RetryPolicy",
    "endpoint_spec",
    "normalize_record",
    "parse_datetime",
    "scopes_for",
]
