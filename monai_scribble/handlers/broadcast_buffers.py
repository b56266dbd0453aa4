"""Give every data-parallel rank rank 0's buffers (BatchNorm running statistics) at the end of an epoch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from ignite.engine import Engine, Events

from monai_scribble.utils.distributed import unwrap

__all__ = ["BroadcastBuffersHandler"]


class BroadcastBuffersHandler:
    """Copy rank 0's buffers to the other ranks at ``EPOCH_COMPLETED``.

    ``DistributedDataParallel`` broadcasts buffers at the *start* of each training forward, so after the
    last iteration of an epoch every rank holds the BatchNorm statistics of its own last batch. Attach
    this handler before the validation and EMA handlers so that validation and the EMA refresh (whose
    shards are predicted on different ranks) all use the model rank 0 checkpoints. Does nothing in a
    single process.

    Args:
        modules: the modules whose buffers to broadcast (DDP wrappers are looked through; ``None`` skipped).
    """

    def __init__(self, modules: Sequence[torch.nn.Module | None]) -> None:
        self.modules = [unwrap(m) for m in modules if m is not None]

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    @torch.no_grad()
    def __call__(self, engine: Engine | None = None) -> None:
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return
        for module in self.modules:
            for buffer in module.buffers():
                dist.broadcast(buffer, src=0)
