"""FlexibleUNet (ResNet-34 encoder) that can also hand named decoder features to the trainer.

Reference: Oh, Lee & Jeong, "Scribble-supervised cell segmentation using multiscale contrastive
regularization", ISBI 2022, Sec. 3.2 (docs/method.md#network). For a ``256 x 256`` input the decoder blocks give::

    d1: 256 @ 16^2   (1/16)      d2: 128 @ 32^2  (1/8)      d3: 64 @ 64^2  (1/4)
    d4:  32 @ 128^2  (1/2)       d5:  16 @ 256^2 (1/1)

The contrastive regularization uses ``d5`` (δ=1 term) and ``d3`` (δ=4 term) by default.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from monai.networks.nets import FlexibleUNet
from monai.networks.nets.flexible_unet import SegmentationHead

from monai_scribble.errors import DataError
from monai_scribble.networks.shortcut import use_shortcut_modules
from monai_scribble.networks.torchvision_resnet import (
    ENCODER_LAYOUTS,
    IMAGENET_WEIGHTS_URLS,
    TORCHVISION_LAYERS,
    encoder_state_dict_from_torchvision,
)

__all__ = ["DECODER_FEATURES", "MultiscaleUNet"]

DECODER_FEATURES: dict[str, int] = {"d1": 0, "d2": 1, "d3": 2, "d4": 3, "d5": 4}
"""Feature name -> index of the decoder block whose output it is."""

DECODER_STRIDES: dict[str, int] = {"d1": 16, "d2": 8, "d3": 4, "d4": 2, "d5": 1}
"""Feature name -> downsampling factor of that decoder block's output relative to the input."""


