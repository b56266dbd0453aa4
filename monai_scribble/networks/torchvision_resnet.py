"""ResNet encoders in torchvision's layout (type-B shortcuts), so ImageNet checkpoints load into the U-Net.

MONAI's 2-D ``resnet18`` / ``resnet34`` FlexibleUNet encoders use type-A shortcuts (subsample and zero-pad the
channels, no parameters): 21.11 M parameters for ResNet-34, exactly torchvision's minus the 173,824 of its 1x1
``downsample`` convolutions and batch norms, so torchvision / timm ImageNet checkpoints do not fit them. The
encoder here is MONAI's own ``ResNet`` built with ``shortcut_type="B"`` and no bias in the shortcut convolution:
its state-dict keys and shapes are torchvision's, the classifier ``fc`` aside (docs/method.md#imagenet-encoder).

Registered as FlexibleUNet backbones ``resnet18_torchvision`` and ``resnet34_torchvision``;
:class:`~monai_scribble.networks.MultiscaleUNet` selects them with ``encoder_layout="torchvision"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from monai.networks.blocks import BaseEncoder
from monai.networks.nets.flexible_unet import FLEXUNET_BACKBONE
from monai.networks.nets.resnet import ResNet, ResNetFeatures, get_inplanes

__all__ = [
    "ENCODER_LAYOUTS",
    "IMAGENET_WEIGHTS_URLS",
    "TorchvisionResNetEncoder",
    "encoder_layout_of_keys",
    "encoder_state_dict_from_torchvision",
]

ENCODER_LAYOUTS = ("monai", "torchvision")
"""``"monai"``: MONAI's type-A ResNet (the default); ``"torchvision"``: type-B shortcuts, ImageNet-loadable."""

TORCHVISION_LAYERS: dict[str, list[int]] = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}
"""Blocks per stage of the ResNets (basic blocks) offered in torchvision's layout."""

IMAGENET_WEIGHTS_URLS: dict[str, str] = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
}
"""torchvision's ImageNet-1k (``IMAGENET1K_V1``) checkpoints of the offered ResNets."""


class TorchvisionResNetEncoder(ResNetFeatures, BaseEncoder):
    """A FlexibleUNet encoder: MONAI's ``ResNet`` with torchvision's type-B shortcuts (1x1 conv without bias + BN).

    Args:
        model_name: ``"resnet18_torchvision"`` or ``"resnet34_torchvision"``.
        pretrained: must be ``False`` (weights are loaded by :class:`~monai_scribble.networks.MultiscaleUNet`).
        spatial_dims: 2.
        in_channels: input channels (3 for ImageNet weights).

    Raises:
        ValueError: another backbone, ``pretrained=True`` or ``spatial_dims != 2`` (the message says which).
    """

    backbone_names = [f"{name}_torchvision" for name in TORCHVISION_LAYERS]

    def __init__(self, model_name: str, pretrained: bool = False, spatial_dims: int = 2, in_channels: int = 3) -> None:
        name = model_name.removesuffix("_torchvision")
        if name not in TORCHVISION_LAYERS:
            raise ValueError(f"torchvision-layout encoders are {self.backbone_names}, got '{model_name}'")
        if pretrained or spatial_dims != 2:
            raise ValueError(
                f"TorchvisionResNetEncoder is 2-D and loads no weights itself, got spatial_dims={spatial_dims}, pretrained={pretrained}; "
                "pass pretrained / pretrained_weights to MultiscaleUNet"
            )
        # ResNetFeatures.__init__ takes MONAI's type-A settings for resnet18/34; build the ResNet it wraps directly
        ResNet.__init__(
            self, block="basic", layers=TORCHVISION_LAYERS[name], block_inplanes=get_inplanes(), spatial_dims=2,
            n_input_channels=in_channels, conv1_t_stride=2, shortcut_type="B", feed_forward=False, bias_downsample=False,
        )  # fmt: skip

    @classmethod
    def get_encoder_parameters(cls) -> list[dict]:
        """Initialisation parameters of each backbone (FlexibleUNet's registry)."""
        return [{"model_name": name, "pretrained": False, "spatial_dims": 2, "in_channels": 3} for name in cls.backbone_names]

    @classmethod
    def num_channels_per_output(cls) -> list[tuple[int, ...]]:
        """Channels of the five feature maps of each backbone."""
        return [(64, 64, 128, 256, 512)] * len(cls.backbone_names)

    @classmethod
    def num_outputs(cls) -> list[int]:
        """Feature maps per backbone (5)."""
        return [5] * len(cls.backbone_names)

    @classmethod
    def get_encoder_names(cls) -> list[str]:
        """The registered backbone names."""
        return list(cls.backbone_names)


if TorchvisionResNetEncoder.backbone_names[0] not in FLEXUNET_BACKBONE.register_dict:
    FLEXUNET_BACKBONE.register_class(TorchvisionResNetEncoder)


def encoder_layout_of_keys(keys: Iterable[str]) -> str:
    """``"torchvision"`` if a U-Net state dict's encoder has type-B shortcut weights (``encoder.layerN.0.downsample.*``), else ``"monai"``."""
    return "torchvision" if any(k.startswith("encoder.layer") and ".downsample." in k for k in keys) else "monai"


def encoder_state_dict_from_torchvision(state_dict: Mapping[str, torch.Tensor], encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The encoder state dict in a torchvision ResNet checkpoint: every encoder key matched, shapes checked.

    torchvision's names are the encoder's (``conv1``, ``bn1``, ``layerN.M.{conv1,bn1,conv2,bn2,downsample.0,downsample.1}``);
    its classifier ``fc.*`` is dropped and a ``module.`` prefix (a ``DataParallel`` save) removed. Batch-norm
    ``num_batches_tracked`` counters, absent from older checkpoints, keep the encoder's values.

    Args:
        state_dict: a torchvision ResNet state dict (e.g. ``resnet34-b627a593.pth``).
        encoder: the :class:`TorchvisionResNetEncoder` to load into.

    Returns:
        A state dict for ``encoder.load_state_dict(..., strict=True)``.

    Raises:
        ValueError: keys missing from the checkpoint, keys it has that the encoder lacks, or different shapes
            (each listed, up to five of a kind), so nothing is skipped silently.
    """
    own = encoder.state_dict()
    weights = {key.removeprefix("module."): value for key, value in state_dict.items()}
    weights = {key: value for key, value in weights.items() if not key.startswith("fc.")}
    for key in own:
        if key.endswith("num_batches_tracked") and key not in weights:
            weights[key] = own[key]
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    mismatched = [f"{k} {tuple(weights[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in weights and weights[k].shape != own[k].shape]
    problems = [f"{what} ({len(keys)}): {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
                for what, keys in (("missing", missing), ("unexpected", unexpected), ("shape (checkpoint vs encoder)", mismatched)) if keys]  # fmt: skip
    if problems:
        raise ValueError("not a torchvision ResNet checkpoint of this encoder: " + "; ".join(problems))
    return weights
