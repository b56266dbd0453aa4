"""EMA maps -> pseudo-labels: confident pixels without a scribble (Scribble2Label; docs/method.md#pseudo-labels)."""

from __future__ import annotations

import torch

from monai_scribble.constants import IGNORE

__all__ = ["threshold_pseudo_labels"]


def threshold_pseudo_labels(
    ema: torch.Tensor, scribbles: torch.Tensor, threshold: float, background_threshold: float | None = None
) -> torch.Tensor:
    """Scribble2Label pseudo-labels: confident EMA pixels that carry no scribble (docs/method.md#pseudo-labels).

    ``round(E)`` where ``E > threshold`` or ``E < 1 - background_threshold`` and the pixel is unscribbled;
    IGNORE elsewhere, so scribbled pixels are never pseudo-labelled.

    Args:
        ema: ``(B, 1, H, W)`` or ``(B, H, W)`` EMA foreground probability.
        scribbles: same spatial shape, values {0, 1, IGNORE}.
        threshold: ``thr_conf`` in ``(0.5, 1)``: the confidence a nucleus pseudo-label needs.
        background_threshold: the confidence a background pseudo-label needs (``None``: ``threshold``,
            the method's symmetric rule; docs/method.md#option-background-threshold).

    Returns:
        ``(B, H, W)`` long tensor in {0, 1, IGNORE}.
    """
    if ema.ndim == 4:
        ema = ema[:, 0]
    if scribbles.ndim == 4:
        scribbles = scribbles[:, 0]
    if ema.shape != scribbles.shape:
        raise ValueError(f"EMA maps {tuple(ema.shape)} and scribbles {tuple(scribbles.shape)} differ in shape")
    ema = ema.float()
    background_threshold = threshold if background_threshold is None else background_threshold
    confident = ((ema > threshold) | (ema < 1.0 - background_threshold)) & (scribbles == IGNORE)
    return torch.where(confident, (ema > 0.5).long(), torch.full_like(scribbles, IGNORE, dtype=torch.long))
