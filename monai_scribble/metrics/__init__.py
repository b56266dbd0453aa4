"""Metrics (pure functions of arrays / Ignite metrics)."""

from __future__ import annotations

from monai_scribble.metrics.scribble_accuracy import ScribbleAccuracy, scribble_accuracy

__all__ = ["ScribbleAccuracy", "scribble_accuracy"]
