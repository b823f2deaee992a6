"""``medssl report RUN``: stage the page and its plots in a temporary folder inside the run,
then move them into place, so a crash or a full disk never leaves a half-written report.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import yaml

from medssl.atomic import output_error, write_text_atomic
from medssl.errors import CheckpointError, MedsslError, OutputError, file_error
from medssl.report.html import NOT_A_RUN_FIX, Page
from medssl.report.html_parts import _one_line


def build_report(run_dir: str | Path) -> Path:
    """Write ``RUN/report.html`` and ``RUN/plots/*.png`` for a run; return the html path.

    Raises :class:`CheckpointError` when ``run_dir`` is not a run (no ``config.yaml``) or
    cannot be written. Any other failure propagates and leaves earlier outputs untouched.
    """
    run_dir = Path(run_dir)
    config = _load_config(run_dir)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".report-", dir=run_dir))
    except OSError as err:
        raise _unwritable(run_dir, err) from err
    try:
        page = Page(run_dir=run_dir, plots_dir=staging / "plots", config=config)
        staged_html = staging / "report.html"
        try:
            write_text_atomic(staged_html, page.render())  # flushed and read back
        except OSError as err:  # a full disk while staging: nothing was published
            raise _unwritable(run_dir, err) from None
        except OutputError as err:  # a staged file did not read back: name the report
            cause = str(err).split("cannot be written: ", 1)[-1]
            raise OutputError(f"{run_dir / 'report.html'}: cannot be written: {cause}") from None
        return _publish(staging, staged_html, run_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _load_config(run_dir: Path) -> dict:
    """Read the one required file; anything else is not a run the report can describe."""
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise file_error(run_dir, "no config.yaml", NOT_A_RUN_FIX, CheckpointError)
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        problem = f"unreadable config.yaml ({_one_line(err)})"
        raise file_error(config_path, problem, "re-run medssl train", CheckpointError) from err
    if not isinstance(config, dict):
        problem = "config.yaml is not a mapping"
        raise file_error(config_path, problem, "re-run medssl train", CheckpointError)
    return config


def _publish(staging: Path, staged_html: Path, run_dir: Path) -> Path:
    """Move the staged plots, then the page, into the run; the page goes last so it never
    references a plot that is not there yet."""
    target_plots = run_dir / "plots"
    target_html = run_dir / "report.html"
    try:
        target_plots.mkdir(exist_ok=True)
        for png in sorted((staging / "plots").glob("*.png")):
            os.replace(png, target_plots / png.name)
        os.replace(staged_html, target_html)
    except OSError as err:
        raise _unwritable(run_dir, err) from err
    return target_html


def _unwritable(run_dir: Path, err: OSError) -> MedsslError:
    """The one-line error for a run folder the report cannot write into ("disk full" named)."""
    return output_error(run_dir / "report.html", err)


# --------------------------------------------------------------------------- page model
