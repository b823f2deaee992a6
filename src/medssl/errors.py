"""User-facing errors: one line naming the file and the fix, never a deep traceback."""

from __future__ import annotations

from pathlib import Path


class MedsslError(Exception):
    """An error the user can fix. The CLI prints ``str(err)`` on one line and exits non-zero.

    Build messages as ``"<file>: <what is wrong>; <how to fix it>"`` via :func:`file_error`.
    """

    exit_code = 2


class DataError(MedsslError):
    """A dataset or file on disk is missing, unreadable or inconsistent."""


class ConfigError(MedsslError):
    """A command-line option or config value is invalid."""


class TrainingError(MedsslError):
    """Training cannot go on (e.g. the weights became NaN); the settings to change are named."""


class OutputError(MedsslError):
    """An output cannot be written (disk full, read-only or forbidden folder); nothing partial
    is left behind."""


class Interrupted(MedsslError):
    """The user stopped a command (Ctrl-C); the message says what was kept."""

    exit_code = 130


class CheckpointError(MedsslError):
    """A checkpoint or run directory cannot be used for what was asked."""


def file_error(path: str | Path, problem: str, fix: str, cls: type[MedsslError] = DataError):
    """Return ``cls`` with the one-line message ``"<path>: <problem>; <fix>"``."""
    return cls(f"{path}: {problem}; {fix}")


def user_error_in(exc: BaseException) -> MedsslError | None:
    """The MedsslError behind ``exc``, if any: MONAI and Lightning wrap exceptions raised
    inside transforms and hooks (``RuntimeError("applying transform ...") from err``)."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, MedsslError):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None
