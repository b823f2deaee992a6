"""What reaches the terminal (one line, never a traceback, warnings without library paths) and
what reaches the disk (files with the modes the user's umask asks for)."""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path

from tests.faults.conftest import (
    call_cli,
    copy_run,
    messages,
    one_line,
    run_cli,
    train_args,
    write_config,
)


def test_no_labelled_case_is_one_line(seg_phantom: Path, tmp_path: Path):
    config = write_config(tmp_path / "c.yaml")
    args = train_args(seg_phantom, tmp_path / "run", config, 1)
    args[args.index("--labeled") + 1] = "0"
    code, _, err = run_cli(args, tmp_path)
    assert code == 2, err[-3000:]
    assert "--labeled 0" in one_line(err)
    assert not (tmp_path / "run").exists()


def _log_named_in(line: str) -> Path:
    found = re.search(r"the full traceback is in (\S+?);", line)
    assert found, line
    return Path(found.group(1))


def test_a_bug_is_one_line_and_a_log(seg_phantom: Path, tmp_path: Path):
    script = (
        "import sys, medssl.api as a; a.train = lambda *x, **k: 1/0; "
        f"sys.argv = ['medssl', 'train', '--data', {str(seg_phantom)!r}, "
        f"'--out', {str(tmp_path / 'run')!r}]; "
        "from medssl.cli import main; main()"
    )
    code, _, err = run_cli([], tmp_path, command=[sys.executable, "-c", script])
    assert code == 1, err[-3000:]
    line = one_line(err)
    assert "unexpected ZeroDivisionError" in line
    log = _log_named_in(line)
    assert log.parent == tmp_path / "tmpdir"  # no run folder: the temporary folder
    text = log.read_text()
    assert "Traceback" in text and "ZeroDivisionError" in text
    assert not (tmp_path / "run").exists()


def test_a_bug_in_a_run_logs_into_the_run(
    tiny_run: Path, seg_phantom: Path, tmp_path: Path, monkeypatch
):
    from medssl import api

    run = copy_run(tiny_run, tmp_path / "run")

    def bug(*args, **kwargs):
        raise KeyError("no such thing")

    monkeypatch.setattr(api, "evaluate", bug)
    code, _, err = call_cli(["evaluate", "--run", run, "--data", seg_phantom])
    assert code == 1, err[-3000:]
    line = one_line(err)
    assert "unexpected KeyError" in line
    assert _log_named_in(line) == run / "error.log"
    text = (run / "error.log").read_text()
    assert "Traceback" in text and "KeyError" in text


def test_a_library_warning_is_one_line(seg_phantom: Path, tmp_path: Path):
    config = write_config(tmp_path / "c.yaml")
    args = train_args(seg_phantom, tmp_path / "run", config, 1, "--precision", "16-mixed")
    code, _, err = run_cli(args, tmp_path)
    assert code == 0, err[-3000:]
    warnings = [line for line in messages(err) if line.startswith("warning: ")]
    assert warnings, err
    assert "site-packages" not in err
    assert [line for line in messages(err) if not line.startswith("warning: ")] == [], err
    assert "Traceback" not in err


def test_files_respect_the_umask(seg_phantom: Path, tmp_path: Path):
    run = tmp_path / "run"
    out = tmp_path / "eval.json"
    config = write_config(tmp_path / "c.yaml")

    def umask() -> None:
        os.umask(0o027)

    code, _, err = run_cli(train_args(seg_phantom, run, config, 2), tmp_path, preexec_fn=umask)
    assert code == 0, err[-3000:]
    args = ["evaluate", "--run", run, "--data", seg_phantom, "--out", out, "--only", "val"]
    code, _, err = run_cli(args, tmp_path, preexec_fn=umask)
    assert code == 0, err[-3000:]
    files = [
        run / "split.json",
        run / "config.yaml",
        run / "evaluation.json",
        out,
        *sorted((run / "checkpoints").glob("*.ckpt")),
        *sorted((run / "overlays").glob("*.npz")),
    ]
    assert len(files) >= 6
    modes = {p.relative_to(tmp_path).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {oct(0o640)}, modes
    folders = [run, run / "checkpoints"]
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in folders} == {oct(0o750)}
