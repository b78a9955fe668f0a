"""A plain page of records read straight into its lake frame: validated by msgspec, read and flattened by Polars.

Reading a page record by record (``normalize.read_record``, then ``flatten.flatten_records``) costs Python work for
every field of every record: ~19 ms for a page of 1,000 users, and a large district's fetch was bound by it (the
fetch threads share one interpreter lock). Most pages are plain: every record has the shape the specification
gives it. Such a page is checked against its endpoint's declared columns by msgspec (strict: text must be a JSON
string, a reference an object, a list a list; no field the lake has no column for), then read by Polars with that
schema and flattened with Polars expressions, in ~5 ms.

`read_lake_page` answers None for any page that is not plain, and the caller reads that page record by record,
which lands the same rows and names each record it cannot read. Not plain: a field the endpoint has no column for
(it would go to ``extra``), ``metadata``, a OneRoster 1.2 user's ``roles`` and the other 1.2-only fields, a number
or a boolean where text belongs (Polars would render it unlike Python does), a status, boolean or timestamp not in
the spelling the specification gives it, a blank sourcedId, a field the profile ignores that still feeds another
column (an alias, a 1.2 user's ``roles``), or a body that is not JSON or that msgspec or Polars cannot read. A test
holds both paths to identical frames on every endpoint, and on odd records either to identical frames or to the
fast path declining.

One difference is left: a record repeating a key (RFC 8259 leaves which copy counts open) lands the first copy's
value here and the last copy's record by record. The page's record count and every sourcedId are compared between
the two readers, so a repeated envelope or sourcedId declines the page: no record is lost or mistaken for another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec
import polars as pl

from roster_pipeline.oneroster.flatten import ENDPOINT_COLUMNS, Column, lake_schema
from roster_pipeline.oneroster.normalize import STATUS_ALIASES

# The statuses, booleans and timestamps a plain page holds, exactly as sent, and what each lands as; anything else
# goes record by record, where normalize.py reads the variants providers send. No status is active (flatten._status).
PLAIN_STATUS = {"active": "active", "tobedeleted": "tobedeleted", **STATUS_ALIASES, "": "active"}
PLAIN_BOOLEANS = {"true": True, "false": False, "": None}  # a JSON true/false is read by Polars as this text
PLAIN_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?Z$"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"
# What Python's str.strip() removes and Rust's trim() does not: a sourcedId of only these is blank too.
BLANK = r"^[\s\x1c-\x1f]*$"


class _Ref(msgspec.Struct, gc=False):
    """A GUIDRef: only its sourcedId is read (as flatten.py reads a reference); href and type may be anything."""

    sourcedId: str | None = None


class _UserId(msgspec.Struct, gc=False):
    type: str | None = None
    identifier: str | None = None


@dataclass(frozen=True)
class _Kind:
    """How a column of one conversion is sent (`accepts`, msgspec's type), read by Polars, and flattened."""

    accepts: Any
    read_as: pl.DataType
    flatten: Callable[[pl.Expr], pl.Expr]


def _non_blank(value: pl.Expr) -> pl.Expr:
    """`flatten._text` on a string: the empty string is no value."""
    return pl.when(value != "").then(value)


def _kept(items: pl.Expr) -> pl.Expr:
    """A list column without null or empty items; a missing list is an empty one."""
    return items.list.eval(pl.element().filter(pl.element() != "")).fill_null([])


USER_ID_READ = pl.Struct({"type": pl.Utf8, "identifier": pl.Utf8})
ID = "sourcedId"
REF_READ = pl.Struct({ID: pl.Utf8})

# The column kinds (flatten.Column.kind) read a whole column at once. A column of any other kind (metadata, a 1.2
# user's roles and profiles) must be absent from a plain page.
KINDS: dict[str, _Kind] = {
    "text": _Kind(str | None, pl.Utf8(), _non_blank),
    "ref": _Kind(_Ref | None, REF_READ, lambda c: _non_blank(c.struct.field(ID))),
    "refs": _Kind(list[_Ref] | None, pl.List(REF_READ), lambda c: _kept(c.list.eval(pl.element().struct.field(ID)))),
    "texts": _Kind(list[str | None] | None, pl.List(pl.Utf8), _kept),
    "flag": _Kind(
        str | bool | None,
        pl.Utf8(),
        lambda c: c.replace_strict(PLAIN_BOOLEANS, default=None, return_dtype=pl.Boolean),
    ),
    "user_ids": _Kind(
        list[_UserId] | None,
        pl.List(USER_ID_READ),
        lambda c: c.list.eval(
            pl.struct(
                type=_non_blank(pl.element().struct.field("type")),
                identifier=_non_blank(pl.element().struct.field("identifier")),
            )
        ).fill_null([]),
    ),
}


@dataclass(frozen=True)
class _PagePlan:
    """How a plain page of one endpoint is checked, read and flattened, given the fields a profile ignores."""

    decoder: msgspec.json.Decoder[Any]
    read_schema: dict[str, pl.DataType]
    checks: tuple[pl.Expr, ...]  # each true when a record is not plain
    converted: tuple[pl.Expr, ...]  # the lake columns but district_id, in the lake's order

    @classmethod
    @cache
    def of(cls, endpoint: str, envelope_key: str, ignored: frozenset[str]) -> _PagePlan:
        read: list[tuple[Column, _Kind]] = []
        constant: list[Column] = []
        for column in ENDPOINT_COLUMNS[endpoint]:
            kind = KINDS.get(column.kind)
            if column.key in ignored or kind is None or column.aliases:
                constant.append(column)
            else:
                read.append((column, kind))
        fields: list[tuple[str, Any, Any]] = [
            (ID, str, msgspec.NODEFAULT),
            ("status", str | None, None),
            ("dateLastModified", str | None, None),
        ]
        fields += [(column.key, kind.accepts, None) for column, kind in read]
        fields += [(key, Any, None) for key in sorted(ignored & _freely_ignored(endpoint))]
        record = msgspec.defstruct(f"{endpoint}_record", fields, forbid_unknown_fields=True, gc=False)
        envelope = msgspec.defstruct(f"{endpoint}_page", [(envelope_key, list[record])], gc=False)  # type: ignore[valid-type]
        schema: dict[str, pl.DataType] = {ID: pl.Utf8(), "status": pl.Utf8(), "dateLastModified": pl.Utf8()}
        schema.update({column.key: kind.read_as for column, kind in read})
        flags = [column.key for column, _ in read if column.kind == "flag"]
        return cls(
            msgspec.json.Decoder(envelope),
            schema,
            tuple(_checks(flags)),
            tuple(_lake_columns(endpoint, read, constant)),
        )


def read_lake_page(
    endpoint: str, envelope_key: str, district_id: str, ignored: frozenset[str], body: bytes
) -> pl.DataFrame | None:
    """The page's records as their lake frame (`flatten.lake_schema`), or None when the page is not plain and must
    be read record by record."""
    plan = _PagePlan.of(endpoint, envelope_key, ignored)
    try:
        checked = getattr(plan.decoder.decode(body), envelope_key)
        if not checked:
            return pl.DataFrame(schema=lake_schema(endpoint))
        raw = pl.read_json(body, schema={envelope_key: pl.List(pl.Struct(plan.read_schema))})
        records = raw.get_column(envelope_key).explode().struct.unnest()
        identified = [record.sourcedId for record in checked]
        if records.height != len(identified) or records.get_column(ID).to_list() != identified:
            return None  # a repeated key: msgspec read its last copy, Polars its first
        if any(records.select(plan.checks).row(0)):
            return None
        return records.select(pl.lit(district_id, dtype=pl.Utf8).alias("district_id"), *plan.converted)
    # Not JSON, nested deeper than msgspec reads, a number Polars cannot hold, or a timestamp in the plain form that
    # is no real instant (a 31st of June): the record path reads it, or says what is wrong with it.
    except (msgspec.MsgspecError, RecursionError, pl.exceptions.PolarsError):
        return None


def _freely_ignored(endpoint: str) -> frozenset[str]:
    """The fields a profile may ignore that feed no other column: not an alias (read when its column's own key is
    absent), not a 1.2 user's `roles` (normalize.py derives `role` and `orgs` from them)."""
    return frozenset(column.key for column in ENDPOINT_COLUMNS[endpoint] if not column.aliases) - {"roles"}


def _checks(flags: list[str]) -> list[pl.Expr]:
    """Whether any record of a page is not plain, one question each (see the module's docstring)."""
    modified = pl.col("dateLastModified")
    return [
        pl.col(ID).str.contains(BLANK).any().alias("blank_id"),
        (~pl.col("status").is_in(list(PLAIN_STATUS))).any().alias("odd_status"),
        (~modified.str.contains(PLAIN_TIMESTAMP) & (modified != "")).any().alias("odd_timestamp"),
        modified.str.starts_with("0000").any().alias("year_zero"),  # Polars reads it, Python's datetime does not
        *((~pl.col(key).is_in(list(PLAIN_BOOLEANS))).any().alias(key) for key in flags),
    ]


def _lake_columns(endpoint: str, read: list[tuple[Column, _Kind]], constant: list[Column]) -> list[pl.Expr]:
    """The expressions turning a plain page's records into the lake's columns, but district_id."""
    modified = pl.col("dateLastModified")
    converted: dict[str, pl.Expr] = {
        "sourced_id": pl.col(ID),
        "status": pl.col("status").replace(PLAIN_STATUS).fill_null("active"),
        "date_last_modified": pl.when(modified != "")
        .then(modified)
        .str.to_datetime(TIMESTAMP_FORMAT, time_unit="us", time_zone="UTC"),
        "metadata": pl.lit(None, dtype=pl.Utf8),
        "extra": pl.lit(None, dtype=pl.Utf8),
    }
    for column, kind in read:
        converted[column.name] = kind.flatten(pl.col(column.key))
    for column in constant:
        converted[column.name] = pl.lit(column.convert(None), dtype=column.dtype)
    schema = lake_schema(endpoint)
    return [converted[name].cast(schema[name]).alias(name) for name in schema if name != "district_id"]
