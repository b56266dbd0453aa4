"""Tests of monai_scribble.data.transforms: loading, valid-mask handling, joint augmentation, seeding."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor
from monai.utils import set_determinism
from monai.transforms import RandAffined
from PIL import Image

from monai_scribble.constants import BACKGROUND, FOREGROUND, IGNORE
from monai_scribble.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AddValidMaskd,
    CropToMultipled,
    LoadScribbleSampled,
    MaskInvalidd,
    RandBrightnessContrastd,
    RandColorJitterd,
    eval_transforms,
    train_transforms,
)
from monai_scribble.errors import DataError

H, W = 24, 20


def _scribble(h: int = H, w: int = W) -> np.ndarray:
    s = np.full((h, w), IGNORE, np.uint8)
    s[2, 2:10] = BACKGROUND
    s[10, 3:8] = FOREGROUND
    return s


def _write(path, array) -> str:
    Image.fromarray(array).save(path)
    return str(path)


def _static(**kw):
    """Training pipeline with every random transform off unless enabled in ``kw``."""
    args = dict(affine_prob=0.0, flip_prob=0.0, intensity=None, normalize=False)
    args.update(kw)
    return train_transforms(**args)


# ---------------------------------------------------------------------------------------------- loading
_rng = np.random.default_rng(0)
_GRAY = _rng.integers(0, 256, (H, W), dtype=np.uint8)
_RGB = _rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
_RGBA = np.concatenate([_RGB, np.full((H, W, 1), 255, np.uint8)], axis=-1)
_G16 = _rng.integers(0, 65536, (H, W), dtype=np.uint16)
_G16[0, 0] = 65535

LOAD_CASES = [
    # (name, array written, expected RGB float (H, W, 3))
    ("gray8", _GRAY, np.repeat(_GRAY[..., None] / 255.0, 3, -1)),
    ("rgb8", _RGB, _RGB / 255.0),
    ("rgba8 (alpha dropped)", _RGBA, _RGB / 255.0),
    ("gray16 (/65535)", _G16, np.repeat(_G16[..., None] / 65535.0, 3, -1)),
]


@pytest.mark.parametrize("name,array,expected", LOAD_CASES, ids=[c[0] for c in LOAD_CASES])
def test_load_files_shapes_dtypes_values(tmp_path, name, array, expected):
    label = np.zeros((H, W), np.uint16)
    label[5:9, 5:9] = 300  # id > 255 must survive
    paths = {
        "image": _write(tmp_path / "img.png", array),
        "scribble": _write(tmp_path / "scr.png", _scribble()),
        "label": _write(tmp_path / "lab.png", label),
    }
    out = LoadScribbleSampled()(dict(paths, id="x"))
    img, scr, lab = out["image"], out["scribble"], out["label"]
    assert isinstance(img, MetaTensor) and img.dtype == torch.float32 and img.shape == (3, H, W)
    np.testing.assert_allclose(img.numpy(), expected.transpose(2, 0, 1), atol=1e-6)
    assert scr.shape == (1, H, W) and scr.dtype == torch.uint8
    np.testing.assert_array_equal(scr[0].numpy(), _scribble())
    assert lab.shape == (1, H, W) and lab.dtype == torch.int32 and set(torch.unique(lab).tolist()) == {0, 300}
    for key in ("image", "scribble", "label"):
        assert out[key].meta["filename_or_obj"] == paths[key]
    assert out["id"] == "x"


def test_load_zero_unlabeled_format_is_explicit(tmp_path):
    zu = np.zeros((H, W), np.uint8)  # 0 unlabeled
    zu[1, :] = 1  # background
    zu[2, :] = 2  # foreground
    data = {"image": _write(tmp_path / "i.png", _RGB), "scribble": _write(tmp_path / "s.png", zu)}
    out = LoadScribbleSampled(scribble_format="zero_unlabeled")(data)
    s = out["scribble"][0].numpy()
    assert (s[1] == BACKGROUND).all() and (s[2] == FOREGROUND).all() and (s[3:] == IGNORE).all()
    with pytest.raises(DataError, match="s.png"):  # value 2 is not an S2L value
        LoadScribbleSampled(scribble_format="s2l")(data)


@pytest.mark.parametrize("key", ["scribble", "label"])
def test_shape_mismatch_names_both_files_and_shapes(tmp_path, key):
    data = {"image": _write(tmp_path / "the_image.png", _RGB)}
    wrong = np.zeros((H + 1, W), np.uint8)
    data[key] = _write(tmp_path / f"the_{key}.png", wrong)
    with pytest.raises(DataError) as err:
        LoadScribbleSampled()(data)
    msg = str(err.value)
    assert "the_image.png" in msg and f"the_{key}.png" in msg
    assert str((H, W)) in msg and str((H + 1, W)) in msg


def test_in_memory_passthrough_copies_and_checks():
    img = torch.rand(3, H, W)
    keep = img.clone()
    data = {"image": img, "scribble": _scribble(), "label": np.ones((1, H, W), np.int64)}
    out = eval_transforms()(data)  # NormalizeIntensity works in place: the source must not change
    assert torch.equal(img, keep)
    assert out["image"].shape == (3, H, W) and out["scribble"].dtype == torch.int64
    assert out["label"].shape == (1, H, W) and out["label"].dtype == torch.int32
    hwc = LoadScribbleSampled(("image",))({"image": _RGB})["image"]  # (H, W, 3) uint8 → /255
    np.testing.assert_allclose(hwc.numpy(), _RGB.transpose(2, 0, 1) / 255.0, atol=1e-6)
    bad = _scribble()
    bad[0, 0] = 7
    with pytest.raises(DataError, match=r"unknown scribble values \[7\]"):
        LoadScribbleSampled()({"image": img, "scribble": bad})


def test_missing_optional_keys_and_bad_arguments():
    out = eval_transforms()({"image": torch.rand(3, H, W)})
    assert set(out) == {"image"}
    with pytest.raises(ValueError, match="intensity"):
        train_transforms(intensity="sepia")
    with pytest.raises(ValueError, match="keys"):
        LoadScribbleSampled(keys=())


# ---------------------------------------------------------------------------------------------- padding
@pytest.mark.parametrize("size", [(40, 30), (64, 20), (100, 50)])
def test_small_image_is_padded_with_unlabeled_never_background(size):
    crop = 64
    h, w = size
    data = {"image": torch.rand(3, h, w), "scribble": np.zeros((h, w), np.uint8)}  # all background
    out = _static(crop_size=crop)(data)
    s, valid = out["scribble"][0], out["valid"][0]
    assert out["image"].shape == (3, crop, crop) and s.shape == (crop, crop)
    assert int(valid.sum()) == min(h, crop) * min(w, crop)  # only real pixels are valid
    assert bool((s[valid == 0] == IGNORE).all()) and bool((s[valid == 1] == BACKGROUND).all())
    assert s.dtype == torch.int64


def test_mask_invalidd_and_add_valid_maskd_directly():
    d = AddValidMaskd()({"image": torch.rand(3, 4, 5), "scribble": torch.zeros(1, 4, 5)})
    assert d["valid"].shape == (1, 4, 5) and d["valid"].dtype == torch.float32 and bool((d["valid"] == 1).all())
    d["valid"][0, 0, :] = 0
    out = MaskInvalidd()(d)
    assert out["scribble"].dtype == torch.int64
    assert (out["scribble"][0, 0] == IGNORE).all() and (out["scribble"][0, 1:] == BACKGROUND).all()
    with pytest.raises(KeyError, match="valid"):
        MaskInvalidd(valid_key="nope")(d)


# ---------------------------------------------------------------------------------------------- random pipeline
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("size", [(80, 80), (50, 70)])
def test_all_background_scribble_never_gains_foreground(seed, size):
    """Whatever the augmentation, in-image pixels stay 0 and every invalid pixel is 250."""
    h, w = size
    t = train_transforms(crop_size=64, affine_prob=1.0, intensity="color_jitter")
    t.set_random_state(seed)
    out = t({"image": torch.rand(3, h, w), "scribble": np.zeros((h, w), np.uint8)})
    s, valid = out["scribble"][0], out["valid"][0]
    assert set(torch.unique(s).tolist()) <= {BACKGROUND, IGNORE}
    assert bool((s[valid == 0] == IGNORE).all()) and bool((s[valid == 1] == BACKGROUND).all())
    assert set(torch.unique(valid).tolist()) <= {0.0, 1.0}
    if h < 64 or w < 64:
        assert bool((valid == 0).any())  # the padded strip is there, and unlabeled


def test_rotation_keeps_scribble_integer_valued():
    yy, xx = np.mgrid[:96, :96]
    checker = ((yy // 3 + xx // 3) % 2).astype(np.uint8)  # 0/1 checkerboard
    checker[40:50] = IGNORE
    t = train_transforms(crop_size=64, affine_prob=1.0, intensity=None)
    seen: set[int] = set()
    for seed in range(4):
        t.set_random_state(seed)
        out = t({"image": torch.rand(3, 96, 96), "scribble": checker})
        assert out["scribble"].dtype == torch.int64
        seen |= set(torch.unique(out["scribble"]).tolist())
    assert seen == {BACKGROUND, FOREGROUND, IGNORE}


@pytest.mark.parametrize("isotropic", [True, False])
def test_affine_parameters_follow_shift_scale_rotate(isotropic):
    t = train_transforms(crop_size=64, affine_prob=1.0, isotropic_scale=isotropic)
    affine = next(x for x in t.transforms if isinstance(x, RandAffined))  # RandIsotropicAffined with isotropic_scale
    grid = affine.rand_affine.rand_affine_grid
    assert affine.mode == ("bilinear", "nearest", "nearest", "nearest")  # image, scribble, label, valid
    assert affine.padding_mode == ("reflection", "zeros", "zeros", "zeros")
    zooms, anisotropic = [], False
    for seed in range(20):
        t.set_random_state(seed)
        t({"image": torch.rand(3, 64, 64), "scribble": _scribble(64, 64)})
        sx, sy = grid.scale_params
        zooms += [sx, sy]
        anisotropic |= sx != sy
        assert abs(grid.rotate_params[0]) <= np.pi / 4 and all(abs(v) <= 4.0 for v in grid.translate_params)
    assert 0.9 <= min(zooms) and max(zooms) <= 1.1
    assert anisotropic is not isotropic


def test_label_ids_survive_affine_unchanged():
    label = np.zeros((96, 96), np.int32)
    ids = [3, 17, 300, 70000]
    for i, k in enumerate(ids):
        label[10 + 20 * i : 25 + 20 * i, 20:70] = k
    t = train_transforms(crop_size=64, affine_prob=1.0)
    for seed in range(4):
        t.set_random_state(seed)
        out = t({"image": torch.rand(3, 96, 96), "scribble": _scribble(96, 96), "label": label})
        assert out["label"].dtype == torch.int32
        assert set(torch.unique(out["label"]).tolist()) <= {0, *ids}


def test_same_seed_identical_different_seed_differs():
    data = {"image": torch.rand(3, 90, 90), "scribble": _scribble(90, 90), "label": np.arange(8100).reshape(90, 90)}
    t = train_transforms(crop_size=64, affine_prob=1.0, intensity="brightness_contrast", intensity_prob=1.0)
    outs = []
    for seed in (5, 5, 6):
        t.set_random_state(seed)
        outs.append(t(dict(data)))
    for key in ("image", "scribble", "label", "valid"):
        assert torch.equal(outs[0][key], outs[1][key]), key
    assert not torch.equal(outs[0]["image"], outs[2]["image"])


def test_set_determinism_seeds_monai_dataloader():
    data = [{"image": torch.rand(3, 70, 70), "scribble": _scribble(70, 70)} for _ in range(2)]
    t = train_transforms(crop_size=32, affine_prob=1.0, intensity="color_jitter", intensity_prob=1.0)

    def batch():
        set_determinism(seed=123)
        return next(iter(DataLoader(Dataset(data, t), batch_size=2, num_workers=0)))

    try:
        a, b = batch(), batch()
    finally:
        set_determinism(None)
    assert a["image"].shape == (2, 3, 32, 32) and torch.equal(a["image"], b["image"])
    assert torch.equal(a["scribble"], b["scribble"])


def _blocky(n: int, seed: int = 0) -> np.ndarray:
    """Random 8x8-block gray image in {0.2, 0.8}, (n, n)."""
    blocks = np.random.default_rng(seed).random((n // 8, n // 8)) > 0.5
    return np.kron(blocks, np.ones((8, 8))).astype(np.float32) * 0.6 + 0.2


@pytest.mark.parametrize("seed", range(4))
def test_flips_keep_image_and_scribble_aligned_exactly(seed):
    gray = _blocky(64, seed)
    t = _static(crop_size=48, flip_prob=0.5)
    t.set_random_state(seed)
    out = t({"image": np.repeat(gray[None], 3, 0), "scribble": (gray > 0.5).astype(np.uint8)})
    assert torch.equal(out["scribble"][0], (out["image"][0] > 0.5).long())


@pytest.mark.parametrize("seed", range(4))
def test_affine_keeps_image_scribble_and_extra_mask_aligned(seed):
    gray = _blocky(96, seed)
    fg = (gray > 0.5).astype(np.uint8)
    ema = MetaTensor(torch.from_numpy(np.where(fg == 1, 0.9, 0.1).astype(np.float32))[None])
    t = train_transforms(
        crop_size=64, affine_prob=1.0, normalize=False, intensity=None, extra_mask_keys=("ema",),
        pre_augment=[lambda d: {**d, "ema": ema}],
    )
    t.set_random_state(seed)
    out = t({"image": np.repeat(gray[None], 3, 0), "scribble": fg})
    valid = out["valid"][0] == 1
    s, e = out["scribble"][0], out["ema"][0]
    assert bool((e[~valid] == 0.5).all())  # outside the image: an unconfident EMA value
    assert set(torch.unique(e[valid]).tolist()) <= set(torch.tensor([0.1, 0.9]).tolist())  # nearest: no blending
    assert torch.equal(s[valid] == FOREGROUND, e[valid] > 0.5)  # nearest maps move together
    agree = ((out["image"][0] > 0.5) == (s == FOREGROUND))[valid].float().mean()
    assert agree > 0.9  # bilinear vs nearest only differ at block borders


# ---------------------------------------------------------------------------------------------- intensity
def test_normalized_channel_stats():
    color = np.array([0.2, 0.5, 0.9], np.float32)
    img = np.broadcast_to(color[:, None, None], (3, H, W)).copy()
    out = eval_transforms(("image",))({"image": img})["image"]
    expected = (color - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(out.mean(dim=(1, 2)).numpy(), expected, rtol=1e-5)
    assert float(out.std(dim=(1, 2)).max()) < 1e-6
    rnd = train_transforms(crop_size=64, intensity=None)({"image": torch.rand(3, 64, 64)})["image"]
    expected = (0.5 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)  # uniform [0, 1] input
    np.testing.assert_allclose(rnd.mean(dim=(1, 2)).numpy(), expected, atol=0.1)


def test_brightness_contrast_is_one_affine_map_within_limits():
    x = torch.linspace(0.3, 0.7, 3 * 16 * 16).reshape(3, 16, 16)
    t = RandBrightnessContrastd("image", brightness=0.2, contrast=0.2, prob=1.0)
    for seed in range(5):
        t.set_random_state(seed)
        y = t({"image": x})["image"]
        a, b = np.polyfit(x.flatten().numpy(), y.flatten().numpy(), 1)
        assert 0.8 - 1e-4 <= a <= 1.2 + 1e-4 and -0.2 - 1e-4 <= b <= 0.2 + 1e-4
        np.testing.assert_allclose(y.numpy(), a * x.numpy() + b, atol=1e-5)
    clipped = RandBrightnessContrastd("image", prob=1.0)({"image": torch.ones(3, 4, 4)})["image"]
    assert float(clipped.max()) <= 1.0
    assert torch.equal(RandBrightnessContrastd("image", prob=0.0)({"image": x})["image"], x)


def test_hue_jitter_matches_colorsys():
    rgb = torch.rand(3, 8, 8)
    rgb[:, 0, 0] = 0.5  # gray pixel: hue 0, saturation 0, unchanged by a hue shift
    hue_only = RandColorJitterd("image", brightness=0, contrast=0, saturation=0, hue=0.2, prob=1.0)
    hue_only.set_random_state(3)
    out = hue_only({"image": rgb})["image"]
    shift = hue_only._factors[3]
    assert 0 < abs(shift) <= 0.2
    expected = []
    for i in range(8):
        for j in range(8):
            h, s, v = colorsys.rgb_to_hsv(*rgb[:, i, j].tolist())
            expected.append(colorsys.hsv_to_rgb((h + shift) % 1.0, s, v))
    np.testing.assert_allclose(out.reshape(3, -1).T.numpy(), np.array(expected), atol=1e-5)
    assert out.dtype == rgb.dtype


def test_color_jitter_ranges_and_hue_only_keeps_value_channel():
    img = MetaTensor(torch.rand(3, 16, 16), meta={"filename_or_obj": "a.png"})
    hue_only = RandColorJitterd("image", brightness=0, contrast=0, saturation=0, hue=0.2, prob=1.0)
    hue_only.set_random_state(1)
    out = hue_only({"image": img})["image"]
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "a.png"
    assert not torch.allclose(out, img)
    torch.testing.assert_close(out.max(dim=0).values, img.max(dim=0).values)  # V is unchanged
    full = RandColorJitterd("image", prob=1.0)
    for seed in range(3):
        full.set_random_state(seed)
        y = full({"image": img})["image"]
        assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0
    with pytest.raises(ValueError, match="RGB"):
        RandColorJitterd("image", prob=1.0)({"image": torch.rand(1, 4, 4)})


def test_crop_to_multiple_is_top_left():
    img = torch.arange(3 * 70 * 100, dtype=torch.float32).reshape(3, 70, 100)
    out = CropToMultipled(("image", "scribble"), k=32)({"image": img, "scribble": torch.zeros(1, 70, 100)})
    assert out["image"].shape == (3, 64, 96) and out["scribble"].shape == (1, 64, 96)
    assert torch.equal(out["image"], img[:, :64, :96])
    out = eval_transforms(crop_multiple=32, normalize=False)({"image": img / img.max(), "label": np.ones((70, 100))})
    assert out["image"].shape == (3, 64, 96) and out["label"].shape == (1, 64, 96)
    with pytest.raises(ValueError, match="multiple"):
        CropToMultipled("image", k=128)({"image": img})


@pytest.mark.parametrize("item, label_kind, expected", [
    ({"image": "/d/a.png", "label": "/d/l/a.png"}, "scribble_zero_unlabeled", {"id": "a", "image": "/d/a.png", "scribble": "/d/l/a.png"}),
    ({"id": "x", "image": "/d/a.png", "label": "/d/l/a.png"}, "scribble_zero_unlabeled", {"id": "x", "image": "/d/a.png", "scribble": "/d/l/a.png"}),
    ({"id": "a", "image": "i", "scribble": "s", "label": "l"}, "scribble", {"id": "a", "image": "i", "scribble": "s", "label": "l"}),
])  # fmt: skip
def test_scribble_item_from_monailabel_datalist(item, label_kind, expected):
    from monai_scribble.data.transforms import ScribbleItemd

    assert ScribbleItemd(label_kind)(item) == expected


@pytest.mark.parametrize("item, label_kind, message", [
    ({"image": "a.png"}, "scribble_zero_unlabeled", "needs items with 'image' and 'label'"),
    ({"image": "a.png", "label": "b.png"}, "masks", "unknown label_kind 'masks'"),
])  # fmt: skip
def test_scribble_item_errors(item, label_kind, message):
    from monai_scribble.data.datalist import as_scribble_item

    with pytest.raises(ValueError, match=message):
        as_scribble_item(item, label_kind)
