"""Reading our SQL files: named blocks of statements, and the lineage each block declares.

A file in ``store/sql/`` is a sequence of blocks, each headed ``-- name: <block>``. A block that builds an
analyst table may say what the table is computed from in a ``-- sources: a, b`` line right after its name, so
its lineage is written beside the SQL it describes (see catalogue.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

NAME = "-- name:"
SOURCES = "-- sources:"


@dataclass(frozen=True)
class SqlBlock:
    name: str
    sql: str
    sources: tuple[str, ...] | None = None  # None: the block declares no lineage (it builds no analyst table)


@cache
def sql_blocks(file: str) -> tuple[SqlBlock, ...]:
    """The blocks of ``sql/<file>.sql`` in file order."""
    text = resources.files("roster_pipeline.store.sql").joinpath(f"{file}.sql").read_text(encoding="utf-8")
    blocks: list[tuple[str, list[str], tuple[str, ...] | None]] = []
    for line in text.splitlines():
        if line.startswith(NAME):
            blocks.append((line.removeprefix(NAME).strip(), [], None))
        elif blocks and line.startswith(SOURCES) and not blocks[-1][1]:
            name, lines, _ = blocks[-1]
            sources = tuple(source.strip() for source in line.removeprefix(SOURCES).split(","))
            blocks[-1] = (name, lines, sources)
        elif blocks:
            blocks[-1][1].append(line)
    return tuple(SqlBlock(name, "\n".join(lines).strip(), sources) for name, lines, sources in blocks)


def load_sql(file: str) -> dict[str, str]:
    """The named statements of ``sql/<file>.sql`` (blocks headed ``-- name: <statement>``)."""
    return {block.name: block.sql for block in sql_blocks(file)}


def declared_sources(*files: str) -> dict[str, tuple[str, ...]]:
    """Each block of ``files`` that declares ``-- sources:``, by name, in file order."""
    return {block.name: block.sources for file in files for block in sql_blocks(file) if block.sources is not None}


def statements(block: str) -> list[str]:
    """The statements of a block, without comment lines (our SQL files keep `;` out of comments)."""
    code = "\n".join(line for line in block.splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in code.split(";") if statement.strip()]


def used_params(statement: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters a statement names (DuckDB refuses unused named parameters)."""
    return {key: value for key, value in params.items() if f"${key}" in statement}
