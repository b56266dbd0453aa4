from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from monai_scribble.data.folder import is_annotated, read_folder
from monai_scribble.errors import DataError


def write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def folder(tmp_path):
    image = np.zeros((16, 16, 3), np.uint8)
    scribble = np.full((16, 16), 250, np.uint8)
    for stem in ("a", "b", "c"):
        write(tmp_path / "images" / f"{stem}.png", image)
    write(tmp_path / "scribbles" / "a.png", scribble)
    write(tmp_path / "scribbles" / "b.png", scribble)
    write(tmp_path / "labels" / "b.tif", np.zeros((16, 16), np.uint16))
    write(tmp_path / "labels" / "c.png", np.zeros((16, 16), np.uint16))
    return tmp_path


def test_match_by_stem(folder):
    samples = {s.id: s for s in read_folder(folder)}
    assert sorted(samples) == ["a", "b", "c"]
    assert samples["a"].scribble.endswith("scribbles/a.png") and samples["a"].label is None
    assert samples["b"].label.endswith("labels/b.tif") and samples["b"].scribble.endswith("b.png")
    assert samples["c"].scribble is None and samples["c"].label.endswith("c.png")  # scribble synthesised later


def test_unannotated_images_and_orphans_are_reported(folder, caplog):
    write(folder / "images" / "d.png", np.zeros((16, 16, 3), np.uint8))
    write(folder / "scribbles" / "zz.png", np.zeros((16, 16), np.uint8))
    with caplog.at_level(logging.WARNING):
        samples = {s.id: s for s in read_folder(folder)}
    assert sorted(samples) == ["a", "b", "c", "d"]
    assert [i for i, s in samples.items() if not is_annotated(s)] == ["d"]
    assert samples["d"].scribble is None and samples["d"].label is None
    assert "without scribble or label are not trained on (listed as unscribbled, ranked in scribble_next.csv): ['d']" in caplog.text
    assert "scribble file(s) without an image are ignored: ['zz']" in caplog.text


@pytest.mark.parametrize(
    "layout, message",
    [
        ("missing_root", "dataset directory not found"),
        ("no_images_dir", "images directory not found"),
        ("empty_images", "no image files found"),
        ("no_scribbles_or_labels", "neither scribbles/ nor labels/ found"),
        ("duplicate_stem", "two files share the stem 'a'"),
        ("nothing_matches", "no image has a scribble"),
    ],
)
def test_bad_layouts(tmp_path, layout, message):
    root = tmp_path / "data"
    if layout != "missing_root":
        root.mkdir()
    if layout in ("empty_images", "no_scribbles_or_labels", "duplicate_stem", "nothing_matches"):
        (root / "images").mkdir()
    if layout in ("no_scribbles_or_labels", "duplicate_stem", "nothing_matches"):
        write(root / "images" / "a.png", np.zeros((4, 4), np.uint8))
    if layout == "duplicate_stem":
        write(root / "images" / "a.tif", np.zeros((4, 4), np.uint8))
        (root / "scribbles").mkdir()
    if layout == "nothing_matches":
        write(root / "scribbles" / "b.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match=message) as err:
        read_folder(root)
    assert str(root) in str(err.value)
