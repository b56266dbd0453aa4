"""Dictionary-based MONAI transforms for scribble-supervised training and evaluation.

A sample is a dictionary with (by default) the keys ``"image"``, ``"scribble"`` and ``"label"``, holding
file paths (datalist items) or in-memory arrays. After :class:`LoadScribbleSampled`:

- ``image``: float32 :class:`~monai.data.MetaTensor` ``(3, H, W)``, RGB in ``[0, 1]``;
- ``scribble``: uint8 ``(1, H, W)`` with values {0 background, 1 foreground, 250 unlabeled};
- ``label``: int32 ``(1, H, W)`` instance map (0 background).

Scribbles are label maps, so every spatial transform resamples them with nearest interpolation and
they stay integer-valued. Pixels that do not come from the image (spatial padding of small images, and
the area outside the rotated/shifted image after the random affine transform) become *unlabeled*
(:data:`~monai_scribble.constants.IGNORE`), never background: :class:`AddValidMaskd` adds a ``valid``
mask of ones before the spatial transforms, the mask is padded and resampled with zeros, and
:class:`MaskInvalidd` writes ``IGNORE`` wherever it ended up 0. The image itself is resampled with
reflection padding as in the original method (docs/method.md#data-pipeline), so the network sees plausible texture
there but is never supervised on it.

:func:`train_transforms` and :func:`eval_transforms` build the method's pipelines (docs/method.md#data-pipeline).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import (
    CastToTyped,
    Compose,
    EnsureTyped,
    MapTransform,
    NormalizeIntensityd,
    RandAffined,
    RandAffineGrid,
    RandFlipd,
    RandomizableTransform,
    RandScaleIntensity,
    RandShiftIntensity,
    RandSpatialCropd,
    SpatialCrop,
    SpatialPadd,
    Transform,
)
from monai.utils import MAX_SEED, convert_to_dst_type, convert_to_tensor

from monai_scribble.constants import BACKGROUND, FOREGROUND, IGNORE
from monai_scribble.data.image_io import DataError, image_to_rgb_float, read_image, read_instance_label

__all__ = [
    "LabelAsScribbled",
    "ScribbleItemd",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LoadScribbleSampled",
    "AddValidMaskd",
    "MaskInvalidd",
    "CropToMultipled",
    "RandBrightnessContrastd",
    "RandColorJitterd",
    "train_transforms",
    "eval_transforms",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

_SCRIBBLE_VALUES = (BACKGROUND, FOREGROUND, IGNORE)
_DEFAULT_KEYS = ("image", "scribble", "label")


def _role_keys(keys: Sequence[str | None] | str) -> tuple[str | None, str | None, str | None]:
    """``(image_key, scribble_key, label_key)`` from a 1- to 3-tuple (missing roles are ``None``)."""
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    if not 1 <= len(keys) <= 3 or keys[0] is None:
        raise ValueError(f"keys must be (image_key[, scribble_key[, label_key]]), got {keys!r}")
    padded = keys + (None,) * (3 - len(keys))
    return padded[0], padded[1], padded[2]


def _present(*keys: str | None) -> list[str]:
    return [k for k in keys if k is not None]


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def _source_name(value: Any, key: Hashable) -> str:
    if _is_path(value):
        return str(value)
    if isinstance(value, MetaTensor) and value.meta.get("filename_or_obj"):
        return str(value.meta["filename_or_obj"])
    return f"<in-memory {key}>"


def _to_metatensor(array: np.ndarray | torch.Tensor, source: Any, like: Any = None) -> MetaTensor:
    """Wrap ``(C, H, W)`` data as a new MetaTensor (always a copy: later transforms may work in place).

    ``meta`` and ``affine`` are taken from ``like`` when it is a MetaTensor; ``source`` (a file path) sets
    ``meta["filename_or_obj"]``.
    """
    if isinstance(array, torch.Tensor):
        tensor = array.as_tensor() if isinstance(array, MetaTensor) else array
        tensor = tensor.detach().clone()
    else:
        tensor = torch.from_numpy(np.array(array))
    meta = dict(like.meta) if isinstance(like, MetaTensor) else {}
    if source is not None:
        meta["filename_or_obj"] = str(source)
    meta["spatial_shape"] = np.asarray(tensor.shape[1:])
    affine = like.affine.clone() if isinstance(like, MetaTensor) else None
    return MetaTensor(tensor, affine=affine, meta=meta)


def _as_numpy(value: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


class LoadScribbleSampled(MapTransform):
    """Load the image, scribble and (optional) instance label of a sample, channel-first.

    File paths are read with :func:`~monai_scribble.data.image_io.read_image` (gray, RGBA, 16-bit ...
    → RGB float in ``[0, 1]``), :func:`~monai_scribble.data.scribbles.read_scribble` (in the explicit
    ``scribble_format``) and :func:`~monai_scribble.data.image_io.read_instance_label`. Values that are
    already arrays/tensors are passed through (copied), so synthetic in-memory samples work:

    - image: ``(3, H, W)`` is taken as channel-first RGB and cast to float32 unchanged; ``(H, W)`` and
      ``(H, W, C)`` with ``C`` in 1..4 are converted like files by
      :func:`~monai_scribble.data.image_io.image_to_rgb_float`;
    - scribble: ``(H, W)`` or ``(1, H, W)`` already in the internal convention (0/1/250; the file
      format applies to files only), checked and cast to uint8;
    - label: ``(H, W)`` or ``(1, H, W)``, cast to int32.

    Output (MetaTensors with ``meta["filename_or_obj"]`` set to the file path):
        ``image`` float32 ``(3, H, W)``; ``scribble`` uint8 ``(1, H, W)``; ``label`` int32 ``(1, H, W)``.

    Args:
        keys: ``(image_key, scribble_key, label_key)``; the role of each key is its position. Shorter
            tuples (e.g. ``("image",)`` for inference) leave the other roles out.
        scribble_format: value convention of scribble *files*, ``"s2l"`` (0 bg, 1 fg, 250 unlabeled) or
            ``"zero_unlabeled"`` (0 unlabeled, 1 bg, 2 fg; napari / MONAI Label); never guessed.
        allow_missing_keys: don't raise if a key is absent or ``None`` (e.g. no label in training).

    Raises:
        DataError: unreadable files, unknown scribble values, or a scribble/label whose ``(H, W)``
            differs from the image's (the message names both files and both shapes).
    """

    def __init__(
        self,
        keys: Sequence[str | None] = _DEFAULT_KEYS,
        scribble_format: str = "s2l",
        allow_missing_keys: bool = True,
    ) -> None:
        self.image_key, self.scribble_key, self.label_key = _role_keys(keys)
        super().__init__(_present(self.image_key, self.scribble_key, self.label_key), allow_missing_keys)
        from monai_scribble.data.scribbles import ScribbleFormat

        self.scribble_format = ScribbleFormat(scribble_format).value

    def _load_image(self, value: Any, key: Hashable) -> MetaTensor:
        if _is_path(value):
            return _to_metatensor(np.ascontiguousarray(read_image(value).transpose(2, 0, 1)), value)
        array = _as_numpy(value)
        if array.ndim == 3 and array.shape[0] == 3:
            chw = array.astype(np.float32)
        elif array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 2, 3, 4)):
            chw = image_to_rgb_float(array, _source_name(value, key)).transpose(2, 0, 1)
        else:
            raise DataError(_source_name(value, key), f"cannot interpret an image of shape {tuple(array.shape)}")
        return _to_metatensor(np.ascontiguousarray(chw), None, value)

    @staticmethod
    def _single_channel(value: Any, key: Hashable) -> np.ndarray:
        array = _as_numpy(value)
        if array.ndim == 3 and array.shape[0] == 1:
            array = array[0]
        if array.ndim != 2:
            raise DataError(_source_name(value, key), f"expected a (H, W) or (1, H, W) map, got {tuple(array.shape)}")
        return array

    def _load_scribble(self, value: Any, key: Hashable) -> MetaTensor:
        if _is_path(value):
            from monai_scribble.data.scribbles import read_scribble

            return _to_metatensor(read_scribble(value, self.scribble_format)[None], value)
        array = self._single_channel(value, key)
        bad = ~np.isin(array, _SCRIBBLE_VALUES)
        if bad.any():
            found = np.unique(array[bad])[:10].tolist()
            raise DataError(
                _source_name(value, key), f"unknown scribble values {found} (expected {list(_SCRIBBLE_VALUES)})"
            )
        return _to_metatensor(array.astype(np.uint8)[None], None, value)

    def _load_label(self, value: Any, key: Hashable) -> MetaTensor:
        if _is_path(value):
            return _to_metatensor(read_instance_label(value)[None], value)
        return _to_metatensor(self._single_channel(value, key).astype(np.int32)[None], None, value)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Load every present key; see the class docstring for shapes and dtypes."""
        d = dict(data)
        loaders = {self.image_key: self._load_image, self.scribble_key: self._load_scribble}
        if self.label_key is not None:
            loaders[self.label_key] = self._load_label
        sources: dict[Hashable, str] = {}
        for key in self.key_iterator(d):
            if d[key] is None:
                if self.allow_missing_keys:
                    continue
                raise KeyError(f"sample has no {key!r}")
            sources[key] = _source_name(d[key], key)
            d[key] = loaders[key](d[key], key)
        ref = self.image_key if self.image_key in sources else None
        if ref is not None:
            ref_shape = tuple(d[ref].shape[1:])
            for key in (self.scribble_key, self.label_key):
                if key in sources and tuple(d[key].shape[1:]) != ref_shape:
                    raise DataError(
                        sources[ref],
                        f"image shape (H, W) {ref_shape} does not match {key} {sources[key]} "
                        f"shape (H, W) {tuple(d[key].shape[1:])}",
                    )
        return d


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


