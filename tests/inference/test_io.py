"""Inference inputs (readable images of a folder) and outputs (uint16 label files, overlays)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from monai_scribble.data.image_io import read_array, write_label
from monai_scribble.errors import DataError
from monai_scribble.inference.io import SaveInstancesd, list_input_images


@pytest.mark.parametrize("suffix", [".tif", ".png", ".nii.gz"])
def test_label_round_trip(tmp_path, suffix):
    labels = np.zeros((30, 20), np.int64)
    labels[2:9, 3:15] = 1
    labels[20:28, 1:4] = 300  # > 255: needs 16 bits
    path = write_label(tmp_path / f"x{suffix}", labels)
    back = read_array(path)
    assert back.dtype == np.uint16 and back.shape == (30, 20)
    np.testing.assert_array_equal(back, labels)


@pytest.mark.parametrize("labels, message", [(np.zeros((2, 2, 2)), "expected a \\(H, W\\)"), (np.full((2, 2), 70000), "do not fit uint16")])
def test_label_errors(tmp_path, labels, message):
    with pytest.raises(ValueError, match=message):
        write_label(tmp_path / "x.tif", labels)


def test_corrupt_files_are_reported_and_skipped(tmp_path, caplog):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "b.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.jpg")
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    (tmp_path / "notes.txt").write_text("ignored")
    with caplog.at_level(logging.ERROR):
        items = list_input_images(tmp_path)
    assert [item["id"] for item in items] == ["a", "b"]
    assert "broken.tif" in caplog.text and "unreadable or corrupt" in caplog.text


@pytest.mark.parametrize("setup, message", [("missing", "input folder not found"), ("empty", "no image files"), ("dup", "share the stems \\['a'\\]")])
def test_input_folder_errors(tmp_path, setup, message):
    folder = tmp_path / "in"
    if setup != "missing":
        folder.mkdir()
    if setup == "dup":
        for name in ("a.png", "a.tif"):
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / name)
    with pytest.raises(DataError, match=message):
        list_input_images(folder)


def test_save_instances_writes_label_and_overlay(tmp_path):
    source = tmp_path / "cell.png"
    Image.fromarray(np.full((12, 10, 3), 100, np.uint8)).save(source)
    pred = torch.zeros(1, 12, 10, dtype=torch.int32)
    pred[0, 2:6, 2:6] = 1
    image = MetaTensor(torch.zeros(3, 12, 10), meta={"filename_or_obj": str(source)})
    SaveInstancesd("pred", tmp_path / "out")({"pred": pred, "image": image})
    np.testing.assert_array_equal(read_array(tmp_path / "out" / "cell_label.tif"), pred[0].numpy())
    overlay = read_array(tmp_path / "out" / "cell_overlay.png")
    assert overlay.shape == (12, 10, 3)
    assert tuple(overlay[2, 2]) == (255, 255, 0) and tuple(overlay[4, 4]) == (100, 100, 100)  # contour only


def folder_pair(tmp_path, case: str) -> tuple[str, str]:
    """(input_dir, output_dir) spelled as a user might; ``tmp_path/in`` holds one image."""
    source = tmp_path / "in"
    source.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(source / "a.png")
    if case == "symlink-to-input":
        (tmp_path / "link").symlink_to(source, target_is_directory=True)
    pairs = {
        "same": (source, source),
        "trailing-slash": (source, f"{source}/"),
        "dot-dot": (source, tmp_path / "in" / ".." / "in"),
        "relative": (source, "in"),  # resolved against the working directory (tmp_path in the test)
        "symlink-to-input": (source, tmp_path / "link"),
        "output-inside-input": (source, source / "results"),
        "input-inside-output": (source, tmp_path),
        "sibling": (source, tmp_path / "out"),
    }
    return tuple(map(str, pairs[case]))


@pytest.mark.parametrize(
    "case, refused",
    [("same", True), ("trailing-slash", True), ("dot-dot", True), ("relative", True), ("symlink-to-input", True),
     ("output-inside-input", False), ("input-inside-output", False), ("sibling", False)],  # fmt: skip
)
def test_output_folder_must_not_be_the_input_folder(tmp_path, monkeypatch, case, refused):
    monkeypatch.chdir(tmp_path)
    input_dir, output_dir = folder_pair(tmp_path, case)
    if not refused:  # listed non-recursively, outputs written to the output folder itself: no clash
        assert [item["id"] for item in list_input_images(input_dir, output_dir)] == ["a"]
        return
    with pytest.raises(DataError) as err:
        list_input_images(input_dir, output_dir)
    message = str(err.value)
    assert message.startswith(f"{output_dir}: --output_dir is the same folder as --input_dir {input_dir}") and "\n" not in message
    assert "would overwrite inputs of those names" in message and message.endswith("pass another --output_dir")
    assert (f"(both are {(tmp_path / 'in').resolve()})" in message) == (case != "same")
