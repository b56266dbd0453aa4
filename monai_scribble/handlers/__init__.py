"""Ignite handlers: stage switch, EMA pseudo-label refresh, checkpoints, model loading, data-parallel buffer broadcast."""

from __future__ import annotations

from monai_scribble.handlers.broadcast_buffers import BroadcastBuffersHandler
from monai_scribble.handlers.checkpoint import BestModelSaver, FinalModelSaver, RandomStates, TrainingCheckpointHandler
from monai_scribble.handlers.ema_pseudo_label import EMAPseudoLabelHandler
from monai_scribble.handlers.metrics_writer import InstanceMetricsWriter
from monai_scribble.handlers.model_loader import ModelLoader, read_model_file
from monai_scribble.handlers.stage_switch import MAIN, WARMUP, StageSwitchHandler

__all__ = [
    "BestModelSaver",
    "BroadcastBuffersHandler",
    "EMAPseudoLabelHandler",
    "FinalModelSaver",
    "InstanceMetricsWriter",
    "MAIN",
    "ModelLoader",
    "RandomStates",
    "StageSwitchHandler",
    "TrainingCheckpointHandler",
    "WARMUP",
    "read_model_file",
]
