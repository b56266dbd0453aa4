"""Loading a sample: image, scribble and label map, channel-first, from files or arrays; MONAI Label items."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform

from monai_scribble.constants import BACKGROUND, FOREGROUND, IGNORE
from monai_scribble.data.image_io import image_to_rgb_float, read_image, read_instance_label
from monai_scribble.errors import DataError


_SCRIBBLE_VALUES = (BACKGROUND, FOREGROUND, IGNORE)
_DEFAULT_KEYS = ("image", "scribble", "label")

__all__ = ["LoadScribbleSampled", "ScribbleItemd"]


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
