"""Training checkpoint files of a run: ``<output_dir>/checkpoints/checkpoint_epoch=<N>.pt``, found and read."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from monai_scribble.errors import DataError

__all__ = ["checkpoint_epoch", "find_last_checkpoint", "list_checkpoints", "read_training_checkpoint"]


def list_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """The training checkpoints ``checkpoint_epoch=<N>.pt`` in ``folder``, oldest epoch first."""
    return sorted(Path(folder).glob("checkpoint_epoch=*.pt"), key=checkpoint_epoch)


def find_last_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The training checkpoint with the highest epoch in ``<output_dir>/checkpoints``, or ``None``."""
    paths = list_checkpoints(Path(output_dir) / "checkpoints")
    return str(paths[-1]) if paths else None


def checkpoint_epoch(path: str | os.PathLike) -> int:
    """The epoch in a checkpoint file name ``checkpoint_epoch=<N>.pt``."""
    return int(Path(path).stem.split("=")[-1])


def read_training_checkpoint(path: str | os.PathLike, mmap: bool = False) -> dict:
    """``torch.load(path, weights_only=True)`` of a training checkpoint, on the CPU.

    Raises:
        DataError: the file is unreadable or corrupt (the message names it and says what to do).
    """
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:
        raise DataError(path, f"unreadable or corrupt training checkpoint ({type(err).__name__}: {str(err)[:200]}); "
                              "delete it to resume from an earlier one, or start a new run in another --output_dir") from err  # fmt: skip
