"""The example queries of ``docs/queries.md``, read from the markdown so a test can run them.

A query is a fenced code block whose info string is ``sql``; its name is the nearest heading
above it. The HTML comment ``<!-- may be empty -->`` between that heading and the block marks a
query that may rightly return no rows on a warehouse of a fresh estate (one snapshot, no
exemptions). Code blocks in other languages (``sh``, ``python``) are not queries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

QUERIES_DOC = Path(__file__).resolve().parents[1] / "docs" / "queries.md"
MAY_BE_EMPTY = "<!-- may be empty -->"

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([^\s`]*)")


@dataclass(frozen=True)
class ExampleQuery:
    heading: str
    sql: str
    may_be_empty: bool
    line: int  # 1-based line of the opening fence


def parse_queries(path: Path = QUERIES_DOC) -> list[ExampleQuery]:
    """Every ``sql`` block of the markdown file, in order, with its heading and marker.

    Raises ValueError for a ``sql`` block before any heading, two ``sql`` blocks under one
    heading, or an unclosed fence: each query must be addressable by its heading.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    queries: list[ExampleQuery] = []
    heading: str | None = None
    heading_has_query = False
    marked = False
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if fence:
            marker, language = fence.group(1), fence.group(2).lower()
            start = index
            index += 1
            body: list[str] = []
            while index < len(lines) and not (
                lines[index].startswith(marker[0] * len(marker)) and not lines[index].strip(marker[0]).strip()
            ):
                body.append(lines[index])
                index += 1
            if index == len(lines):
                raise ValueError(f"{path}:{start + 1}: unclosed code fence")
            if language == "sql":
                if heading is None:
                    raise ValueError(f"{path}:{start + 1}: sql block before any heading")
                if heading_has_query:
                    raise ValueError(f"{path}:{start + 1}: a second sql block under heading {heading!r}")
                queries.append(ExampleQuery(heading, "\n".join(body).strip(), marked, start + 1))
                heading_has_query = True
            index += 1
            continue
        match = _HEADING.match(line)
        if match:
            heading = match.group(2)
            heading_has_query = False
            marked = False
        elif line.strip() == MAY_BE_EMPTY:
            marked = True
        index += 1
    return queries


def example_queries(path: Path = QUERIES_DOC) -> list[tuple[str, str]]:
    """(heading, SQL) of every example query of the markdown file, in order."""
    return [(query.heading, query.sql) for query in parse_queries(path)]


def may_be_empty(path: Path = QUERIES_DOC) -> set[str]:
    """Headings of the queries marked ``<!-- may be empty -->``."""
    return {query.heading for query in parse_queries(path) if query.may_be_empty}
