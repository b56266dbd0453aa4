"""Tests of scribble formats, file I/O, class checks and seeded S2L scribble synthesis."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage.draw import disk
from skimage.morphology import skeletonize

from monai_scribble.constants import BACKGROUND, FOREGROUND, IGNORE
from monai_scribble.data.image_io import read_array, write_png
from monai_scribble.errors import DataError
from monai_scribble.data.scribbles import (
    ScribbleFormat,
    _skeleton_segments,
    check_scribble_classes,
    image_rng,
    read_scribble,
    s2l_to_zero_unlabeled,
    scribble_class_counts,
    scribble_file_name,
    synthesize_scribble,
    write_scribble,
    zero_unlabeled_to_s2l,
)

EIGHT = np.ones((3, 3), dtype=bool)


def n_components(binary: np.ndarray) -> int:
    return int(ndimage.label(binary, structure=EIGHT)[1])


def disc_map(shape: tuple[int, int], centers: list[tuple[int, int]], radius: int) -> np.ndarray:
    """Instance map with one disc per centre (ids 1..n)."""
    instance_map = np.zeros(shape, dtype=np.int32)
    for i, centre in enumerate(centers, start=1):
        rr, cc = disk(centre, radius, shape=shape)
        instance_map[rr, cc] = i
    return instance_map


# 9 separate discs on 128x128: 9 fg skeleton components and (checked below) more bg segments than that.
NINE_DISCS = disc_map((128, 128), [(20 + 36 * i, 20 + 36 * j) for i in range(3) for j in range(3)], radius=8)

# One S2L scribble holding every value, and its zero-unlabeled twin.
S2L_ALL = np.array([[BACKGROUND, FOREGROUND, IGNORE], [IGNORE, BACKGROUND, FOREGROUND]], dtype=np.uint8)
ZU_ALL = np.array([[1, 2, 0], [0, 1, 2]], dtype=np.uint8)


# ----------------------------------------------------------------------------------------- converters


@pytest.mark.parametrize(
    "s2l_value, zu_value, meaning",
    [(0, 1, "background"), (1, 2, "foreground"), (250, 0, "unlabeled")],
)
def test_converters_map_each_value(s2l_value: int, zu_value: int, meaning: str) -> None:
    assert s2l_to_zero_unlabeled(np.array([s2l_value]))[0] == zu_value, meaning
    assert zero_unlabeled_to_s2l(np.array([zu_value]))[0] == s2l_value, meaning


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64, np.float32])
def test_converters_round_trip_all_values(dtype: type) -> None:
    zu = s2l_to_zero_unlabeled(S2L_ALL.astype(dtype))
    assert zu.dtype == np.uint8 and zu.shape == S2L_ALL.shape
    np.testing.assert_array_equal(zu, ZU_ALL)
    back = zero_unlabeled_to_s2l(zu.astype(dtype))
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, S2L_ALL)


@pytest.mark.parametrize(
    "convert, values, quoted, fmt_text",
    [
        (s2l_to_zero_unlabeled, [0, 1, 2, 250, 3], "[2, 3]", "'s2l' (expected 0, 1, 250)"),
        (s2l_to_zero_unlabeled, [255, 0], "[255]", "'s2l'"),
        (zero_unlabeled_to_s2l, [0, 1, 2, 250], "[250]", "'zero_unlabeled' (expected 0, 1, 2)"),
        (zero_unlabeled_to_s2l, [-1, 0, 7], "[-1, 7]", "'zero_unlabeled'"),
    ],
)
def test_converters_reject_unknown_values(convert, values: list[int], quoted: str, fmt_text: str) -> None:
    with pytest.raises(ValueError) as info:
        convert(np.array(values))
    assert f"unknown scribble values {quoted}" in str(info.value)
    assert fmt_text in str(info.value)


def test_unknown_value_list_is_truncated() -> None:
    gray = np.arange(256, dtype=np.uint8)  # e.g. a gray image passed by mistake
    with pytest.raises(ValueError, match=r"\(253 distinct values\)"):
        s2l_to_zero_unlabeled(gray)


# -------------------------------------------------------------------------------------- file I/O


@pytest.mark.parametrize(
    "fmt, file_values",
    [
        (ScribbleFormat.S2L, S2L_ALL),
        (ScribbleFormat.ZERO_UNLABELED, ZU_ALL),
        ("s2l", S2L_ALL),
        ("zero_unlabeled", ZU_ALL),
    ],
)
def test_write_read_round_trip(tmp_path, fmt, file_values: np.ndarray) -> None:
    path = write_scribble(tmp_path / "a.png", S2L_ALL, fmt)
    stored = read_array(path)
    assert stored.dtype == np.uint8
    np.testing.assert_array_equal(stored, file_values)  # the file holds the requested convention

    read = read_scribble(path, fmt)
    assert read.dtype == np.uint8 and read.shape == S2L_ALL.shape
    np.testing.assert_array_equal(read, S2L_ALL)  # internal convention after reading

    again = write_scribble(tmp_path / "b.png", read, fmt)
    assert again.read_bytes() == path.read_bytes()
    assert not [p.name for p in tmp_path.iterdir() if p.name not in ("a.png", "b.png")]  # no temp files left


@pytest.mark.parametrize(
    "file_values, fmt, quoted",
    [
        (np.array([[0, 1], [3, 2]], np.uint8), "zero_unlabeled", "[3] for format 'zero_unlabeled' (expected 0, 1, 2)"),
        (S2L_ALL, "zero_unlabeled", "[250] for format 'zero_unlabeled'"),  # an S2L file read as napari: no guessing
        (ZU_ALL, "s2l", "[2] for format 's2l' (expected 0, 1, 250)"),
        (np.array([[0, 1], [255, 250]], np.uint8), "s2l", "[255] for format 's2l'"),
    ],
)
def test_read_rejects_values_of_another_format(tmp_path, file_values: np.ndarray, fmt: str, quoted: str) -> None:
    path = write_png(tmp_path / "s.png", file_values)
    with pytest.raises(DataError) as info:
        read_scribble(path, fmt)
    assert str(info.value).startswith(str(path))
    assert f"unknown scribble values {quoted}" in str(info.value)


@pytest.mark.parametrize(
    "channels, accepted",
    [
        ([ZU_ALL, ZU_ALL, ZU_ALL], True),  # gray saved as RGB
        ([ZU_ALL, ZU_ALL, ZU_ALL, np.full_like(ZU_ALL, 255)], True),  # RGBA, opaque
        ([ZU_ALL, ZU_ALL, np.zeros_like(ZU_ALL)], False),  # a colour scribble
        ([ZU_ALL, ZU_ALL, ZU_ALL, np.array([[255, 0, 255], [255, 255, 255]], np.uint8)], False),  # varying alpha
    ],
)
def test_multichannel_files(tmp_path, channels: list[np.ndarray], accepted: bool) -> None:
    path = tmp_path / "rgb.png"
    Image.fromarray(np.stack(channels, axis=-1)).save(path)
    if accepted:
        np.testing.assert_array_equal(read_scribble(path, ScribbleFormat.ZERO_UNLABELED), S2L_ALL)
    else:
        with pytest.raises(DataError, match="channel") as info:
            read_scribble(path, ScribbleFormat.ZERO_UNLABELED)
        assert str(info.value).startswith(str(path))


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("corrupt.png", b"\x89PNG\r\n\x1a\n this is not a png", "corrupt"),
        ("empty.png", b"", "corrupt"),
        ("missing.png", None, "not found"),
    ],
)
def test_unreadable_file_names_the_file(tmp_path, name: str, content: bytes | None, problem: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=problem) as info:
        read_scribble(path, "s2l")
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize(
    "scribble, fmt, match",
    [
        (np.array([[0, 1], [2, 250]], np.uint8), "s2l", r"unknown scribble values \[2\]"),  # not internal S2L
        (np.zeros((2, 2, 3), np.uint8), "s2l", "2-D"),
        (S2L_ALL, "napari", "unknown scribble format 'napari'"),
    ],
)
def test_write_rejects_bad_input(tmp_path, scribble: np.ndarray, fmt: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        write_scribble(tmp_path / "x.png", scribble, fmt)
    assert not list(tmp_path.iterdir())


def test_read_rejects_unknown_format(tmp_path) -> None:
    path = write_scribble(tmp_path / "a.png", S2L_ALL)
    with pytest.raises(ValueError, match="expected one of 's2l', 'zero_unlabeled'"):
        read_scribble(path, "auto")


# ------------------------------------------------------------------------------------ class checks


@pytest.mark.parametrize(
    "values, counts, missing",
    [
        ([0, 1, 250, 1], (1, 2), None),
        ([0, 0, 250], (2, 0), "no foreground (1) pixel"),
        ([1, 250, 250], (0, 1), "no background (0) pixel"),
        ([250, 250], (0, 0), "no foreground (1) and no background (0) pixel"),
    ],
)
def test_class_counts_and_check(values: list[int], counts: tuple[int, int], missing: str | None) -> None:
    s = np.array(values, dtype=np.uint8)
    assert scribble_class_counts(s) == counts  # (n_background, n_foreground)
    if missing is None:
        check_scribble_classes(s, "ok.png")
    else:
        with pytest.raises(DataError) as info:
            check_scribble_classes(s, "img.png")
        assert str(info.value) == f"img.png: scribble has {missing}"


# --------------------------------------------------------------------------------------- synthesis


def test_nine_disc_fixture_has_enough_background_segments() -> None:
    _, n_fg, _, n_bg = _skeleton_segments(NINE_DISCS > 0)
    assert n_fg == 9
    assert n_bg >= 9  # corner cuts split the background skeleton into more segments than there are nuclei


@pytest.mark.parametrize(
    "ratio, kept",  # kept = n - int(n * (1 - ratio)) with n = 9
    [(0.1, 1), (0.3, 3), (0.5, 5), (1.0, 9)],
)
def test_synthesized_scribble_follows_s2l_method(ratio: float, kept: int) -> None:
    s = synthesize_scribble(NINE_DISCS, ratio, image_rng(0, "nine"))
    mask = NINE_DISCS > 0
    assert s.dtype == np.uint8 and s.shape == NINE_DISCS.shape
    assert set(np.unique(s).tolist()) == {BACKGROUND, FOREGROUND, IGNORE}
    fg, bg = s == FOREGROUND, s == BACKGROUND
    assert not (fg & ~mask).any() and not (bg & mask).any()
    assert not (fg & ~skeletonize(mask)).any()  # foreground scribbles are pieces of the mask skeleton
    assert not (bg & ~skeletonize(~mask)).any()  # background scribbles are pieces of the background skeleton
    assert n_components(fg) == kept
    assert n_components(bg) == kept  # equal counts: there are enough background segments
    check_scribble_classes(s)


def test_background_count_is_capped_by_available_segments() -> None:
    # Full foreground cut by three 1-px background lines: 4 fg stripes, only 3 bg segments.
    stripes = np.ones((64, 64), dtype=np.int32)
    stripes[:, [10, 30, 50]] = 0
    _, n_fg, _, n_bg = _skeleton_segments(stripes > 0)
    assert (n_fg, n_bg) == (4, 3)
    s = synthesize_scribble(stripes, 1.0, np.random.default_rng(0))
    assert n_components(s == FOREGROUND) == 4
    assert n_components(s == BACKGROUND) == 3


def test_kept_components_are_whole_skeleton_components() -> None:
    fg_labels, _, bg_labels, _ = _skeleton_segments(NINE_DISCS > 0)
    s = synthesize_scribble(NINE_DISCS, 0.5, image_rng(3, "whole"))
    for labels, value in ((fg_labels, FOREGROUND), (bg_labels, BACKGROUND)):
        kept = np.unique(labels[s == value])
        np.testing.assert_array_equal(np.isin(labels, kept), s == value)


@pytest.mark.parametrize(
    "instance_map",
    [NINE_DISCS, NINE_DISCS > 0, (NINE_DISCS > 0).astype(np.uint8) * 255],  # ids, bool, 0/255 mask
)
def test_only_foreground_matters(instance_map: np.ndarray) -> None:
    expected = synthesize_scribble(NINE_DISCS, 0.3, image_rng(1, "m"))
    np.testing.assert_array_equal(synthesize_scribble(instance_map, 0.3, image_rng(1, "m")), expected)


def test_seeding_is_deterministic() -> None:
    a = synthesize_scribble(NINE_DISCS, 0.3, image_rng(0, "img"))
    np.testing.assert_array_equal(a, synthesize_scribble(NINE_DISCS, 0.3, image_rng(0, "img")))
    np.testing.assert_array_equal(a, synthesize_scribble(NINE_DISCS, 0.3, image_rng(0, "img")))
    assert not np.array_equal(a, synthesize_scribble(NINE_DISCS, 0.3, image_rng(1, "img")))
    assert not np.array_equal(a, synthesize_scribble(NINE_DISCS, 0.3, image_rng(0, "other")))
    np.testing.assert_array_equal(
        synthesize_scribble(NINE_DISCS, 0.3, 5), synthesize_scribble(NINE_DISCS, 0.3, np.random.default_rng(5))
    )


def test_image_rng_is_independent_of_call_order() -> None:
    ids = ["a", "b", "c", "d"]
    forward = {i: image_rng(7, i).integers(0, 2**31, size=4).tolist() for i in ids}
    backward = {i: image_rng(7, i).integers(0, 2**31, size=4).tolist() for i in reversed(ids)}
    assert forward == backward
    assert len({tuple(v) for v in forward.values()}) == len(ids)


@pytest.mark.parametrize(
    "seed, image_id, raw",
    [
        (0, "TCGA-18-5592-01Z-00-DX1", [12601327370139929225, 11453919472071864621]),
        (1, "TCGA-18-5592-01Z-00-DX1", [11065862686239891703, 6522077415962401482]),
    ],
)
def test_image_rng_is_stable_across_processes(seed: int, image_id: str, raw: list[int]) -> None:
    # Golden PCG64 output: would fail under Python's per-process hash randomisation.
    assert image_rng(seed, image_id).bit_generator.random_raw(2).tolist() == raw


@pytest.mark.parametrize("seed", [1.0, "0", True, None])
def test_image_rng_rejects_non_int_seed(seed) -> None:
    with pytest.raises(TypeError):
        image_rng(seed, "a")


@pytest.mark.parametrize(
    "instance_map, ratio, match",
    [
        (NINE_DISCS, 0.0, r"ratio must be in \(0, 1\]"),
        (NINE_DISCS, 1.5, r"ratio must be in \(0, 1\]"),
        (NINE_DISCS, -0.3, r"ratio must be in \(0, 1\]"),
        (NINE_DISCS, float("nan"), r"ratio must be in \(0, 1\]"),
        (NINE_DISCS[None], 0.3, "2-D"),
        (NINE_DISCS[0], 0.3, "2-D"),
    ],
)
def test_synthesize_rejects_bad_arguments(instance_map: np.ndarray, ratio: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        synthesize_scribble(instance_map, ratio, np.random.default_rng(0))


def test_all_background_map_gives_no_foreground() -> None:
    s = synthesize_scribble(np.zeros((64, 64), np.int32), 0.3, image_rng(0, "empty"))
    assert scribble_class_counts(s)[1] == 0
    with pytest.raises(DataError, match=r"no foreground \(1\)"):
        check_scribble_classes(s, "empty.png")


@pytest.mark.parametrize("image_id, name", [("img_01", "img_01.png"), ("TCGA-A7-A13E-01Z", "TCGA-A7-A13E-01Z.png")])
def test_scribble_file_name(image_id: str, name: str) -> None:
    assert scribble_file_name(image_id) == name


@pytest.mark.parametrize("image_id", ["", "a/b", "..\\x"])
def test_scribble_file_name_rejects_paths(image_id: str) -> None:
    with pytest.raises(ValueError):
        scribble_file_name(image_id)
