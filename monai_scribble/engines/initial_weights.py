"""Where training starts: a trained ``model.pt`` (``--init_from``: fine-tuning, the human-in-the-loop round).

ImageNet encoder weights are :class:`~monai_scribble.networks.MultiscaleUNet`'s own options (``encoder_layout``,
``pretrained_weights``); this module adds the network weights of an earlier run (README: Start from weights).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from monai_scribble.errors import ArgumentError
from monai_scribble.inference.model_file import load_model_file, model_file_path, read_model_file
from monai_scribble.networks.torchvision_resnet import ENCODER_LAYOUTS, encoder_layout_of_keys

__all__ = ["check_initial_weights", "init_from_model"]


def init_from_model(network: torch.nn.Module, init_from: str | os.PathLike | None = None) -> torch.nn.Module:
    """``network`` (in place) with the weights of the ``model.pt`` ``init_from``; unchanged for ``None``.

    Network weights only: the contrastive projection heads, the optimizer, the EMA pseudo-labels and the
    schedule start fresh. A resumed run's checkpoint is loaded after this and takes precedence.

    Args:
        network: the (unwrapped) segmentation network of the config.
        init_from: a ``model.pt`` written by training (or a folder holding ``model.pt`` / ``models/model.pt``).

    Raises:
        DataError: a missing, unreadable or non-fitting file (the message names it and what to do).
    """
    if init_from:
        load_model_file(model_file_path(init_from), network, map_location="cpu")
    return network


def check_initial_weights(
    encoder_layout: str, pretrained_weights: str | os.PathLike | None, pretrained: bool, init_from: str | os.PathLike | None
) -> None:
    """Check ``--encoder_layout``, ``--pretrained_weights``, ``--pretrained`` and ``--init_from`` together, before anything is written.

    ``--pretrained true`` downloads torchvision's ImageNet weights when the network is built (one line naming the URL
    and ``--pretrained_weights`` where the machine is offline).

    Raises:
        ArgumentError: an unknown layout, a missing file, ImageNet weights without the torchvision layout, or an
            ``init_from`` model of the other layout (the message says which flag to add).
        DataError: an unreadable ``init_from`` file.
    """
    if encoder_layout not in ENCODER_LAYOUTS:
        raise ArgumentError("encoder_layout", f"unknown value {encoder_layout!r}", f"choose one of {', '.join(ENCODER_LAYOUTS)}")
    if pretrained_weights:
        if not Path(pretrained_weights).is_file():
            raise ArgumentError("pretrained_weights", f"no file {str(pretrained_weights)!r}",
                                "download torchvision's ImageNet ResNet-34 checkpoint (README: Start from weights) and pass its path")  # fmt: skip
        if encoder_layout != "torchvision":
            raise ArgumentError("pretrained_weights", "holds torchvision ResNet weights, which need torchvision's encoder layout",
                                "add --encoder_layout torchvision")  # fmt: skip
    if pretrained and encoder_layout != "torchvision":
        raise ArgumentError("pretrained", "downloads torchvision's ImageNet weights, which need torchvision's encoder layout",
                            "add --encoder_layout torchvision")  # fmt: skip
    if init_from:
        path = model_file_path(init_from)
        if not path.is_file():
            raise ArgumentError("init_from", f"no model file {str(path)!r}", "pass a model.pt written by training (<output_dir>/models/model.pt)")
        weights, _ = read_model_file(path, map_location="cpu")  # a corrupt file is named now, not after the run has started
        layout = encoder_layout_of_keys(weights)
        if layout != encoder_layout:
            raise ArgumentError("init_from", f"{str(path)!r} holds a network with encoder_layout {layout!r}, this run builds {encoder_layout!r}",
                                f"add --encoder_layout {layout}")  # fmt: skip

