"""Helpers of the fault suite: run the CLI (as a subprocess or in-process), read its stderr,
start and stop training processes, snapshot folders, and mount tiny tmpfs file systems.

Every command must fail with one line on stderr, exit 2 (130 for Ctrl-C), leave no partial
file behind and never touch its inputs; these helpers make that cheap to check.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from tests.conftest import TINY_SEG_CONFIG

CLI = [sys.executable, "-m", "medssl.cli"]
PROGRESS = re.compile(r"^step \d+(/\d+)?\b")
DEADLINE_S = 120.0


# ------------------------------------------------------------------------------------------
# running the CLI
# ------------------------------------------------------------------------------------------


def cli_env(tmp: Path) -> dict[str, str]:
    """The environment of a CLI subprocess; its temporary folder (error logs) lies in ``tmp``."""
    tmpdir = tmp / "tmpdir"
    tmpdir.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmpdir)}


def run_cli(
    args: list[str],
    tmp: Path,
    timeout: float = 300,
    preexec_fn: Callable[[], Any] | None = None,
    command: list[str] | None = None,
) -> tuple[int, str, str]:
    """``medssl ARGS`` in a subprocess: (exit code, stdout, stderr)."""
    done = subprocess.run(
        [*(command or CLI), *map(str, args)],
        env=cli_env(tmp),
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )
    return done.returncode, done.stdout, done.stderr


def call_cli(args: list[str]) -> tuple[int, str, str]:
    """``medssl ARGS`` run by the entry point ``medssl.cli.main`` in this process: (exit code,
    stdout, stderr). For the quick refusals, where a subprocess costs seconds; the warning
    filters it installs are undone afterwards."""
    from medssl.cli import main

    argv = ["medssl", *(str(a) for a in args)]
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with (
        warnings.catch_warnings(),
        mock.patch.object(sys, "argv", argv),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            main()
        except SystemExit as done:
            code = done.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message")
        err.write(f"{code}\n")
        code = 1
    return code, out.getvalue(), err.getvalue()


def messages(stderr: str) -> list[str]:
    """The lines of ``stderr`` that are not progress lines (``step 3/10  loss ...``)."""
    return [line for line in stderr.splitlines() if line.strip() and not PROGRESS.match(line)]


def last_line(stderr: str) -> str:
    """The last line of ``stderr`` that is not a progress line ("" if none)."""
    lines = messages(stderr)
    return lines[-1] if lines else ""


def one_line(stderr: str) -> str:
    """Assert that ``stderr`` holds exactly one message line (progress lines aside), no
    traceback; return it."""
    lines = messages(stderr)
    assert "Traceback" not in stderr, stderr[-3000:]
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n" + "\n".join(lines)
    return lines[0]


# ------------------------------------------------------------------------------------------
# configs and training commands
# ------------------------------------------------------------------------------------------


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def write_config(path: Path, **changes: Any) -> Path:
    """``TINY_SEG_CONFIG`` with ``changes`` merged over it (``train={"val_every": 5}``)."""
    path.write_text(yaml.safe_dump(merged(TINY_SEG_CONFIG, changes)))
    return path


def train_args(data: Path, out: Path, config: Path, steps: int, *extra: str) -> list[str]:
    """``train`` with 2 labelled cases, the cpu profile, ``config`` and ``steps`` steps."""
    return [
        "train", "--data", str(data), "--out", str(out), "--labeled", "2", "--profile", "cpu",
        "--max-steps", str(steps), "--config", str(config), *extra,
    ]  # fmt: skip


def _default_sigint() -> None:
    """A job started in the background by a non-interactive shell ignores SIGINT, and so would
    its children: give the CLI the Ctrl-C a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Background:
    """A CLI command running in the background, its stderr going to a file."""

    def __init__(self, args: list[str], tmp: Path, name: str = "bg") -> None:
        self.stderr_path = tmp / f"{name}.stderr"
        self._err = open(self.stderr_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*CLI, *map(str, args)],
            env=cli_env(tmp),
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            preexec_fn=_default_sigint,
        )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = DEADLINE_S):
        """Poll ``condition`` until it holds; fail if the process ends first or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.proc.poll() is not None:
                pytest.fail(
                    f"the process ended (exit {self.proc.returncode}) before {what}:\n"
                    + self.stderr[-3000:]
                )
            time.sleep(0.02)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}:\n" + self.stderr[-3000:])

    def signal(self, sig: int, timeout: float = DEADLINE_S) -> int:
        """Send ``sig`` and wait for the exit code (negative: killed by a signal)."""
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """Kill the process if it is still running (always call in a ``finally``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._err.close()


def progress_step(stderr: str) -> int:
    """The highest ``step N/M`` progress line in ``stderr`` (0 if none yet)."""
    steps = [int(m.group(1)) for m in re.finditer(r"^step (\d+)/", stderr, re.MULTILINE)]
    return max(steps, default=0)


def file_changed(path: Path, before: bytes | None) -> Callable[[], bool]:
    """A condition: ``path`` exists and its bytes differ from ``before``."""

    def changed() -> bool:
        try:
            return path.read_bytes() != before
        except OSError:
            return False

    return changed


# ------------------------------------------------------------------------------------------
# folders
# ------------------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` (hidden ones included): relative path -> bytes (None for a
    folder). Equal snapshots mean nothing was added, removed or changed."""
    result: dict[str, bytes | None] = {}
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(folder).as_posix()
        result[key] = None if path.is_dir() else path.read_bytes()
    return result


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary files or folders anywhere under ``folder`` (``.x.tmp``, staging)."""
    if not folder.exists():
        return []
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob(".*")
        if ".tmp" in p.name or p.name.startswith((".predict-", ".report-"))
    )


