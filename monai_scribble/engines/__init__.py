"""Engines: the scribble-supervised trainer and the bundle's presets."""

from __future__ import annotations

from monai_scribble.engines.scribble_trainer import ScribbleTrainer

__all__ = ["ScribbleTrainer"]
