"""Spatial augmentation: the affine with one zoom factor for every axis."""

from __future__ import annotations

from typing import Any

from monai.config import KeysCollection
from monai.transforms import RandAffined, RandAffineGrid

__all__ = ["RandIsotropicAffined"]


class _IsotropicScaleRandAffineGrid(RandAffineGrid):
    """:class:`~monai.transforms.RandAffineGrid` drawing one zoom factor for all axes (albumentations
    ``ShiftScaleRotate`` zooms isotropically; MONAI draws one factor per axis)."""

    def randomize(self, data: Any | None = None) -> None:
        super().randomize(data)
        if self.scale_params:
            self.scale_params = [self.scale_params[0]] * len(self.scale_params)


class RandIsotropicAffined(RandAffined):
    """:class:`~monai.transforms.RandAffined` with one zoom factor for every axis, as albumentations'
    ``ShiftScaleRotate`` (MONAI has no such option: its affine grid is built here as our subclass, with the
    same ranges, so the random draws and results are those of ``RandAffined`` but for the zoom)."""

    def __init__(self, keys: KeysCollection, **kwargs) -> None:
        super().__init__(keys, **kwargs)
        grid = self.rand_affine.rand_affine_grid
        self.rand_affine.rand_affine_grid = _IsotropicScaleRandAffineGrid(
            rotate_range=grid.rotate_range, shear_range=grid.shear_range, translate_range=grid.translate_range,
            scale_range=grid.scale_range, device=grid.device, dtype=grid.dtype, lazy=grid.lazy,
        )  # fmt: skip
