"""A full disk or a read-only folder: one line naming the file and the cause, and no partial or
hidden temporary file left, whichever command was writing (and whether the writer said so)."""

from __future__ import annotations

import errno
import gzip
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from medssl import api, errors
from medssl.data.io import read_image, write_image
from tests.faults.conftest import (
    call_cli,
    copy_run,
    leftovers,
    one_line,
    run_cli,
    snapshot,
    train_args,
    write_config,
)


@pytest.fixture
def disk_full(monkeypatch: pytest.MonkeyPatch):
    """``disk_full()`` makes every flush of a file medssl writes fail with ENOSPC, as a full
    disk does; ``disk_full("x.json")`` only that file's."""

    from medssl import atomic

    real = atomic.fsync_path

    def inject(only: str | None = None) -> None:
        def fsync_path(path: Path) -> None:
            if only is None or Path(path).name.startswith(f".{only}."):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            real(path)

        monkeypatch.setattr(atomic, "fsync_path", fsync_path)

    return inject


def _files(snap: dict[str, bytes | None]) -> dict[str, bytes | None]:
    """The files of a snapshot (an empty folder made on the way is no output)."""
    return {k: v for k, v in snap.items() if v is not None}


def _gzip_complete(path: Path) -> bool:
    try:
        with gzip.open(path) as fh:
            while fh.read(1 << 20):
                pass
        return True
    except (OSError, EOFError):
        return False


