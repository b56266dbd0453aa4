"""Networks: the segmentation network with decoder feature taps, and the contrastive projection head."""

from __future__ import annotations

from monai_scribble.networks.multiscale_unet import DECODER_FEATURES, MultiscaleUNet
from monai_scribble.networks.projection_head import ProjectionHead

__all__ = ["DECODER_FEATURES", "MultiscaleUNet", "ProjectionHead"]