class MultiscaleUNet(FlexibleUNet):
    """``FlexibleUNet`` whose ``forward`` returns logits and ``forward_features`` also returns decoder features.

    The plain ``forward`` makes the network deployable as an ordinary bundle ``network_def``; the trainer
    calls ``network(x, return_features=True)`` (:meth:`forward_features`) to get the decoder blocks the
    contrastive loss needs.

    Args:
        in_channels: input channels (3 for RGB).
        out_channels: output logits (2: background, nucleus).
        backbone: FlexibleUNet backbone name.
        decoder_channels: channels of the five decoder blocks.
        pretrained: with ``encoder_layout="torchvision"``, download torchvision's ImageNet weights of the encoder
            (needs a connection; offline, pass ``pretrained_weights``). MONAI's own 2-D ResNets have none.
        feature_names: decoder blocks returned by :meth:`forward_features`, from :data:`DECODER_FEATURES`.
        head_kernel_size: kernel of the segmentation head (1 as in the paper's code; FlexibleUNet uses 3).
        spatial_dims: 2.
        encoder_layout: ``"monai"`` (MONAI's type-A ResNet, the default) or ``"torchvision"`` (type-B shortcuts, as
            torchvision's ResNets: ImageNet checkpoints load; :mod:`~monai_scribble.networks.torchvision_resnet`).
        pretrained_weights: a torchvision ResNet checkpoint file of the encoder (e.g. ``resnet34-b627a593.pth``,
            downloaded from :data:`~monai_scribble.networks.torchvision_resnet.IMAGENET_WEIGHTS_URLS`); needs
            ``encoder_layout="torchvision"``. Every encoder weight is loaded from it (checked key by key).
        kwargs: passed to :class:`monai.networks.nets.FlexibleUNet`.

    Raises:
        ValueError: an unknown ``encoder_layout``, or weights asked for a layout or backbone that has none.
        DataError: ``pretrained_weights`` missing, unreadable or not a checkpoint of this encoder; a failed download.

    Example::

        network = MultiscaleUNet(encoder_layout="torchvision", pretrained_weights="resnet34-b627a593.pth")

    Input sides must be multiples of 32 (the encoder downsamples five times); whole-image inference
    pads images before calling the network. The encoder's type-A shortcuts are
    :class:`~monai_scribble.networks.shortcut.ZeroPadShortcut` modules (the same computation as MONAI's), so
    ``torch.jit.trace`` gives a model for any input size (``ckpt_export --use_trace``).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 2,
        backbone: str = "resnet34",
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        pretrained: bool = False,
        feature_names: Sequence[str] = ("d5", "d3"),
        head_kernel_size: int = 1,
        spatial_dims: int = 2,
        encoder_layout: str = "monai",
        pretrained_weights: str | os.PathLike | None = None,
        **kwargs,
    ) -> None:
        if encoder_layout not in ENCODER_LAYOUTS:
            raise ValueError(f"unknown encoder_layout '{encoder_layout}'; choose one of {', '.join(ENCODER_LAYOUTS)}")
        torchvision_layout = encoder_layout == "torchvision"
        if torchvision_layout and backbone not in TORCHVISION_LAYERS:
            raise ValueError(f"encoder_layout 'torchvision' is available for {', '.join(TORCHVISION_LAYERS)}, got backbone '{backbone}'")
        if pretrained_weights and not torchvision_layout:
            raise ValueError("pretrained_weights holds torchvision ResNet weights: use it with encoder_layout='torchvision'")
        if pretrained and not torchvision_layout and spatial_dims == 2:
            raise ValueError("MONAI's 2-D ResNets have no pretrained weights: use pretrained=True with encoder_layout='torchvision' (ImageNet)")
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            backbone=f"{backbone}_torchvision" if torchvision_layout else backbone,
            pretrained=pretrained and not torchvision_layout,
            decoder_channels=tuple(decoder_channels),
            spatial_dims=spatial_dims,
            **kwargs,
        )
        if len(self.decoder.blocks) != len(DECODER_FEATURES):
            raise ValueError(f"backbone '{backbone}' gives {len(self.decoder.blocks)} decoder blocks, expected 5")
        unknown = [name for name in feature_names if name not in DECODER_FEATURES]
        if unknown:
            raise ValueError(f"unknown decoder features {unknown}; choose from {list(DECODER_FEATURES)}")
        self.feature_names = tuple(feature_names)
        self.feature_channels = {name: int(decoder_channels[i]) for name, i in DECODER_FEATURES.items()}
        if head_kernel_size != 3:
            self.segmentation_head = SegmentationHead(
                spatial_dims=spatial_dims, in_channels=decoder_channels[-1], out_channels=out_channels, kernel_size=head_kernel_size
            )
        use_shortcut_modules(self.encoder)  # the same shortcuts as modules: the network traces at any input size
        self.encoder_layout = encoder_layout
        self.backbone_name = backbone
        if pretrained_weights:
            self.load_encoder_weights(_read_torchvision_checkpoint(pretrained_weights), source=str(pretrained_weights))
        elif torchvision_layout and pretrained:
            self.load_encoder_weights(_download_imagenet_weights(backbone), source=IMAGENET_WEIGHTS_URLS[backbone])

    def load_encoder_weights(self, state_dict: dict[str, torch.Tensor], source: str = "state dict") -> None:
        """Load a torchvision ResNet state dict into the encoder (torchvision layout), every key checked.

        Raises:
            DataError: ``source`` is not a checkpoint of this encoder (missing / unexpected keys, shapes listed).
        """
        if self.encoder_layout != "torchvision":
            raise ValueError("torchvision ResNet weights load into encoder_layout='torchvision' only")
        try:
            weights = encoder_state_dict_from_torchvision(state_dict, self.encoder)
        except ValueError as err:
            raise DataError(source, f"{err}; pass torchvision's {self.backbone_name} checkpoint ({IMAGENET_WEIGHTS_URLS[self.backbone_name]})") from None
        self.encoder.load_state_dict(weights, strict=True)

    @staticmethod
    def check_input(x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(B, C, H, W)`` with ``H`` and ``W`` multiples of 32."""
        if x.ndim != 4:
            raise ValueError(f"expected a (B, C, H, W) input, got shape {tuple(x.shape)}")
        if x.shape[-2] % 32 or x.shape[-1] % 32:
            raise ValueError(
                f"input spatial size {tuple(x.shape[-2:])} must be a multiple of 32 on each side; "
                "pad the image (e.g. monai.transforms.DivisiblePad(k=32)) or use whole-image inference"
            )

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits ``(B, out_channels, H, W)`` for ``x`` of shape ``(B, in_channels, H, W)``.

        With ``return_features=True``, the same as :meth:`forward_features` (through ``forward``, so a
        ``DistributedDataParallel`` wrapper sees the call and synchronises the gradients).
        """
        if return_features:
            return self.forward_features(x)
        self.check_input(x)
        return super().forward(x)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and the decoder features named in ``feature_names``.

        Args:
            x: ``(B, in_channels, H, W)``, ``H`` and ``W`` multiples of 32.

        Returns:
            ``(logits, features)``: logits ``(B, out_channels, H, W)`` and ``{name: (B, C_name, H/s, W/s)}``
            with ``s`` the block's stride (:data:`DECODER_STRIDES`).
        """
        self.check_input(x)
        encoded = self.encoder(x)
        skips = encoded[:-1][::-1]
        h = encoded[-1]
        wanted = {DECODER_FEATURES[name]: name for name in self.feature_names}
        features: dict[str, torch.Tensor] = {}
        for index, block in enumerate(self.decoder.blocks):  # same wiring as monai's UNetDecoder.forward
            h = block(h, skips[index] if index < self.skip_connect else None)
            if index in wanted:
                features[wanted[index]] = h
        return self.segmentation_head(h), features


def _read_torchvision_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in a torchvision checkpoint file (a bare state dict, or one under ``"state_dict"`` / ``"model"``)."""
    if not Path(path).is_file():
        raise DataError(path, "pretrained_weights file not found; download torchvision's ImageNet ResNet checkpoint "
                              f"(e.g. {IMAGENET_WEIGHTS_URLS['resnet34']}) and pass its path")  # fmt: skip
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a corrupt or foreign file
        raise DataError(path, f"cannot be read as a torch checkpoint ({type(err).__name__}); download it again") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(path, "holds no state dict of tensors; pass a torchvision ResNet checkpoint (.pth)")
    return state


def _download_imagenet_weights(backbone: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights of ``backbone`` through ``torch.hub`` (cached in ``$TORCH_HOME``)."""
    url = IMAGENET_WEIGHTS_URLS[backbone]
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=False, weights_only=True)
    except Exception as err:  # URLError, HTTPError, timeouts, ...: all mean "no weights from the net"
        raise DataError(url, f"cannot download the ImageNet weights ({type(err).__name__}: {err}); on a machine without "
                             "internet, download the file elsewhere and pass it as pretrained_weights (--pretrained_weights PATH)") from None
