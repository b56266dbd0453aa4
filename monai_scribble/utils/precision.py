"""The autocast dtype that is fast on this machine (bf16 only where it is native)."""

from __future__ import annotations

import torch

from monai_scribble.utils.arguments import as_bool

__all__ = ["autocast_dtype", "default_amp_dtype"]


def default_amp_dtype(device) -> torch.dtype | None:
    """bf16 autocast where it is fast: CUDA with bf16 support, or a CPU with native bf16 (AVX-512-BF16/AMX).

    On CPUs without it (e.g. AVX2 only) oneDNN falls back to a reference convolution about 10x slower
    than fp32, so training stays in fp32 there.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None


def autocast_dtype(bf16: bool | str) -> torch.dtype | None:
    """``torch.bfloat16`` for the flag ``--bf16 true``, ``None`` (full precision) for false."""
    return torch.bfloat16 if as_bool(bf16, "bf16") else None
