"""``predict`` is all or nothing: every input and output name is checked before the first mask,
a failure half-way leaves no mask at all, and an existing file is never replaced."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from medssl import api
from medssl.errors import DataError
from tests.faults.conftest import call_cli, leftovers, one_line, run_cli, snapshot


def _predict(run: Path, inputs: list[Path], out: Path) -> list[str]:
    return ["predict", *inputs, "--run", run, "--out", out]


def test_two_inputs_with_one_output_name_are_refused(
    tiny_run: Path, phantom_images: list[Path], tmp_path: Path
):
    inputs = []
    for folder, image in zip(("c1", "c2"), phantom_images[:2], strict=True):
        (tmp_path / folder).mkdir()
        inputs.append(Path(shutil.copyfile(image, tmp_path / folder / "scan.nii.gz")))
    out = tmp_path / "preds"
    code, _, err = run_cli(_predict(tiny_run, inputs, out), tmp_path)
    assert code == 2, err[-3000:]
    line = one_line(err)
    assert "scan.nii.gz" in line
    assert not out.exists()


def test_truncated_second_input_leaves_no_mask(
    tiny_run: Path, phantom_images: list[Path], tmp_path: Path
):
    broken = tmp_path / "broken.nii.gz"
    whole = phantom_images[1].read_bytes()
    broken.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "preds"
    code, _, err = call_cli(_predict(tiny_run, [phantom_images[0], broken], out))
    assert code == 2, err[-3000:]
    line = one_line(err)
    assert "broken.nii.gz" in line
    assert not out.exists()  # not even the first input's mask, nor the folder


@pytest.mark.parametrize("which", [0, 1], ids=["first", "second"])
def test_an_existing_output_is_never_replaced(
    tiny_run: Path, phantom_images: list[Path], tmp_path: Path, which: int
):
    out = tmp_path / "preds"
    out.mkdir()
    existing = out / phantom_images[which].name  # the mask keeps the input's name
    existing.write_bytes(b"an earlier mask the user keeps")
    before = snapshot(out)
    code, _, err = call_cli(_predict(tiny_run, phantom_images[:2], out))
    assert code == 2, err[-3000:]
    line = one_line(err)
    assert existing.name in line and "exists" in line
    assert snapshot(out) == before  # nothing replaced, nothing added


def test_an_input_that_vanishes_mid_run_leaves_no_mask(
    tiny_run: Path, phantom_images: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import SimpleITK as sitk

    inputs = [Path(shutil.copy(p, tmp_path)) for p in phantom_images[:2]]
    out = tmp_path / "preds"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    real = sitk.WriteImage
    written = []

    def write_then_lose_an_input(image, path, *args, **kwargs):
        real(image, path, *args, **kwargs)
        written.append(path)
        if len(written) == 1:  # the first mask is written: the second input goes away
            inputs[1].unlink()

    monkeypatch.setattr(sitk, "WriteImage", write_then_lose_an_input)
    with pytest.raises(DataError) as info:
        api.predict(tiny_run, inputs, out)
    assert written, "predict wrote no mask through SimpleITK"
    assert inputs[1].name in str(info.value) and "\n" not in str(info.value)
    assert sorted(os.listdir(out)) == ["notes.txt"]
    assert leftovers(out) == []
