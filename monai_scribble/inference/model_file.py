"""``model.pt`` files: read checked (``weights_only=True``) with their metadata, and loaded into a network.

``model.pt`` holds ``{"model": state_dict}`` (MONAI Label / model-zoo convention), optionally with
``"metadata": {"dataset": ..., "method": ..., "epoch": ..., "metric": ..., "value": ...}`` written by
training. A missing, corrupt or mismatched file stops with one :class:`DataError` line naming the file and
what to do, and a model trained on the synthetic demo data is announced with a warning.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from monai_scribble.errors import DataError
from monai_scribble.networks.torchvision_resnet import encoder_layout_of_keys

__all__ = ["DEMO_DATASET", "describe", "encoder_layout_of", "load_model_file", "model_file_path", "read_model_file"]

logger = logging.getLogger(__name__)

DEMO_DATASET = "synthetic"
"""``metadata["dataset"]`` of a model trained on the embedded synthetic demo."""


def read_model_file(path: str | os.PathLike, map_location: str | torch.device | None = "cpu", mmap: bool = False) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state_dict, metadata)`` of a ``model.pt``, loaded with ``weights_only=True``.

    Accepts ``{"model": state_dict, "metadata": {...}}``, ``{"model": state_dict}`` (metadata ``{}``)
    and a bare state dict. ``mmap``: map the tensors instead of reading them (for the keys, shapes and metadata only).

    Raises:
        DataError: the file is missing, unreadable or holds no network weights (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            path,
            "model file not found: train a model first (README: Training) and pass --ckpt_dir <training output_dir>/models, "
            "or copy that model.pt into this folder",
        )
    try:
        state = torch.load(str(path), map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for bad files
        reason = (str(err).strip().splitlines() or [""])[0].split(". ")[0][:150]
        if "Weights only load failed" in reason:
            reason += " (it holds objects other than tensors and plain Python values)"
        raise DataError(path, f"cannot be read as a model file (corrupt, truncated or not written by torch.save): {type(err).__name__}: {reason}") from None
    weights = state.get("model", state) if isinstance(state, dict) else None
    if not isinstance(weights, dict) or not weights or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        keys = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
        raise DataError(path, f"holds no network weights under 'model' (found {keys}); pass a model.pt written by training (<output_dir>/models/model.pt), not a training checkpoint")
    metadata = state.get("metadata") if "model" in state else None
    return weights, dict(metadata) if isinstance(metadata, dict) else {}


def describe(metadata: dict) -> str:
    """``"trained on monuseg, s2l_r1r4, epoch 80, iou 0.6120"`` from what ``metadata`` holds (``""`` if nothing)."""
    parts = [f"trained on {metadata['dataset']}"] if "dataset" in metadata else []
    parts += [str(metadata["method"])] if "method" in metadata else []
    parts += [f"epoch {metadata['epoch']}"] if "epoch" in metadata else []
    if "metric" in metadata and isinstance(metadata.get("value"), (int, float)):
        parts.append(f"{metadata['metric']} {metadata['value']:.4f}")
    return ", ".join(parts)


def model_file_path(model: str | os.PathLike) -> Path:
    """The ``model.pt`` that ``model`` names: the file itself, or ``model.pt`` / ``models/model.pt`` in a folder."""
    path = Path(model)
    if path.is_dir():
        candidates = [path / "model.pt", path / "models" / "model.pt"]
        path = next((c for c in candidates if c.is_file()), candidates[0])
    return path


def encoder_layout_of(path: str | os.PathLike | None) -> str:
    """The ``encoder_layout`` of the network in the ``model.pt`` at ``path`` (``"monai"`` or ``"torchvision"``).

    ``"monai"`` (the default layout) for ``None`` or a missing / unreadable file: loading that file then names the problem.
    Only the keys are read (the file is memory-mapped), so a config that asks for the layout and then loads the weights
    does not read the weights twice.
    """
    if not path or not Path(path).is_file():
        return "monai"
    try:
        weights, _ = read_model_file(path, map_location="cpu", mmap=True)
    except DataError:
        return "monai"
    return encoder_layout_of_keys(weights)


def load_model_file(path: str | os.PathLike, network: torch.nn.Module, map_location: str | torch.device | None = "cpu", strict: bool = True) -> dict:
    """Load the weights of the ``model.pt`` at ``path`` into ``network``; returns the file's metadata.

    Args:
        path: the ``model.pt``.
        network: the (unwrapped) network.
        map_location: device for the loaded tensors.
        strict: every weight of the network must be in the file and vice versa.

    Raises:
        DataError: a missing, unreadable or non-fitting file (the message names it and what to do).
    """
    weights, metadata = read_model_file(path, map_location)
    own = network.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    mismatched = [k for k in own if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)]
    if mismatched or (strict and (missing or unexpected)):
        first = (mismatched + missing + unexpected)[0]
        layout, expected = encoder_layout_of_keys(weights), encoder_layout_of_keys(own)
        hint = f"it was trained with --encoder_layout {layout}, pass that" if layout != expected else "was it trained with another network_def?"
        raise DataError(
            path,
            f"does not fit the network of the config ({len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(mismatched)} differently shaped weights, e.g. '{first}'): {hint}",
        )
    network.load_state_dict(weights, strict=strict)
    about = describe(metadata)
    logger.info("loaded %s%s", path, f" ({about})" if about else "")
    if metadata.get("dataset") == DEMO_DATASET:
        logger.warning(
            "%s was trained on the synthetic demo data; it is meant to show the workflow, not to segment real images "
            "— train on your data (README: Training on your own data)",
            path,
        )
    return metadata
