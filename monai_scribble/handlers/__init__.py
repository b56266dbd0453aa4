"""Ignite handlers: stage switch and EMA pseudo-label refresh."""

from __future__ import annotations

from monai_scribble.handlers.checkpoint import BestModelSaver, TrainingCheckpointHandler
from monai_scribble.handlers.ema_pseudo_label import EMAPseudoLabelHandler
from monai_scribble.handlers.stage_switch import MAIN, WARMUP, StageSwitchHandler

__all__ = ["BestModelSaver", "EMAPseudoLabelHandler", "MAIN", "StageSwitchHandler", "TrainingCheckpointHandler", "WARMUP"]
