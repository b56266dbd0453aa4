from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_scribble.data.dsb2018 import merge_instance_masks, read_dsb2018
from monai_scribble.data.image_io import read_instance_label
from monai_scribble.errors import DataError


def make_image_dir(stage: Path, image_id: str, masks: list[np.ndarray], shape=(32, 40), mode: str = "RGBA") -> Path:
    folder = stage / image_id
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rng = np.random.default_rng(len(image_id))
    channels = {"RGBA": 4, "RGB": 3, "L": 1}[mode]
    pixels = rng.integers(0, 255, size=(*shape, channels), dtype=np.uint8)
    if mode == "RGBA":
        pixels[..., 3] = 255
    Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode=mode).save(folder / "images" / f"{image_id}.png")
    for index, mask in enumerate(masks):
        Image.fromarray((mask > 0).astype(np.uint8) * 255).save(folder / "masks" / f"m{index:03d}.png")
    return folder


def box(shape, y0, y1, x0, x1) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


@pytest.mark.parametrize(
    "boxes, expected_ids_at, expected_overlap",
    [
        # disjoint masks keep their sorted-file order ids
        ([(0, 4, 0, 4), (10, 14, 10, 14)], {(1, 1): 1, (12, 12): 2}, 0),
        # a small mask inside a big one wins its pixels
        ([(0, 20, 0, 20), (5, 8, 5, 8)], {(1, 1): 1, (6, 6): 2}, 9),
        # equal areas: the mask that sorts first keeps the shared pixels
        ([(0, 4, 0, 4), (2, 6, 2, 6)], {(3, 3): 1, (5, 5): 2}, 4),
    ],
)
def test_merge_instance_masks_overlap_rule(boxes, expected_ids_at, expected_overlap):
    shape = (24, 24)
    instance_map, overlap = merge_instance_masks([box(shape, *b) for b in boxes], shape)
    assert instance_map.dtype == np.int32
    assert overlap == expected_overlap
    for (y, x), value in expected_ids_at.items():
        assert instance_map[y, x] == value
    assert set(np.unique(instance_map)) == {0, *range(1, len(boxes) + 1)}


@pytest.mark.parametrize("mode", ["RGBA", "RGB", "L"])
def test_read_and_cache(tmp_path, mode):
    stage = tmp_path / "stage1_train"
    shape = (32, 40)
    make_image_dir(stage, "a", [box(shape, 0, 5, 0, 5), box(shape, 10, 20, 10, 30)], shape, mode)
    make_image_dir(stage, "b", [box(shape, 3, 9, 3, 9)], shape, mode)
    infos = read_dsb2018(stage, cache_dir=tmp_path / "cache")
    assert [i.sample.id for i in infos] == ["a", "b"]
    assert [i.num_masks for i in infos] == [2, 1]
    label = read_instance_label(infos[0].sample.label)
    assert label.shape == shape and set(np.unique(label)) == {0, 1, 2}
    assert all(0.0 <= v <= 1.0 for v in infos[0].mean_hsv)
    assert not str(infos[0].sample.label).startswith(str(stage))  # the source stays read-only

    mtime = Path(infos[0].sample.label).stat().st_mtime_ns
    again = read_dsb2018(stage, cache_dir=tmp_path / "cache")
    assert again == infos
    assert Path(again[0].sample.label).stat().st_mtime_ns == mtime  # cached, not rewritten

    # a new mask file invalidates that image's cache entry only
    Image.fromarray(box(shape, 25, 30, 0, 5) * 255).save(stage / "a" / "masks" / "m999.png")
    updated = read_dsb2018(stage, cache_dir=tmp_path / "cache")
    assert updated[0].num_masks == 3 and updated[1] == infos[1]


def test_ids_above_255_are_kept(tmp_path):
    shape = (20, 20)
    masks = [np.zeros(shape, np.uint8) for _ in range(300)]
    for k, mask in enumerate(masks):
        mask.flat[k] = 1
    instance_map, _ = merge_instance_masks(masks, shape)
    assert instance_map.max() == 300 and len(np.unique(instance_map)) == 301


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("no_stage", "DSB 2018 directory not found"),
        ("empty_stage", "no image folders found"),
        ("no_image", "image file not found"),
        ("no_masks_dir", "mask directory not found"),
        ("empty_masks", "image has no mask files"),
        ("mask_size", "mask size (10, 10) differs from image size (32, 40)"),
        ("corrupt_mask", "unreadable or corrupt image"),
        ("corrupt_image", "unreadable or corrupt image"),
    ],
)
def test_bad_input_names_file(tmp_path, breakage, message):
    stage = tmp_path / "stage1_train"
    shape = (32, 40)
    if breakage != "no_stage":
        stage.mkdir()
    if breakage not in ("no_stage", "empty_stage"):
        folder = make_image_dir(stage, "img1", [box(shape, 0, 5, 0, 5)], shape)
        mask = folder / "masks" / "m000.png"
        if breakage == "no_image":
            (folder / "images" / "img1.png").unlink()
        elif breakage == "no_masks_dir":
            mask.unlink()
            (folder / "masks").rmdir()
        elif breakage == "empty_masks":
            mask.unlink()
        elif breakage == "mask_size":
            Image.fromarray(np.zeros((10, 10), np.uint8)).save(mask)
        elif breakage == "corrupt_mask":
            mask.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
        elif breakage == "corrupt_image":
            (folder / "images" / "img1.png").write_bytes(b"garbage")
    with pytest.raises(DataError) as err:
        read_dsb2018(stage, cache_dir=tmp_path / "cache")
    assert message in str(err.value)
    assert str(stage) in err.value.path
    assert not list((tmp_path / "cache").rglob("*.png")) if (tmp_path / "cache").exists() else True


@pytest.mark.real_data
def test_real_dsb_all_images_and_modalities(dsb_stage_dir):
    from monai_scribble.data.splits import cluster_modalities

    infos = read_dsb2018(dsb_stage_dir)  # default cache: converted once per machine
    assert len(infos) == 670
    assert sum(i.num_masks for i in infos) == 29461
    for info in infos[:20]:
        label = read_instance_label(info.sample.label)
        assert label.shape == info.shape and label.max() == info.num_masks
    features = np.array([i.mean_hsv for i in infos])
    for seed in (0, 1):
        names = cluster_modalities(features, seed=seed)
        counts = {m: names.count(m) for m in set(names)}
        assert counts == {"brightfield": 16, "fluorescence": 546, "histology": 108}
    sidecar = json.loads(Path(infos[0].sample.label).with_suffix(".json").read_text())
    assert sidecar["num_masks"] == infos[0].num_masks