def _rgb_to_hsv(img: torch.Tensor) -> torch.Tensor:
    r, g, b = img
    maxc, _ = img.max(dim=0)
    minc, _ = img.min(dim=0)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(
        maxc == r, ((g - b) / safe) % 6.0, torch.where(maxc == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    )
    h = torch.where(delta > 0, h / 6.0, torch.zeros_like(h))
    s = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    return torch.stack((h, s, maxc))


def _hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    h, s, v = hsv
    h6 = h * 6.0
    i = torch.floor(h6)
    f = h6 - i
    i = i.to(torch.int64) % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    # rows: sector 0..5; columns: (r, g, b)
    table = torch.stack(
        (
            torch.stack((v, t, p)),
            torch.stack((q, v, p)),
            torch.stack((p, v, t)),
            torch.stack((p, q, v)),
            torch.stack((t, p, v)),
            torch.stack((v, p, q)),
        )
    )  # (6, 3, H, W)
    return torch.gather(table, 0, i.expand(1, 3, *i.shape)).squeeze(0)


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
                h, s, v = _rgb_to_hsv(img)
                img = _hsv_to_rgb(torch.stack((torch.remainder(h + f, 1.0), s, v)))
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


class _IsotropicScaleRandAffineGrid(RandAffineGrid):
    """:class:`~monai.transforms.RandAffineGrid` drawing one zoom factor for all axes (albumentations
    ``ShiftScaleRotate`` zooms isotropically; MONAI draws one factor per axis)."""

    def randomize(self, data: Any | None = None) -> None:
        super().randomize(data)
        if self.scale_params:
            self.scale_params = [self.scale_params[0]] * len(self.scale_params)


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

    affine = RandAffined(
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
    if isotropic_scale:  # one zoom factor for both axes, as in ShiftScaleRotate
        affine.rand_affine.rand_affine_grid.__class__ = _IsotropicScaleRandAffineGrid
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


class ScribbleItemd(Transform):
    """Bring a datalist item into our layout before loading (see
    :func:`~monai_scribble.data.datalist.as_scribble_item`): MONAI Label's ``{image, label}`` items, with
    ``label_kind="scribble_zero_unlabeled"``, become ``{id, image, scribble}``; our own items pass unchanged.
    """

    def __init__(self, label_kind: str = "scribble") -> None:
        from monai_scribble.data.datalist import check_label_kind

        self.label_kind = check_label_kind(label_kind)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        from monai_scribble.data.datalist import as_scribble_item

        return as_scribble_item(dict(data), self.label_kind)


class LabelAsScribbled(MapTransform):
    """Fully supervised baseline: replace the scribble with the full mask (``label > 0`` as 0/1).

    Apply after loading and before the spatial transforms, so padding and out-of-image pixels still
    become unlabeled (250) like for scribbles.
    """

    def __init__(self, label_key: str = "label", scribble_key: str = "scribble") -> None:
        super().__init__(keys=[label_key])
        self.label_key = label_key
        self.scribble_key = scribble_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.label_key not in d or d[self.label_key] is None:
            raise DataError(str(d.get("image", "<sample>")), "method 'supervised' needs a label map for every training image")
        label = d[self.label_key]
        d[self.scribble_key] = (label > 0).to(torch.uint8) if isinstance(label, torch.Tensor) else (np.asarray(label) > 0).astype(np.uint8)
        return d
