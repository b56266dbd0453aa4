"""Intensity augmentation of the image only: brightness / contrast and colour jitter, as the authors' albumentations."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform, RandScaleIntensity, RandShiftIntensity
from monai.utils import MAX_SEED, convert_to_dst_type, convert_to_tensor
from skimage.color import hsv2rgb, rgb2hsv

__all__ = ["RandBrightnessContrastd", "RandColorJitterd"]


class RandBrightnessContrastd(RandomizableTransform, MapTransform):
    """Random brightness and contrast, like albumentations ``RandomBrightnessContrast`` (by max).

    With probability ``prob``: ``x ← clip(α·x + β, *clip)`` with ``α = 1 + U(-contrast, contrast)`` (MONAI
    :class:`~monai.transforms.RandScaleIntensity`) and ``β = U(-brightness, brightness)``
    (:class:`~monai.transforms.RandShiftIntensity`), drawn once per call and shared by all keys.
    Both changes are applied together or not at all (one probability, as in albumentations).

    Args:
        keys: image keys, ``(C, H, W)`` float in ``[0, 1]``.
        brightness: half-width of the additive offset range.
        contrast: half-width of the multiplicative factor range around 1.
        prob: probability of applying the transform.
        clip: output range, ``None`` for no clipping.
    """

    def __init__(
        self,
        keys: KeysCollection,
        brightness: float = 0.2,
        contrast: float = 0.2,
        prob: float = 0.5,
        clip: tuple[float, float] | None = (0.0, 1.0),
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.scale = RandScaleIntensity(factors=contrast, prob=1.0)
        self.shift = RandShiftIntensity(offsets=brightness, prob=1.0)
        self.clip = clip

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> RandBrightnessContrastd:
        super().set_random_state(seed, state)
        self.scale.set_random_state(int(self.R.randint(MAX_SEED, dtype="uint32")))
        self.shift.set_random_state(int(self.R.randint(MAX_SEED, dtype="uint32")))
        return self

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        self.scale.randomize(None)
        self.shift.randomize(None)
        for key in self.key_iterator(d):
            x = self.shift(self.scale(d[key], randomize=False), randomize=False)
            d[key] = torch.clamp(x, *self.clip) if self.clip is not None else x
        return d


def _gray(img: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of an RGB ``(3, H, W)`` tensor, ``(1, H, W)``."""
    return (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]).unsqueeze(0)


class RandColorJitterd(RandomizableTransform, MapTransform):
    """Random colour jitter of RGB images, with torchvision/albumentations ``ColorJitter`` semantics.

    With probability ``prob`` the four operations are applied in a random order, each with a factor
    drawn once per call: brightness ``x·b``; contrast ``c·x + (1-c)·mean(gray(x))``; saturation
    ``s·x + (1-s)·gray(x)`` (``b, c, s ~ U(1-v, 1+v)``); hue shift ``h ← h + U(-hue, hue)`` (in turns) in
    HSV space. Values are clipped to ``[0, 1]`` after every operation.

    Args:
        keys: RGB image keys, ``(3, H, W)`` float in ``[0, 1]``.
        brightness, contrast, saturation: jitter strength ``v`` (0 disables the operation).
        hue: maximum hue shift in turns, ``<= 0.5``.
        prob: probability of applying the transform.
    """

    def __init__(
        self,
        keys: KeysCollection,
        brightness: float = 0.2,
        contrast: float = 0.2,
        saturation: float = 0.2,
        hue: float = 0.2,
        prob: float = 0.5,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        if not 0 <= hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {hue}")
        self.strength = (brightness, contrast, saturation, hue)
        self._order: list[int] = [0, 1, 2, 3]
        self._factors: list[float] = [1.0, 1.0, 1.0, 0.0]

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        if not self._do_transform:
            return
        b, c, s, h = self.strength
        self._factors = [
            self.R.uniform(max(0.0, 1 - b), 1 + b),
            self.R.uniform(max(0.0, 1 - c), 1 + c),
            self.R.uniform(max(0.0, 1 - s), 1 + s),
            self.R.uniform(-h, h),
        ]
        self._order = [int(i) for i in self.R.permutation(4)]

    def _apply(self, img: torch.Tensor) -> torch.Tensor:
        """Jitter a plain ``(3, H, W)`` float tensor with the drawn factors."""
        if img.shape[0] != 3:
            raise ValueError(f"RandColorJitterd needs RGB (3, H, W) images, got {tuple(img.shape)}")
        for op in self._order:
            if self.strength[op] <= 0:
                continue
            f = self._factors[op]
            if op == 0:
                img = img * f
            elif op == 1:
                img = f * img + (1 - f) * _gray(img).mean()
            elif op == 2:
                img = f * img + (1 - f) * _gray(img)
            else:
                hsv = rgb2hsv(img.cpu().numpy(), channel_axis=0)
                hsv[0] = np.remainder(hsv[0] + f, 1.0)
                img = torch.as_tensor(hsv2rgb(hsv, channel_axis=0), dtype=img.dtype, device=img.device)
            img = torch.clamp(img, 0.0, 1.0)
        return img

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            img = convert_to_tensor(d[key], track_meta=False, dtype=torch.float32)
            d[key] = convert_to_dst_type(self._apply(img), d[key], dtype=torch.float32)[0]
        return d
