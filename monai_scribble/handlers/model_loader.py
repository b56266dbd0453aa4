"""Load a deployable ``model.pt`` into the network when an engine starts (:func:`~monai_scribble.inference.load_model_file`).

:class:`ModelLoader` replaces MONAI's ``CheckpointLoader`` in ``inference.json`` and ``evaluate.json``: a
missing, corrupt or mismatched file stops with one ``DataError`` line naming the file and what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from ignite.engine import Engine, Events

from monai_scribble.inference.model_file import load_model_file
from monai_scribble.utils.distributed import unwrap

__all__ = ["ModelLoader"]


class ModelLoader:
    """At ``Events.STARTED``, load ``load_path`` (a ``model.pt``) into ``network``.

    Warns when ``metadata["dataset"]`` is ``DEMO_DATASET`` (the synthetic demo); the metadata read is kept in
    :attr:`metadata` (``{}`` for files without it, e.g. older or MONAI Label files).

    Args:
        load_path: the ``model.pt``.
        network: the network (a ``DistributedDataParallel`` wrapper is looked through).
        map_location: device for the loaded tensors.
        strict: every weight of the network must be in the file and vice versa.

    Raises:
        DataError: when the engine starts, for a missing, unreadable or non-fitting file.
    """

    def __init__(self, load_path: str | os.PathLike, network: torch.nn.Module, map_location: str | torch.device | None = "cpu", strict: bool = True) -> None:
        self.load_path = Path(load_path)
        self.network = network
        self.map_location = map_location
        self.strict = bool(strict)
        self.metadata: dict = {}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine | None = None) -> None:
        self.metadata = load_model_file(self.load_path, unwrap(self.network), self.map_location, self.strict)