def _fill(disk: Path) -> None:
    """Take every page left on ``disk``."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError as err:
        assert err.errno == errno.ENOSPC, err
    finally:
        os.close(fd)


def _stem(image: Path) -> str:
    return image.name[: -len(".nii.gz")]


# ------------------------------------------------------------------------------------------
# (a) ENOSPC injected where every write is flushed
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("out_exists", [False, True], ids=["new-out", "existing-out"])
def test_predict_on_a_full_disk(
    tiny_run: Path, phantom_images: list[Path], tmp_path: Path, disk_full, out_exists: bool
):
    out = tmp_path / "preds"
    if out_exists:
        out.mkdir()
        (out / "notes.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    disk_full()
    with pytest.raises(errors.OutputError) as info:
        api.predict(tiny_run, phantom_images[:2], out)
    message = str(info.value)
    assert "disk full" in message and "\n" not in message
    assert str(out / f"{_stem(phantom_images[0])}.nii.gz") in message  # the user's name for it
    assert snapshot(tmp_path) == before  # no mask, no staging folder, not even the --out folder


def test_evaluate_on_a_full_disk_keeps_the_earlier_result(
    tiny_run: Path, seg_phantom: Path, tmp_path: Path, disk_full
):
    run = copy_run(tiny_run, tmp_path / "run")
    earlier = tmp_path / "eval.json"
    earlier.write_text(json.dumps({"task": "segmentation", "mean": {"dice": 0.5}, "per_case": {}}))
    content = earlier.read_bytes()
    disk_full("eval.json")
    with pytest.raises(errors.OutputError) as info:
        api.evaluate(run, seg_phantom, out=earlier, only="val")
    message = str(info.value)
    assert "disk full" in message and "eval.json" in message and "\n" not in message
    assert earlier.read_bytes() == content
    assert leftovers(tmp_path) == []


def test_evaluate_on_a_full_disk_writes_nothing(
    tiny_run: Path, seg_phantom: Path, tmp_path: Path, disk_full
):
    run = copy_run(tiny_run, tmp_path / "run")
    before = snapshot(tmp_path)
    out = tmp_path / "eval.json"
    disk_full()
    with pytest.raises(errors.OutputError) as info:
        api.evaluate(run, seg_phantom, out=out, only="val")
    message = str(info.value)
    assert "disk full" in message and "\n" not in message
    target = Path(message.split(": ", 1)[0])  # "<file>: cannot be written: disk full; ..."
    assert target == out or run in target.parents, message  # names the file it was writing
    assert target.suffix in (".npz", ".json"), message
    assert not out.exists()  # an overlay from an earlier evaluate may exist: it is unchanged
    assert _files(snapshot(tmp_path)) == _files(before)
    assert leftovers(tmp_path) == []


def test_report_on_a_full_disk(tiny_run: Path, tmp_path: Path, disk_full):
    from medssl.report import build_report

    run = copy_run(tiny_run, tmp_path / "run")
    before = snapshot(run)
    disk_full()
    with pytest.raises(errors.OutputError) as info:
        build_report(run)
    message = str(info.value)
    assert "disk full" in message and "\n" not in message
    assert "report.html" in message or ".png" in message, message
    assert _files(snapshot(run)) == _files(before)
    assert leftovers(run) == []


def test_checkpoint_on_a_full_disk_keeps_the_old_one(tmp_path: Path, disk_full):
    from medssl.engine.checkpoint import save_atomic

    target = tmp_path / "checkpoints" / "last.ckpt"
    target.parent.mkdir()
    torch.save({"global_step": 1}, target)
    old = target.read_bytes()
    disk_full()
    with pytest.raises(errors.OutputError) as info:
        save_atomic({"global_step": 2, "w": torch.zeros(1000)}, target)
    message = str(info.value)
    assert "disk full" in message and "last.ckpt" in message and "\n" not in message
    assert target.read_bytes() == old
    assert sorted(os.listdir(target.parent)) == ["last.ckpt"]


@pytest.mark.parametrize("exists", [False, True], ids=["new", "replaced"])
def test_write_image_on_a_full_disk(seg_phantom: Path, tmp_path: Path, disk_full, exists: bool):
    label = sorted((seg_phantom / "labelsTr").glob("*.nii.gz"))[0]
    image = read_image(label)
    target = tmp_path / "mask.nii.gz"
    if exists:
        shutil.copyfile(sorted((seg_phantom / "labelsTr").glob("*.nii.gz"))[1], target)
    before = snapshot(tmp_path)
    disk_full()
    with pytest.raises(errors.OutputError) as info:
        write_image(target, image)
    message = str(info.value)
    assert "disk full" in message and "mask.nii.gz" in message and "\n" not in message
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------------------------
# (b) a writer that truncates silently
# ------------------------------------------------------------------------------------------


def test_silently_truncated_image_is_caught(
    seg_phantom: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """SimpleITK cuts a .nii.gz short on a full disk and returns as if it had succeeded."""
    import SimpleITK as sitk

    real = sitk.WriteImage
    side = tmp_path / "side" / "full.nii.gz"
    side.parent.mkdir()
    calls = []

    def half_write(image, path, *args, **kwargs):
        real(image, str(side), *args, **kwargs)
        whole = side.read_bytes()
        Path(path).write_bytes(whole[: len(whole) // 2])
        calls.append(path)

    monkeypatch.setattr(sitk, "WriteImage", half_write)
    image = read_image(sorted((seg_phantom / "labelsTr").glob("*.nii.gz"))[0])
    target = tmp_path / "out" / "mask.nii.gz"
    with pytest.raises(errors.OutputError) as info:
        write_image(target, image)
    assert calls, "write_image did not go through SimpleITK.WriteImage"
    assert "mask.nii.gz" in str(info.value) and "\n" not in str(info.value)
    assert not target.exists()
    assert leftovers(tmp_path / "out") == []


# ------------------------------------------------------------------------------------------
# (c) a real, tiny file system
# ------------------------------------------------------------------------------------------


def test_predict_onto_a_full_tmpfs(
    tiny_run: Path, phantom_images: list[Path], tmp_path: Path, tmpfs
):
    disk = tmpfs("20k")  # 5 pages: fewer than the 8 masks
    out = disk / "preds"
    code, _, err = run_cli(
        ["predict", *phantom_images, "--run", tiny_run, "--out", out], tmp_path, timeout=300
    )
    assert code == 2, err[-3000:]
    line = one_line(err)
    assert "disk full" in line
    assert not out.exists() or sorted(os.listdir(out)) == []
    partial = [p for p in disk.rglob("*.nii.gz") if not _gzip_complete(p)]
    assert partial == []
    assert leftovers(disk) == []


def test_train_onto_a_full_tmpfs(seg_phantom: Path, tmp_path: Path, tmpfs):
    disk = tmpfs("300k")  # config and split fit; the first checkpoints (~250 kB each) do not
    config = write_config(tmp_path / "c.yaml")
    code, _, err = run_cli(train_args(seg_phantom, disk / "run", config, 2), tmp_path)
    assert code == 2, err[-3000:]
    line = one_line(err)
    assert "disk full" in line
    assert leftovers(disk) == []
    for ckpt in disk.rglob("*.ckpt"):  # whatever is left must be whole
        with zipfile.ZipFile(ckpt) as archive:
            assert archive.testzip() is None, ckpt


def test_report_onto_a_full_tmpfs(tiny_run: Path, tmpfs):
    """``medssl report`` on a run whose disk is really full."""
    disk = tmpfs("2m")
    run = copy_run(tiny_run, disk / "run")
    _fill(disk)
    before = snapshot(run)
    code, _, err = call_cli(["report", run])
    assert _files(snapshot(run)) == _files(before)
    assert leftovers(run) == []
    assert code == 2, err[-3000:]
    assert "disk full" in one_line(err), err


# ------------------------------------------------------------------------------------------
# read-only output folders
# ------------------------------------------------------------------------------------------


def _says_read_only(line: str) -> bool:
    return "read-only" in line or "permission" in line


def test_predict_into_a_read_only_folder(
    tiny_run: Path, phantom_images: list[Path], tmp_path: Path, tmpfs
):
    disk = tmpfs("64k", read_only=True)
    code, _, err = call_cli(
        ["predict", phantom_images[0], "--run", tiny_run, "--out", disk / "preds"]
    )
    assert code == 2, err[-3000:]
    assert _says_read_only(one_line(err)), err
    assert os.listdir(disk) == []


def test_train_into_a_read_only_folder(seg_phantom: Path, tmp_path: Path, tmpfs):
    disk = tmpfs("64k", read_only=True)
    config = write_config(tmp_path / "c.yaml")
    code, _, err = call_cli(train_args(seg_phantom, disk / "run", config, 1))
    assert code == 2, err[-3000:]
    assert _says_read_only(one_line(err)), err
    assert os.listdir(disk) == []
