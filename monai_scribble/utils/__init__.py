"""What several packages need and none owns: atomic writes, data-parallel helpers."""

from __future__ import annotations

from monai_scribble.utils.atomic import atomic_write
from monai_scribble.utils.distributed import rank_zero_handlers, unwrap, wrap_ddp

__all__ = ["atomic_write", "rank_zero_handlers", "unwrap", "wrap_ddp"]
