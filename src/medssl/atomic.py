"""Every file medssl writes goes through :func:`write_atomic`: no reader ever sees half a file.

The content goes to a hidden temporary name beside the target, is flushed to the disk, checked
(a caller's ``verify`` reads it back), and only then renamed over the target; any failure removes
the temporary file and leaves the target as it was. The check matters because not every writer
reports a full disk: SimpleITK silently truncates a ``.nii.gz`` and returns as if it succeeded.
Files are created with the default mode, so the user's umask applies as for any other program.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medssl.errors import ConfigError, OutputError, file_error

# Below this much free space a write that failed or read back wrong is reported as "disk full".
NEARLY_FULL_BYTES = 1 << 20
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_NOT_SPACE = {errno.EROFS, errno.EACCES, errno.EPERM}


def suffix_of(path: Path) -> str:
    """The lower-case suffix, with ``.nii.gz`` kept whole (SimpleITK picks formats from it)."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def temporary_name(path: Path) -> Path:
    """A hidden, unique name beside ``path`` that keeps its suffix."""
    return path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp{suffix_of(path)}"


def disk_nearly_full(folder: Path) -> bool:
    """True when the file system holding ``folder`` has (almost) no space left."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < NEARLY_FULL_BYTES


def output_error(path: Path, err: BaseException) -> OutputError:
    """The one-line error for an output that could not be written, naming the cause."""
    code = getattr(err, "errno", None)
    folder = next((p for p in (path.parent, *path.parents) if p.exists()), Path("."))
    if code in _DISK_FULL or (code not in _NOT_SPACE and disk_nearly_full(folder)):
        problem, fix = "disk full", "free space on that disk or write somewhere else"
    elif code == errno.EROFS:
        problem, fix = "read-only file system", "write to another folder"
    elif code in (errno.EACCES, errno.EPERM):
        problem, fix = "permission denied", "check that the folder is writable or choose another"
    else:
        reason = getattr(err, "strerror", None) or " ".join(str(err).split())[:160]
        problem, fix = reason or type(err).__name__, "check that the folder is writable"
    return file_error(path, f"cannot be written: {problem}", fix, OutputError)


def check_outside(out: str | Path, source: str | Path, source_flag: str, out_flag: str) -> None:
    """Refuse an output that is, holds or lies inside an input folder: writing there would
    change (or, replaced, delete) the input."""
    out_abs, src_abs = Path(out).expanduser().resolve(), Path(source).expanduser().resolve()
    if out_abs == src_abs:
        relation = f"is the {source_flag} folder"
    elif out_abs in src_abs.parents:
        relation = f"contains the {source_flag} folder {source}"
    elif src_abs in out_abs.parents:
        relation = f"lies inside the {source_flag} folder {source}"
    else:
        return
    raise file_error(out, relation, f"choose an {out_flag} outside it", ConfigError)


def fsync_path(path: Path) -> None:
    """Flush a file (or a folder entry, after a rename) to the disk; errors surface here."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    try:
        fsync_path(folder)
    except OSError as err:  # some file systems cannot fsync a folder; the rename still stands
        if err.errno not in (errno.EINVAL, errno.EBADF, errno.EACCES, errno.EPERM):
            raise


def write_atomic(
    path: str | Path,
    write: Callable[[Path], None],
    verify: Callable[[Path], None] | None = None,
) -> Path:
    """Run ``write`` on a temporary name, flush, ``verify``, then rename onto ``path``.

    ``verify`` reads the temporary file back and raises if it is not what was meant; any
    failure is an :class:`OutputError` naming ``path`` ("disk full" when that is the cause),
    and the target keeps its old content.
    """
    path = Path(path).expanduser()
    tmp = temporary_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        fsync_path(tmp)
        if verify is not None:
            verify(tmp)
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except OutputError:
        raise
    except (OSError, RuntimeError, ValueError, EOFError, zipfile.BadZipFile) as err:
        # OSError from Python's own writes; RuntimeError from torch's or ITK's C++ writers;
        # the rest from a verify that found a short or damaged file.
        raise output_error(path, err) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_bytes_atomic(path: str | Path, content: bytes) -> Path:
    """Write ``content``; the read-back must give the same bytes."""

    def verify(tmp: Path) -> None:
        if tmp.read_bytes() != content:
            raise ValueError("the file read back differs from what was written")

    return write_atomic(path, lambda tmp: tmp.write_bytes(content), verify)


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, payload: Any) -> Path:
    """JSON with two-space indentation and a final newline."""
    return write_text_atomic(path, json.dumps(payload, indent=2) + "\n")


def write_npz(path: str | Path, arrays: dict[str, Any]) -> Path:
    """Arrays in one ``.npz``; the read-back must hold every array as written."""
    import numpy as np

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    def verify(tmp: Path) -> None:
        with np.load(tmp) as saved:
            if sorted(saved.files) != sorted(arrays) or any(
                not np.array_equal(saved[k], np.asarray(v)) for k, v in arrays.items()
            ):
                raise ValueError("the arrays read back differ from what was written")

    return write_atomic(path, write, verify)


def verify_zip(tmp: Path) -> None:
    """A zip (torch's checkpoint container) whose every member passes its CRC check."""
    with zipfile.ZipFile(tmp) as archive:
        bad = archive.testzip()
    if bad is not None:
        raise ValueError(f"member {bad} is damaged")
