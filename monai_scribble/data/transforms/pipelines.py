"""The training and evaluation pipelines of docs/method.md#data-pipeline, built from MONAI transforms."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from monai.transforms import (
    CastToTyped,
    Compose,
    EnsureTyped,
    NormalizeIntensityd,
    RandAffined,
    RandFlipd,
    RandSpatialCropd,
    SpatialPadd,
)

from monai_scribble.constants import IGNORE
from monai_scribble.data.transforms.intensity import RandBrightnessContrastd, RandColorJitterd
from monai_scribble.data.transforms.loading import _DEFAULT_KEYS, LoadScribbleSampled, _present, _role_keys
from monai_scribble.data.transforms.masks import AddValidMaskd, CropToMultipled, MaskInvalidd
from monai_scribble.data.transforms.spatial import RandIsotropicAffined

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "eval_transforms", "train_transforms"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2:
        raise ValueError(f"crop_size must be an int or (h, w), got {size}")
    return size  # type: ignore[return-value]


def _intensity_transform(kind: str | None, image_key: str, prob: float) -> list[Callable]:
    if kind is None or kind == "none":
        return []
    if kind == "brightness_contrast":
        return [RandBrightnessContrastd(image_key, brightness=0.2, contrast=0.2, prob=prob)]
    if kind == "color_jitter":
        return [RandColorJitterd(image_key, 0.2, 0.2, 0.2, 0.2, prob=prob)]
    raise ValueError(f"intensity must be 'brightness_contrast', 'color_jitter' or None, got {kind!r}")


def _normalize(image_key: str) -> NormalizeIntensityd:
    return NormalizeIntensityd(image_key, subtrahend=IMAGENET_MEAN, divisor=IMAGENET_STD, channel_wise=True)


def train_transforms(
    crop_size: int | Sequence[int] = 256,
    keys: Sequence[str | None] = _DEFAULT_KEYS,
    scribble_format: str = "s2l",
    rotate_range: float = np.pi / 4,
    scale_range: float = 0.1,
    isotropic_scale: bool = True,
    translate_fraction: float = 0.0625,
    affine_prob: float = 0.7,
    flip_prob: float = 0.5,
    intensity: str | None = "brightness_contrast",
    intensity_prob: float = 0.5,
    normalize: bool = True,
    extra_mask_keys: Sequence[str] = (),
    extra_mask_invalid_value: float | None = 0.5,
    valid_key: str = "valid",
    pre_augment: Sequence[Callable] = (),
    crop_multiple: int | None = None,
) -> Compose:
    """Training pipeline of docs/method.md#data-pipeline with MONAI transforms.

    Order: :class:`LoadScribbleSampled` → [:class:`CropToMultipled`] → ``pre_augment`` (e.g. the transform
    inserting the EMA map) → :class:`AddValidMaskd` → ``SpatialPadd`` to the crop size (only images
    smaller than the crop; image/label/masks 0, scribble 250) → ``RandSpatialCropd`` → ``RandAffined``
    (``affine_prob``; rotation ``±rotate_range``, one zoom ``1 ± scale_range`` for both axes, shift
    ``±translate_fraction·crop`` px; image bilinear + reflection, every other key nearest + zeros) →
    ``RandFlipd`` axis 0 and axis 1 (``flip_prob`` each) → intensity jitter of the image only →
    :class:`MaskInvalidd` (scribble → 250 and int64; extra mask keys → ``extra_mask_invalid_value``) →
    ImageNet ``NormalizeIntensityd`` → ``CastToTyped`` (label int32) → ``EnsureTyped``.

    Output per sample: ``image`` float32 ``(3, h, w)``, ``scribble`` int64 ``(1, h, w)`` in {0, 1, 250},
    ``label`` int32 ``(1, h, w)`` (if given), ``valid`` float32 ``(1, h, w)`` in {0, 1} and every extra
    mask key ``(C, h, w)`` float32, with ``(h, w) = crop_size``.

    Args:
        crop_size: training crop, int or ``(h, w)``.
        keys: ``(image_key, scribble_key, label_key)`` by position (see :class:`LoadScribbleSampled`).
        scribble_format: value convention of the scribble files (``"s2l"`` or ``"zero_unlabeled"``).
        rotate_range: maximum rotation in radians (albumentations ``rotate_limit=45°`` → ``π/4``).
        scale_range: maximum relative zoom (albumentations ``scale_limit``).
        isotropic_scale: one zoom factor for both axes (as albumentations); ``False`` draws one per axis
            (plain MONAI ``RandAffined``).
        translate_fraction: maximum shift as a fraction of the crop size (``shift_limit``).
        affine_prob: probability of the random affine transform.
        flip_prob: probability of each flip.
        intensity: ``"brightness_contrast"`` (DSB), ``"color_jitter"`` (MoNuSeg) or ``None``.
        intensity_prob: probability of the intensity jitter.
        normalize: apply the ImageNet normalisation.
        extra_mask_keys: further per-pixel maps (e.g. the EMA probability ``"ema"``) augmented jointly with
            nearest interpolation; they must exist once ``pre_augment`` has run.
        extra_mask_invalid_value: value written into ``extra_mask_keys`` outside the image (``0.5`` = an
            unconfident EMA probability, so no pseudo-label there); ``None`` leaves them 0.
        valid_key: key of the valid mask (kept in the output for losses that need it).
        pre_augment: transforms run after loading and before any spatial transform.
        crop_multiple: if set (e.g. 32, the original code), crop the loaded sample top-left to a multiple.

    Returns:
        A :class:`monai.transforms.Compose`; seed it with ``set_random_state(seed)`` (or through
        :class:`monai.data.DataLoader` worker seeding after :func:`monai.utils.set_determinism`).
    """
    image_key, scribble_key, label_key = _role_keys(keys)
    crop = _pair(crop_size)
    extra = list(extra_mask_keys)
    loaded = _present(image_key, scribble_key, label_key)
    spatial = [image_key, *_present(scribble_key, label_key), valid_key, *extra]
    zero_pad = [k for k in spatial if k != scribble_key]
    modes = ["bilinear" if k == image_key else "nearest" for k in spatial]
    paddings = ["reflection" if k == image_key else "zeros" for k in spatial]

    affine = (RandIsotropicAffined if isotropic_scale else RandAffined)(
        spatial,
        spatial_size=crop,
        prob=affine_prob,
        rotate_range=rotate_range,
        scale_range=(scale_range, scale_range),
        translate_range=(translate_fraction * crop[0], translate_fraction * crop[1]),
        mode=modes,
        padding_mode=paddings,
        cache_grid=True,
        allow_missing_keys=True,
    )
    transforms: list[Callable] = [LoadScribbleSampled(keys, scribble_format=scribble_format)]
    if crop_multiple:
        transforms.append(CropToMultipled(loaded, k=crop_multiple))
    transforms += list(pre_augment)
    transforms += [
        AddValidMaskd(ref_key=image_key, valid_key=valid_key),
        SpatialPadd(zero_pad, spatial_size=crop, mode="constant", value=0, allow_missing_keys=True),
    ]
    if scribble_key is not None:
        transforms.append(
            SpatialPadd(scribble_key, spatial_size=crop, mode="constant", value=IGNORE, allow_missing_keys=True)
        )
    transforms += [
        RandSpatialCropd(spatial, roi_size=crop, random_center=True, random_size=False, allow_missing_keys=True),
        affine,
        RandFlipd(spatial, prob=flip_prob, spatial_axis=0, allow_missing_keys=True),
        RandFlipd(spatial, prob=flip_prob, spatial_axis=1, allow_missing_keys=True),
    ]
    transforms += _intensity_transform(intensity, image_key, intensity_prob)
    if scribble_key is not None:
        transforms.append(MaskInvalidd(scribble_key, valid_key=valid_key, value=IGNORE, dtype=torch.int64))
    if extra and extra_mask_invalid_value is not None:
        transforms.append(MaskInvalidd(extra, valid_key=valid_key, value=extra_mask_invalid_value, dtype=None))
    if normalize:
        transforms.append(_normalize(image_key))
    if label_key is not None:
        transforms.append(CastToTyped(label_key, dtype=torch.int32, allow_missing_keys=True))
    # training batches need no metadata, and per-sample random-transform records differ between samples
    transforms.append(EnsureTyped(spatial, track_meta=False, allow_missing_keys=True))
    return Compose(transforms)


def eval_transforms(
    keys: Sequence[str | None] = _DEFAULT_KEYS,
    scribble_format: str = "s2l",
    normalize: bool = True,
    crop_multiple: int | None = None,
) -> Compose:
    """Validation/test/inference pipeline: load → [top-left crop to a multiple] → ImageNet normalisation.

    Output per sample (full image): ``image`` float32 ``(3, H, W)``, ``scribble`` int64 ``(1, H, W)`` and
    ``label`` int32 ``(1, H, W)`` when present.

    Args:
        keys: ``(image_key, scribble_key, label_key)`` by position; ``("image",)`` for inference.
        scribble_format: value convention of the scribble files.
        normalize: apply the ImageNet normalisation.
        crop_multiple: if set (32 reproduces the original evaluation, docs/method.md#pitfall-crop32), crop the sample
            top-left to ``(⌊H/k⌋·k, ⌊W/k⌋·k)``.
    """
    image_key, scribble_key, label_key = _role_keys(keys)
    loaded = _present(image_key, scribble_key, label_key)
    transforms: list[Callable] = [LoadScribbleSampled(keys, scribble_format=scribble_format)]
    if crop_multiple:
        transforms.append(CropToMultipled(loaded, k=crop_multiple))
    if scribble_key is not None:
        transforms.append(CastToTyped(scribble_key, dtype=torch.int64, allow_missing_keys=True))
    if normalize:
        transforms.append(_normalize(image_key))
    transforms.append(EnsureTyped(loaded, allow_missing_keys=True))
    return Compose(transforms)