def replaced_name(out: Path) -> Path:
    """Where ``--force`` keeps the old run until the new one has a checkpoint."""
    from medssl.engine.run import replaced_name as where

    return where(out)


def copy_run(run: Path, dest: Path) -> Path:
    """A private copy of a session run, for a test that writes into it."""
    shutil.copytree(run, dest)
    return dest


# ------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """In-process code (error logs, staging) uses a temporary folder inside ``tmp_path``, never
    the shared /tmp."""
    import tempfile

    folder = tmp_path / "tmpdir"
    folder.mkdir(exist_ok=True)
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture(scope="session")
def other_phantom(tmp_path_factory) -> Path:
    """A second seg3d phantom (seed 1): same case names as ``seg_phantom``, other data."""
    from medssl.data.phantom import make_phantom

    return make_phantom(tmp_path_factory.mktemp("phantom1") / "seg3d", "seg3d", cases=8, seed=1)


@pytest.fixture(scope="session")
def phantom_images(seg_phantom: Path) -> list[Path]:
    """The 8 images of ``seg_phantom``."""
    return sorted((seg_phantom / "imagesTr").glob("*.nii.gz"))


def _mount(folder: Path, options: str) -> None:
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )


def _umount(folder: Path) -> None:
    done = subprocess.run(["umount", str(folder)], capture_output=True)
    if done.returncode != 0:  # still busy (a process being killed): detach it
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``tmpfs("20k")`` mounts a tmpfs of that size under ``tmp_path`` and returns it
    (``read_only=True`` for a read-only one); every mount is undone at the end. Skips when not
    root or when mounting is not possible here (a container without CAP_SYS_ADMIN)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    mounted: list[Path] = []

    def mount(size: str, read_only: bool = False) -> Path:
        folder = tmp_path / f"tmpfs{len(mounted)}"
        folder.mkdir()
        options = f"{'ro,' if read_only else ''}size={size}"
        try:
            _mount(folder, options)
        except subprocess.CalledProcessError as err:
            pytest.skip(f"cannot mount a tmpfs here: {err.stderr.strip() or err}")
        mounted.append(folder)
        return folder

    try:
        yield mount
    finally:
        for folder in reversed(mounted):
            _umount(folder)
