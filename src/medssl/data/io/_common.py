"""What every reader and writer shares: suffixes, path checks, one-line reasons, atomic writes."""

from __future__ import annotations

import os
import secrets
import struct
from collections.abc import Callable
from pathlib import Path

from medssl.errors import file_error

# What third-party parsers raise on damaged files (pydicom, numpy and zipfile use all of these).
PARSE_ERRORS = (OSError, EOFError, ValueError, TypeError, KeyError, IndexError, struct.error)


def suffix_of(path: Path) -> str:
    """The lower-case suffix, with ``.nii.gz`` kept whole."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def existing_path(path: str | Path) -> Path:
    """``path`` with ``~`` expanded, or a DataError when nothing is there."""
    p = Path(path).expanduser()
    if not p.exists():
        raise file_error(p, "does not exist", "check the path")
    return p


def one_line(text: object) -> str:
    """A third-party message squeezed onto one line, for the one-line error policy."""
    return " ".join(str(text).split())


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Run ``write`` on a hidden temporary file beside ``path``, then rename it into place.

    The temporary name keeps the target's suffix because SimpleITK picks the format from it.
    """
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp{suffix_of(path)}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        raise file_error(
            path, f"cannot be written ({err.strerror or err})", "check the folder is writable"
        ) from err
    finally:
        tmp.unlink(missing_ok=True)
