"""The roster's files on S3-compatible object storage (`ROSTER_FILES_URL=s3://bucket/prefix/`), reached with the
credentials of the standard AWS variables.

Each connection that attaches the roster gets them as a temporary DuckDB secret (kept in memory, never written to a
file); its values are passed as bound parameters, and DuckDB redacts the secret and session token wherever it lists
secrets. Only `s3://` is accepted: DuckDB's `r2://` and `gs://` need secrets of their own kinds (an R2 account id,
GCS keys), and both services are reached as `s3://` through their S3-compatible endpoint (`AWS_ENDPOINT_URL`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

import duckdb

OBJECT_STORAGE_SCHEMES = ("s3://",)
SECRET_NAME = "roster_files"
# Each option of the secret and the variables it is read from, first set wins.
CREDENTIALS = {
    "KEY_ID": ("AWS_ACCESS_KEY_ID",),
    "SECRET": ("AWS_SECRET_ACCESS_KEY",),
    "REGION": ("AWS_REGION", "AWS_DEFAULT_REGION"),
}


class ObjectStorageCredentialsMissing(RuntimeError):
    """The roster's files are on object storage but a variable its credentials come from is unset."""


def on_object_storage(data_path: str) -> bool:
    """Whether the roster's files live on S3-compatible object storage rather than a (shared) folder."""
    return data_path.startswith(OBJECT_STORAGE_SCHEMES)


def create_files_secret(
    con: duckdb.DuckDBPyConnection, data_path: str, environ: Mapping[str, str] = os.environ
) -> None:
    """Give `con` the credentials for the roster's files when they are on object storage (otherwise do nothing)."""
    if not on_object_storage(data_path):
        return
    options = s3_secret_options(data_path, environ)
    listed = ", ".join(f"{name} ${name.lower()}" for name in options)
    con.execute(
        f"CREATE OR REPLACE TEMPORARY SECRET {SECRET_NAME} (TYPE s3, {listed})",
        {name.lower(): value for name, value in options.items()},
    )


def shell_secret_sql(data_path: str, environ: Mapping[str, str] = os.environ) -> str:
    """The same secret for the DuckDB shell (`roster-pipeline sql`), which inherits the environment: every value is
    read there by the shell's `getenv`, so no credential is put on its command line (where `ps` shows it)."""
    if not on_object_storage(data_path):
        return ""
    options = s3_secret_options(data_path, environ)
    read_from = {**CREDENTIALS, "SESSION_TOKEN": ("AWS_SESSION_TOKEN",)}
    listed = []
    for name, value in options.items():
        if name in read_from:
            variable = next(variable for variable in read_from[name] if environ.get(variable))
            listed.append(f"{name} getenv('{variable}')")
        else:
            text = str(value).lower() if isinstance(value, bool) else "'" + str(value).replace("'", "''") + "'"
            listed.append(f"{name} {text}")
    return f"CREATE OR REPLACE TEMPORARY SECRET {SECRET_NAME} (TYPE s3, {', '.join(listed)});"


def s3_secret_options(
    data_path: str, environ: Mapping[str, str], subject: str = "the roster's files are"
) -> dict[str, str | bool]:
    """The S3 secret's options from the AWS variables (an empty value counts as unset); raises naming every
    variable that is missing (and `subject`: what is on object storage)."""
    found = {option: _first_set(environ, names) for option, names in CREDENTIALS.items()}
    missing = [_named(CREDENTIALS[option]) for option, value in found.items() if value is None]
    if missing:
        raise ObjectStorageCredentialsMissing(
            f"{subject} on object storage ({data_path}) but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set: give the bucket's credentials in AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY and AWS_REGION (and AWS_ENDPOINT_URL for a service other than AWS S3)"
        )
    options: dict[str, str | bool] = {option: value for option, value in found.items() if value is not None}
    if token := _first_set(environ, ("AWS_SESSION_TOKEN",)):
        options["SESSION_TOKEN"] = token
    if endpoint := _first_set(environ, ("AWS_ENDPOINT_URL",)):
        options.update(endpoint_options(endpoint))
    return options


def endpoint_options(endpoint_url: str) -> dict[str, str | bool]:
    """An S3-compatible service's endpoint (`http://minio:9000`, `https://<account>.r2.cloudflarestorage.com`) as
    DuckDB wants it: host and port, TLS or not, and path-style URLs, which every such service serves."""
    parts = urlsplit(endpoint_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc or parts.path.strip("/"):
        # Not echoed: a malformed value might carry credentials.
        raise ValueError("AWS_ENDPOINT_URL must be http://host[:port] or https://host[:port]")
    return {"ENDPOINT": parts.netloc, "USE_SSL": parts.scheme == "https", "URL_STYLE": "path"}


def _named(names: tuple[str, ...]) -> str:
    return names[0] + "".join(f" (or {name})" for name in names[1:])


def _first_set(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((environ[name] for name in names if environ.get(name)), None)
