from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from monai_scribble.constants import BACKGROUND, FOREGROUND, IGNORE
from monai_scribble.data.scribbles import image_rng, read_scribble, write_scribble
from monai_scribble.data.strokes import synthesize_strokes


def nuclei(shape=(128, 128), seed=0, count=12) -> np.ndarray:
    """An instance map of ``count`` separate ellipses."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    instances = np.zeros(shape, dtype=np.int32)
    label = 0
    while label < count:
        r, c = rng.integers(12, shape[0] - 12), rng.integers(12, shape[1] - 12)
        a, b, t = rng.uniform(5, 9), rng.uniform(3, 5), rng.uniform(0, np.pi)
        u, v = (rows - r) * np.cos(t) + (cols - c) * np.sin(t), -(rows - r) * np.sin(t) + (cols - c) * np.cos(t)
        ellipse = (u / a) ** 2 + (v / b) ** 2 <= 1
        if (ndimage.binary_dilation(ellipse, iterations=2) & (instances > 0)).any():
            continue
        label += 1
        instances[ellipse] = label
    return instances


@pytest.mark.parametrize("ratio, expected_nuclei", [(0.1, 2), (0.3, 4), (0.5, 6), (1.0, 12)])
def test_strokes_in_a_fraction_of_nuclei_inside_them_and_background_away(ratio, expected_nuclei):
    instances = nuclei()
    scribble = synthesize_strokes(instances, ratio, image_rng(0, "tile"))
    assert scribble.dtype == np.uint8 and set(np.unique(scribble)) <= {BACKGROUND, FOREGROUND, IGNORE}
    assert (scribble == FOREGROUND).any() and (scribble == BACKGROUND).any()
    assert not (instances[scribble == FOREGROUND] == 0).any()  # nucleus strokes stay inside nuclei
    touched = set(np.unique(instances[scribble == FOREGROUND]))
    assert len(touched) == expected_nuclei  # int-rounded as the skeletons: n - int(n (1 - ratio))
    for label in touched:  # one stroke per chosen nucleus: a single 8-connected piece
        assert ndimage.label((scribble == FOREGROUND) & (instances == label), structure=np.ones((3, 3)))[1] == 1
    distance = ndimage.distance_transform_edt(instances == 0)
    assert distance[scribble == BACKGROUND].min() >= 4  # background strokes keep away from nuclei


@pytest.mark.parametrize("width", [(1, 1), (2, 2), (3, 3)])
def test_stroke_width(width):
    scribble = synthesize_strokes(nuclei(), 1.0, image_rng(0, "tile"), width=width)
    for value in (FOREGROUND, BACKGROUND):
        stroke = scribble == value
        square = np.ones((width[1] + 1, width[1] + 1), dtype=bool)
        assert not ndimage.binary_erosion(stroke, square).any()  # nowhere wider than `width` px
        if width[0] > 1:
            assert ndimage.binary_erosion(stroke, np.ones((width[0], width[0]), dtype=bool)).any()  # and that wide somewhere


def test_seeded_and_deterministic():
    instances = nuclei()
    first = synthesize_strokes(instances, 0.3, image_rng(0, "a"))
    assert np.array_equal(first, synthesize_strokes(instances, 0.3, image_rng(0, "a")))
    assert not np.array_equal(first, synthesize_strokes(instances, 0.3, image_rng(1, "a")))
    assert not np.array_equal(first, synthesize_strokes(instances, 0.3, image_rng(0, "b")))


@pytest.mark.parametrize("fmt", ["s2l", "zero_unlabeled"])
def test_both_file_formats_round_trip(tmp_path, fmt):
    scribble = synthesize_strokes(nuclei(), 0.5, image_rng(3, "x"))
    path = write_scribble(tmp_path / "x.png", scribble, fmt)
    assert np.array_equal(read_scribble(path, fmt), scribble)


def test_binary_masks_and_empty_maps():
    mask = nuclei() > 0
    scribble = synthesize_strokes(mask, 1.0, 0)
    assert len(np.unique(ndimage.label(mask)[0][scribble == FOREGROUND])) == 12
    assert (synthesize_strokes(np.zeros((32, 32), np.int32), 0.5, 0) == IGNORE).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"ratio": 0}, r"scribble ratio must be in \(0, 1\], got 0.0"),
    ({"width": (0, 2)}, r"stroke width range must satisfy 1 <= low <= high, got \(0, 2\)"),
])  # fmt: skip
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthesize_strokes(nuclei(), **{"ratio": 0.3, **kwargs})
    with pytest.raises(ValueError, match=r"must be 2-D \(H, W\), got shape \(2, 8, 8\)"):
        synthesize_strokes(np.zeros((2, 8, 8)), 0.3)
