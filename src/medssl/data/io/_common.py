"""What every reader and writer shares: suffixes, path checks, one-line reasons."""

from __future__ import annotations

import struct
from pathlib import Path

from medssl.atomic import suffix_of
from medssl.errors import file_error

__all__ = ["PARSE_ERRORS", "existing_path", "one_line", "suffix_of"]

# What third-party parsers raise on damaged files (pydicom, numpy and zipfile use all of these).
PARSE_ERRORS = (OSError, EOFError, ValueError, TypeError, KeyError, IndexError, struct.error)


def existing_path(path: str | Path) -> Path:
    """``path`` with ``~`` expanded, or a DataError when nothing is there."""
    p = Path(path).expanduser()
    if not p.exists():
        raise file_error(p, "does not exist", "check the path")
    return p


def one_line(text: object) -> str:
    """A third-party message squeezed onto one line, for the one-line error policy."""
    return " ".join(str(text).split())
