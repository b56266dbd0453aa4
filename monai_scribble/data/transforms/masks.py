"""Masks of a training sample: which pixels come from the image, unlabelled padding, top-left crops, full masks as targets."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, SpatialCrop
from monai.utils import convert_to_tensor

from monai_scribble.constants import IGNORE
from monai_scribble.errors import DataError

__all__ = ["AddValidMaskd", "CropToMultipled", "LabelAsScribbled", "MaskInvalidd"]


class AddValidMaskd(MapTransform):
    """Add a ``(1, H, W)`` float32 mask of ones marking the pixels that belong to the image.

    Apply it before any spatial transform and give the mask zero padding and nearest interpolation;
    afterwards ``valid == 0`` marks padding and the area outside the rotated/shifted image, which
    :class:`MaskInvalidd` turns into unlabeled scribble pixels.

    Args:
        ref_key: key of the channel-first reference image ``(C, H, W)``.
        valid_key: key under which the mask is stored (overwritten if present).
    """

    def __init__(self, ref_key: str = "image", valid_key: str = "valid") -> None:
        super().__init__([ref_key])
        self.ref_key = ref_key
        self.valid_key = valid_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        ref = convert_to_tensor(d[self.ref_key], track_meta=True)
        valid = torch.ones((1, *ref.shape[1:]), dtype=torch.float32)
        meta = {"filename_or_obj": ref.meta.get("filename_or_obj", "")} if isinstance(ref, MetaTensor) else {}
        affine = ref.affine.clone() if isinstance(ref, MetaTensor) else None
        d[self.valid_key] = MetaTensor(valid, affine=affine, meta=meta)
        return d


class MaskInvalidd(MapTransform):
    """Set the pixels where ``valid == 0`` to ``value`` (unlabeled) and cast to ``dtype``.

    Input: ``d[key]`` ``(C, H, W)`` (any dtype, e.g. float after an affine transform with nearest
    interpolation) and ``d[valid_key]`` ``(1, H, W)`` with values in {0, 1}. Output: ``d[key]``
    ``(C, H, W)`` of ``dtype``, integer maps rounded first so nearest-resampled labels stay exact.

    Args:
        keys: label-like keys to mask (default: the scribble).
        valid_key: key of the valid mask made by :class:`AddValidMaskd`.
        value: value written outside the image (default :data:`~monai_scribble.constants.IGNORE`).
            Use e.g. ``0.5`` for an EMA probability map, which then yields no confident pseudo-label.
        dtype: output dtype; ``None`` keeps the input dtype.
        allow_missing_keys: don't raise if a key is absent.
    """

    def __init__(
        self,
        keys: KeysCollection = ("scribble",),
        valid_key: str = "valid",
        value: float = IGNORE,
        dtype: torch.dtype | None = torch.int64,
        allow_missing_keys: bool = True,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.valid_key = valid_key
        self.value = value
        self.dtype = dtype

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.valid_key not in d:
            raise KeyError(f"MaskInvalidd needs the valid mask {self.valid_key!r} (add AddValidMaskd first)")
        invalid = convert_to_tensor(d[self.valid_key], track_meta=False) < 0.5
        for key in self.key_iterator(d):
            x = convert_to_tensor(d[key], track_meta=True)
            dtype = self.dtype or x.dtype
            if x.is_floating_point() and not dtype.is_floating_point:
                x = torch.round(x)
            x = x.to(dtype)
            x = torch.where(invalid.to(x.device), torch.as_tensor(self.value, dtype=dtype), x)
            d[key] = x
        return d


class CropToMultipled(MapTransform):
    """Crop ``(C, H, W)`` items top-left to ``(⌊H/k⌋·k, ⌊W/k⌋·k)`` (the original code's /32 crop).

    docs/method.md#pitfall-crop32: the original code drops the right and bottom strips of every image so the
    network input is divisible by 32. Reproduce it with ``k=32``; the size is taken from the first key.

    Raises:
        ValueError: the image is smaller than ``k`` along an axis.
    """

    def __init__(self, keys: KeysCollection, k: int = 32, allow_missing_keys: bool = True) -> None:
        super().__init__(keys, allow_missing_keys)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = int(k)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        first = self.first_key(d)
        if first == ():
            return d
        spatial = tuple(d[first].shape[1:])
        end = tuple(s // self.k * self.k for s in spatial)
        if min(end) == 0:
            raise ValueError(f"cannot crop an image of size {spatial} to a multiple of {self.k}")
        cropper = SpatialCrop(roi_start=(0,) * len(end), roi_end=end)
        for key in self.key_iterator(d):
            d[key] = cropper(d[key])
        return d


class LabelAsScribbled(MapTransform):
    """Fully supervised baseline: replace the scribble with the full mask (``label > 0`` as 0/1).

    Apply after loading and before the spatial transforms, so padding and out-of-image pixels still
    become unlabeled (250) like for scribbles.

    Args:
        label_key: key of the instance map.
        scribble_key: key of the scribble it replaces.
        enabled: ``False`` passes data through unchanged (every method but ``supervised``).
    """

    def __init__(self, label_key: str = "label", scribble_key: str = "scribble", enabled: bool = True) -> None:
        super().__init__(keys=[label_key])
        self.label_key = label_key
        self.scribble_key = scribble_key
        self.enabled = bool(enabled)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if not self.enabled:
            return d
        if self.label_key not in d or d[self.label_key] is None:
            raise DataError(str(d.get("image", "<sample>")), "method 'supervised' needs a label map for every training image")
        label = d[self.label_key]
        d[self.scribble_key] = (label > 0).to(torch.uint8) if isinstance(label, torch.Tensor) else (np.asarray(label) > 0).astype(np.uint8)
        return d
