"""Insert an image's EMA map into the data dict, before the random spatial transforms (docs/method.md#ema)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from monai.transforms import MapTransform

from monai_scribble.pseudo_labels.config import PseudoLabelConfig
from monai_scribble.pseudo_labels.store import PseudoLabelStore

__all__ = ["LoadPseudoLabelMapd"]


class LoadPseudoLabelMapd(MapTransform):
    """Insert an image's current EMA map as ``(1, H, W)`` float32 under ``ema_key`` (read fresh each call).

    Place it before the random spatial transforms so the map is cropped, rotated and flipped with the
    image and scribble (list its key in ``train_transforms(extra_mask_keys=...)``).

    Args:
        store_root: folder of the :class:`~monai_scribble.pseudo_labels.PseudoLabelStore`.
        config: the loop's settings; with ``bias_correction`` the map is returned bias-corrected,
            ``E / (1 - (1 - m)^k)`` after ``k`` updates (docs/method.md#ext-ema). Off by default: with the
            zero-initialised EMA of the paper, no foreground pseudo-label can pass the threshold before ``k``
            is large (8 updates for m=0.2, thr=0.8; 29 for m=0.1, thr=0.95; docs/method.md#pitfall-ema-zero-init).
        id_key: key of the image id in the data dict.
        ema_key: key to write.
    """

    def __init__(
        self,
        store_root: str | os.PathLike,
        config: PseudoLabelConfig | None = None,
        id_key: str = "id",
        ema_key: str = "ema",
    ) -> None:
        super().__init__(keys=[id_key])
        self.store_root = Path(store_root)
        self.config = config or PseudoLabelConfig()
        self.id_key = id_key
        self.ema_key = ema_key
        self._store: PseudoLabelStore | None = None

    def __call__(self, data: Mapping) -> dict:
        if self._store is None:  # opened lazily, in the worker process that uses it
            self._store = PseudoLabelStore(self.store_root)
        d = dict(data)
        state = self._store.state  # one read: the map and its update count belong to the same generation
        ema = torch.from_numpy(self._store.get(str(d[self.id_key]), state["generation"]))[None]
        d[self.ema_key] = self.config.read(ema, state["updates"])
        return d
