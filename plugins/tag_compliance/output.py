"""Showing values from tag data safely: in spreadsheets (CSV), terminals and the HTML report.

Tag keys, values, ids and names come from whoever tags a resource, so they can hold a
spreadsheet formula, terminal escape sequences or Unicode bidi controls that reorder the text
around them. Each output keeps the exact value where it can (JSON, and CSV for programs) and
neutralises only what its viewer would act on.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any, TextIO

# OWASP "CSV Injection": a cell starting with one of these is run as a formula by spreadsheets.
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Bidi embeddings and overrides (LRE RLE PDF LRO RLO) and isolates (LRI RLI FSI PDI).
BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
# C0, DEL, C1 and the bidi controls: what a terminal acts on or shows reordered.
_CONTROLS = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI_CONTROLS}]")
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# DEL, C1 and the bidi controls, which json.dumps(ensure_ascii=False) leaves raw.
_JSON_RAW = re.compile(f"[\x7f-\x9f{BIDI_CONTROLS}]")

_ISOLATE_OPENERS = "\u2066\u2067\u2068"  # LRI, RLI, FSI
PDI = "\u2069"
FSI = "\u2068"
# Paragraph separators HTML does not collapse to a space: they end every isolation.
_PARAGRAPH_SEPARATORS = "\x1c\x1d\x1e\u2029"


def guard_csv_formula(text: str) -> str:
    """``text`` with a leading ``'`` if a spreadsheet would run it as a formula (OWASP's advice)."""
    return "'" + text if text.startswith(CSV_FORMULA_STARTS) else text


def csv_cell(value: Any, text: str, formula_guard: bool) -> str:
    """A cell's CSV text: formula-guarded only when the value is text (numbers stay numbers)."""
    return guard_csv_formula(text) if formula_guard and isinstance(value, str) else text


def write_csv_rows(stream: TextIO, rows: Iterable[Iterable[str]]) -> None:
    """CSV lines ending in ``\\n``, with every cell holding a CR or LF quoted.

    ``csv.writer`` quotes only the characters of its line terminator, so with ``\\n`` a bare
    CR in a cell would go out unquoted and split the row in a spreadsheet (the next "cell"
    then escapes the formula guard). Writing with ``\\r\\n`` quotes both; the line ends in ``\\n``.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow(row)
        stream.write(buffer.getvalue()[:-2] + "\n")
        buffer.seek(0)
        buffer.truncate()


def _escape(char: str) -> str:
    code = ord(char)
    return _SHORT_ESCAPES.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def escape_controls(text: str) -> str:
    """``text`` for a terminal: control and bidi characters shown as ``\\x1b``, ``\\u202e``, ..."""
    return _CONTROLS.sub(lambda match: _escape(match.group()), text)


def escape_json_controls(document: str) -> str:
    """JSON text with DEL, C1 and bidi controls as ``\\u`` escapes: the same values, parsed.

    (They can only occur inside JSON strings, where a ``\\u`` escape means the same character.)
    """
    return _JSON_RAW.sub(lambda match: f"\\u{ord(match.group()):04x}", document)


def isolation_safe(text: str) -> str:
    """``text`` made safe to put in one bidi isolation (``<bdi>``, or FSI ... PDI).

    Browsers isolate by the same mechanism as the FSI/PDI characters, so a PDI of the text's
    own without its opener, or a paragraph separator, would end the isolation early and let an
    override that follows reorder the page around it (seen in Chromium). Those characters are
    shown escaped (``\\u2069``); isolates the text opens and never closes are closed at its end.
    """
    out: list[str] = []
    depth = 0
    for char in text:
        if char in _ISOLATE_OPENERS:
            depth += 1
        elif char == PDI:
            if depth == 0:
                out.append(_escape(char))
                continue
            depth -= 1
        elif char in _PARAGRAPH_SEPARATORS:
            out.append(_escape(char))
            continue
        out.append(char)
    return "".join(out) + PDI * depth


def isolate(text: str) -> str:
    """``text`` between FSI and PDI: an isolation where markup (``<bdi>``) cannot go, e.g. SVG."""
    return FSI + isolation_safe(text) + PDI
