"""The training batch: the authors' ``min(30, training images)`` and no leftover batch of a single crop."""

from __future__ import annotations

import math

import ignite.distributed as idist

__all__ = ["AUTHORS_BATCH_SIZE", "drop_batch_of_one", "training_batch_size"]

AUTHORS_BATCH_SIZE = 30
"""The authors' training batch (one iteration per epoch on DSB-BF's 9 and MoNuSeg's 24 training images)."""


def training_batch_size(batch_size: int | str, num_images: int, world_size: int | None = None) -> int:
    """The training batch per process: ``batch_size``, or for ``"auto"`` the authors' ``min(30, images)``.

    Args:
        batch_size: an integer, or ``"auto"``.
        num_images: training images (all processes together).
        world_size: data-parallel processes (default: Ignite's current world size); each sees
            ``ceil(num_images / world_size)`` images per epoch.
    """
    if str(batch_size).strip().lower() != "auto":
        return int(batch_size)
    per_process = math.ceil(max(int(num_images), 1) / (world_size or idist.get_world_size()))
    return max(1, min(AUTHORS_BATCH_SIZE, per_process))


def drop_batch_of_one(num_images: int, batch_size: int, world_size: int | None = None) -> bool:
    """``drop_last`` for the training loader: only when the epoch would end with a batch of a single crop.

    A batch of one gives batch norm a single sample and the contrastive pool one image; dropping it loses
    one crop per epoch (a different one each epoch, the order is shuffled).
    """
    per_process = math.ceil(int(num_images) / (world_size or idist.get_world_size()))
    return per_process > 1 and per_process % int(batch_size) == 1
