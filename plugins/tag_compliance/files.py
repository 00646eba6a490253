"""Files people and programs read while we write them: policies, reports, remediation plans."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path


def write_text_atomically(path: Path | str, text: str, newline: str = "\n") -> Path:
    """Write ``text`` through a temporary file in the same directory and a rename.

    A reader (the pipeline, a browser, a mail job) never sees half a file, and a failed write
    leaves the previous one as it was. The file gets the mode a plain write would have.
    ``newline`` as in ``open()`` (``""`` for CSV, whose writer sets its own line endings).
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return path
