"""Ignite handlers: stage switch, checkpoints, model loading, metric files, the label-free selection metrics (scribble accuracy,
scribble instances), data-parallel buffer broadcast."""

from __future__ import annotations

from monai_scribble.handlers.broadcast_buffers import BroadcastBuffersHandler
from monai_scribble.handlers.checkpoint import BestModelSaver, FinalModelSaver, RandomStates, TrainingCheckpointHandler
from monai_scribble.handlers.metrics_writer import InstanceMetricsWriter, write_metrics
from monai_scribble.handlers.model_loader import ModelLoader
from monai_scribble.handlers.scribble_accuracy import ScribbleAccuracy
from monai_scribble.handlers.scribble_instances import ScribbleInstanceAccuracy
from monai_scribble.handlers.stage_switch import MAIN, WARMUP, StageSwitchHandler

__all__ = [
    "BestModelSaver",
    "BroadcastBuffersHandler",
    "FinalModelSaver",
    "InstanceMetricsWriter",
    "MAIN",
    "ModelLoader",
    "RandomStates",
    "ScribbleAccuracy",
    "ScribbleInstanceAccuracy",
    "StageSwitchHandler",
    "TrainingCheckpointHandler",
    "WARMUP",
    "write_metrics",
]
