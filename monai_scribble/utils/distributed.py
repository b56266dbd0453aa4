"""Data-parallel helpers for ``configs/multi_gpu_train.json`` (torchrun + ``DistributedDataParallel``).

Collective helpers go through ``ignite.distributed``, which also works when the process group was
created by the bundle's ``initialize`` step (``torch.distributed.init_process_group``), and are plain
calls in a single process.
"""

from __future__ import annotations

import os
from typing import TypeVar

import ignite.distributed as idist
import torch
from torch.nn.parallel import DistributedDataParallel

__all__ = ["destroy_process_group", "init_process_group", "local_device", "rank_zero_handlers", "rank_zero_only", "unwrap", "wrap_ddp"]

T = TypeVar("T")


def local_device() -> torch.device:
    """This process's device under ``torchrun``: ``cuda:<LOCAL_RANK>`` where there are GPUs, else the CPU."""
    return torch.device(f"cuda:{os.environ.get('LOCAL_RANK', '0')}") if torch.cuda.is_available() else torch.device("cpu")


def init_process_group(device: str | torch.device) -> None:
    """Join the ``torchrun`` process group (NCCL on GPUs, gloo on CPUs) unless joined, and select ``device``."""
    device = torch.device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)


def destroy_process_group() -> None:
    """Leave the process group if this process joined one."""
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


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


def rank_zero_only(handlers: list) -> list | None:
    """``handlers`` on rank 0, ``None`` on the other ranks (validation: rank 0 alone logs and saves the best model)."""
    return list(handlers) if idist.get_rank() == 0 else None
