"""Data-parallel helpers for ``configs/multi_gpu_train.json`` (torchrun + ``DistributedDataParallel``).

Collective helpers go through ``ignite.distributed``, which also works when the process group was
created by the bundle's ``initialize`` step (``torch.distributed.init_process_group``), and are plain
calls in a single process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import ignite.distributed as idist
import torch
from torch.nn.parallel import DistributedDataParallel

__all__ = ["rank_zero_first", "rank_zero_handlers", "unwrap", "wrap_ddp"]

T = TypeVar("T")


def rank_zero_first(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run ``fn`` on rank 0 first, then on the other ranks (which then find rank 0's files cached).

    Used for steps that write shared files: preparing the datalist (synthetic images, scribbles,
    caches) and creating the pseudo-label store.
    """
    with idist.one_rank_first(rank=0):
        return fn(*args, **kwargs)


def wrap_ddp(module: torch.nn.Module | None, device: str | torch.device) -> torch.nn.Module | None:
    """``module`` on ``device`` inside ``DistributedDataParallel`` (``None`` stays ``None``).

    ``device_ids`` is ``[device]`` on CUDA and ``None`` on CPU (gloo). Parameters are broadcast from
    rank 0 when wrapping, so every rank starts from the same weights.
    """
    if module is None:
        return None
    device = torch.device(device)
    module = module.to(device)
    if not any(p.requires_grad for p in module.parameters()):
        return module
    return DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None)


def unwrap(module: T) -> T:
    """The module inside a ``DistributedDataParallel`` (or ``DataParallel``) wrapper; else ``module``."""
    if isinstance(module, (DistributedDataParallel, torch.nn.DataParallel)):
        return module.module
    return module


def rank_zero_handlers(handlers: list) -> list:
    """``handlers`` on rank 0; on the other ranks without the logging ones (``StatsHandler``,
    ``TensorBoardStatsHandler``, ``ProgressBar``). Chosen by type, not position, so a handler inserted
    in front (MONAI Label prepends a ``CheckpointLoader``) changes nothing."""
    if idist.get_rank() == 0:
        return list(handlers)
    from ignite.handlers import ProgressBar
    from monai.handlers import StatsHandler, TensorBoardStatsHandler

    return [h for h in handlers if not isinstance(h, (StatsHandler, TensorBoardStatsHandler, ProgressBar))]
