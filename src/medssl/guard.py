"""The CLI's last line of defence: every failure reaches the terminal as one line.

A user error (:class:`MedsslError`) is printed as it is. Ctrl-C exits 130 with a word on what
was kept. Anything unexpected is a bug: its full traceback goes to ``RUN/error.log`` when the
command has a run folder that medssl wrote (else to a file in the temporary folder), and the
terminal gets one line saying where. Third-party warnings are shown as one line each, without
the site-packages path of the code that raised them.
"""

from __future__ import annotations

import datetime
import importlib
import os
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from medssl.errors import Interrupted, MedsslError, user_error_in

# Lightning warns about what medssl does on purpose.
EXPECTED_WARNINGS = (
    r"Checkpoint directory .* exists and is not empty",  # --resume writes into its own run
)


def _say(text: str) -> None:
    """One line on stderr, never wrapped (a piped log must keep paths whole)."""
    sys.stderr.write(" ".join(text.split()) + "\n")
    sys.stderr.flush()


def one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """``warnings.showwarning`` replacement: ``warning: <message>``, no source path."""
    _say(f"warning: {message}")


def quiet_warnings() -> None:
    warnings.showwarning = one_line_warning
    for pattern in EXPECTED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


def run_folder(argv: Sequence[str]) -> Path | None:
    """The run folder a command works on (``--out`` of train / pretrain, ``--run``, ``report
    RUN``), if it is a medssl run that exists: where its error log belongs."""
    from medssl.engine.run import CONFIG

    args = list(argv)
    candidates = []
    for flag in ("--run", "--out"):
        if flag in args and args.index(flag) + 1 < len(args):
            candidates.append(args[args.index(flag) + 1])
    if len(args) >= 2 and args[0] == "report":
        candidates.append(args[1])
    for value in candidates:
        folder = Path(value)
        if (folder / CONFIG).is_file():
            return folder
    return None


def write_error_log(error: BaseException, argv: Sequence[str]) -> Path | None:
    """The traceback, the command and the versions, for a bug report; None if nothing could
    be written."""
    import medssl
    from medssl.atomic import write_text_atomic

    text = "".join(
        [
            f"medssl {getattr(medssl, '__version__', '?')} on Python {sys.version.split()[0]}\n",
            f"{datetime.datetime.now().isoformat(timespec='seconds')}\n",
            "command: medssl " + " ".join(argv) + "\n\n",
            *traceback.format_exception(error),
        ]
    )
    folder = run_folder(argv)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    targets = [folder / "error.log"] if folder is not None else []
    targets.append(Path(tempfile.gettempdir()) / f"medssl-error-{stamp}-{os.getpid()}.log")
    for target in targets:
        try:
            return write_text_atomic(target, text)
        except MedsslError:
            continue
    return None


def known_failure(error: BaseException) -> str | None:
    text = str(error).lower()
    if "out of memory" in text or "can't allocate memory" in text:
        return (
            "out of memory for this patch size and batch; lower data.patch_size or data.batch_size "
            "in --config, or use --profile cpu"
        )
    return None


def _click_exceptions(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from click and from the copy of click that typer vendors (``typer._click``):
    a usage error may come from either."""
    found = []
    for module in ("click.exceptions", "typer._click.exceptions"):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def guarded(command: Callable[[], int | None], argv: Sequence[str]) -> int:
    """Run ``command`` and turn whatever it raises into an exit code and at most one line."""
    try:
        code = command()
        return code if isinstance(code, int) else 0
    except _click_exceptions("Exit") as done:
        return done.exit_code
    except _click_exceptions("ClickException") as usage:
        usage.show()
        return usage.exit_code
    except (KeyboardInterrupt, *_click_exceptions("Abort")):
        _say("error: interrupted; nothing was written")
        return Interrupted.exit_code
    except Exception as error:  # noqa: BLE001 - the last line of defence
        user = error if isinstance(error, MedsslError) else user_error_in(error)
        if user is not None:
            _say(f"error: {user}")
            return user.exit_code
        known = known_failure(error)
        if known is not None:
            _say(f"error: {known}")
            return 2
        log = write_error_log(error, argv)
        where = f"the full traceback is in {log}" if log else "no log could be written"
        summary = " ".join(str(error).split())[:200]
        _say(
            f"error: unexpected {type(error).__name__}: {summary}; {where}; "
            "please report it with that file"
        )
        return 1
