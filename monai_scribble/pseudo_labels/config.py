"""The settings of the EMA pseudo-label loop, given once (Scribble2Label; docs/method.md#ema).

One :class:`PseudoLabelConfig` is built by the bundle (``ema_config`` in ``train.json``, from the ids
``ema_momentum``, ``ema_threshold``, ``ema_background_threshold``, ``ema_period``, ``ema_bias_correction``;
the authors' per-dataset values are in ``configs/datasets/<dataset>.json``) and handed to every part of the
loop: the refresh handler (momentum, period), the load transform (bias correction) and the trainer (thresholds).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from monai_scribble.pseudo_labels.thresholding import threshold_pseudo_labels
from monai_scribble.utils.arguments import as_bool, integer_at_least, number_in

__all__ = ["PseudoLabelConfig"]

@dataclass(frozen=True)
class PseudoLabelConfig:
    """EMA momentum, confidence thresholds, refresh period and bias correction of the pseudo-labels.

    Args:
        momentum: ``m`` of ``E <- m * p + (1 - m) * E``, in ``(0, 1]`` (the authors': DSB 0.2, MoNuSeg 0.1).
        threshold: confidence a nucleus pseudo-label needs (``E > threshold``), in ``(0.5, 1)`` (DSB 0.8,
            MoNuSeg 0.95).
        background_threshold: confidence a background pseudo-label needs (``E < 1 - background_threshold``);
            ``None``: ``threshold``, the method's symmetric rule (docs/method.md#option-background-threshold).
        period: epochs between refreshes (5).
        bias_correction: read ``E / (1 - (1 - m)^k)`` after ``k`` updates instead of the authors'
            zero-initialised, uncorrected ``E`` (docs/method.md#ext-ema; off by default).

    Raises:
        ArgumentError: a value out of range, named as the bundle id that sets it (``ema_<field>``).
    """

    momentum: float = 0.2
    threshold: float = 0.8
    background_threshold: float | None = None
    period: int = 5
    bias_correction: bool = False

    def __post_init__(self) -> None:
        background = self.background_threshold
        object.__setattr__(self, "momentum", number_in("ema_momentum", self.momentum, 0.0, 1.0))
        object.__setattr__(self, "threshold", number_in("ema_threshold", self.threshold, 0.5, 1.0, high_open=True))
        if background is not None:
            object.__setattr__(self, "background_threshold", number_in("ema_background_threshold", background, 0.5, 1.0, high_open=True))
        object.__setattr__(self, "period", integer_at_least("ema_period", self.period, 1))
        object.__setattr__(self, "bias_correction", as_bool(self.bias_correction, "ema_bias_correction"))

    def read(self, ema: torch.Tensor, updates: int) -> torch.Tensor:
        """The EMA map as the loss uses it: ``ema`` itself, or bias-corrected after ``updates`` updates."""
        if not self.bias_correction or updates <= 0:
            return ema
        return (ema / (1.0 - (1.0 - self.momentum) ** updates)).clamp_(0.0, 1.0)

    def pseudo_labels(self, ema: torch.Tensor, scribbles: torch.Tensor) -> torch.Tensor:
        """:func:`~monai_scribble.pseudo_labels.threshold_pseudo_labels` at this config's thresholds."""
        return threshold_pseudo_labels(ema, scribbles, self.threshold, self.background_threshold)
