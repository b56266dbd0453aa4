"""Losses: partial cross-entropy on scribbles / pseudo-labels and the multiscale contrastive loss."""

from __future__ import annotations

from monai_scribble.losses.contrastive import ContrastiveTerm, MultiscaleContrastiveLoss, contrastive_labels
from monai_scribble.losses.partial_ce import PartialCrossEntropyLoss

__all__ = ["ContrastiveTerm", "MultiscaleContrastiveLoss", "PartialCrossEntropyLoss", "contrastive_labels"]
