from __future__ import annotations

import re

import pytest
import torch

from monai_scribble.errors import DataError
from monai_scribble.networks import MultiscaleUNet
from monai_scribble.networks.torchvision_resnet import IMAGENET_WEIGHTS_URLS, encoder_layout_of_keys
from tests.conftest import is_online

STAGES = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}


def torchvision_resnet_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision's ``resnet18`` / ``resnet34`` state dict, written out from its architecture."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}

    def norm(prefix: str, channels: int) -> None:
        shapes.update({f"{prefix}.{name}": (channels,) for name in ("weight", "bias", "running_mean", "running_var")})
        shapes[f"{prefix}.num_batches_tracked"] = ()

    norm("bn1", 64)
    inplanes = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), STAGES[arch]), start=1):
        for block in range(blocks):
            prefix = f"layer{stage}.{block}"
            shapes[f"{prefix}.conv1.weight"] = (planes, inplanes, 3, 3)
            norm(f"{prefix}.bn1", planes)
            shapes[f"{prefix}.conv2.weight"] = (planes, planes, 3, 3)
            norm(f"{prefix}.bn2", planes)
            if block == 0 and stage > 1:
                shapes[f"{prefix}.downsample.0.weight"] = (planes, inplanes, 1, 1)
                norm(f"{prefix}.downsample.1", planes)
            inplanes = planes
    shapes.update({"fc.weight": (1000, 512), "fc.bias": (1000,)})
    return shapes


def torchvision_state_dict(arch: str = "resnet34", seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    def value(key: str, shape: tuple[int, ...]) -> torch.Tensor:
        if key.endswith("num_batches_tracked"):
            return torch.randint(0, 100, shape, generator=generator)
        if key.endswith("running_var"):
            return torch.rand(shape, generator=generator) + 0.5
        return torch.randn(shape, generator=generator) * 0.05

    return {key: value(key, shape) for key, shape in torchvision_resnet_shapes(arch).items()}


@pytest.mark.parametrize("arch", ["resnet18", "resnet34"])
def test_every_encoder_key_is_a_torchvision_key(arch):
    network = MultiscaleUNet(backbone=arch, encoder_layout="torchvision")
    expected = {k: v for k, v in torchvision_resnet_shapes(arch).items() if not k.startswith("fc.")}
    assert {k: tuple(v.shape) for k, v in network.encoder.state_dict().items()} == expected
    assert encoder_layout_of_keys(network.state_dict()) == "torchvision"
    assert encoder_layout_of_keys(MultiscaleUNet(backbone=arch).state_dict()) == "monai"


def test_resnet34_parameter_count_is_torchvisions_without_fc():
    tv = MultiscaleUNet(encoder_layout="torchvision").encoder
    monai = MultiscaleUNet().encoder
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(tv) == 21_797_672 - 513_000  # torchvision resnet34 minus its fc layer
    assert count(tv) - count(monai) == 173_824  # the type-B downsample convolutions and norms


def test_load_encoder_weights_sets_every_weight(tmp_path):
    state = torchvision_state_dict()
    path = tmp_path / "resnet34.pth"
    torch.save({"module." + k: v for k, v in state.items()}, path)  # a DataParallel-style save
    network = MultiscaleUNet(encoder_layout="torchvision", pretrained_weights=path)
    for key, value in network.encoder.state_dict().items():
        assert torch.equal(value, state[key]), key
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.isfinite(network.eval()(x)).all()


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.pop("layer3.2.conv2.weight"), "missing (1): layer3.2.conv2.weight"),
    (lambda s: s.update({"layer5.0.conv1.weight": torch.zeros(1)}), "unexpected (1): layer5.0.conv1.weight"),
    (lambda s: s.update({"layer2.0.downsample.0.weight": torch.zeros(128, 64, 3, 3)}),
     "shape (checkpoint vs encoder) (1): layer2.0.downsample.0.weight (128, 64, 3, 3) vs (128, 64, 1, 1)"),
])  # fmt: skip
def test_load_encoder_weights_refuses_a_foreign_checkpoint(edit, message):
    state = torchvision_state_dict()
    edit(state)
    network = MultiscaleUNet(encoder_layout="torchvision")
    before = {k: v.clone() for k, v in network.encoder.state_dict().items()}
    with pytest.raises(DataError, match=re.escape(f"my.pth: not a torchvision ResNet checkpoint of this encoder: {message}")):
        network.load_encoder_weights(state, source="my.pth")
    assert all(torch.equal(before[k], v) for k, v in network.encoder.state_dict().items())  # nothing half-loaded


def test_old_checkpoints_without_batch_counters_load():
    state = {k: v for k, v in torchvision_state_dict().items() if not k.endswith("num_batches_tracked")}
    network = MultiscaleUNet(encoder_layout="torchvision")
    network.load_encoder_weights(state)
    assert torch.equal(network.encoder.conv1.weight, state["conv1.weight"])


def test_resnet18_checkpoint_into_resnet34_is_refused():
    with pytest.raises(DataError, match="missing"):
        MultiscaleUNet(encoder_layout="torchvision").load_encoder_weights(torchvision_state_dict("resnet18"), source="resnet18.pth")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"encoder_layout": "timm"}, ValueError, "unknown encoder_layout 'timm'; choose one of monai, torchvision"),
    ({"encoder_layout": "torchvision", "backbone": "resnet50"}, ValueError, "available for resnet18, resnet34"),
    ({"pretrained_weights": "x.pth"}, ValueError, "use it with encoder_layout='torchvision'"),
    ({"pretrained": True}, ValueError, "use pretrained=True with encoder_layout='torchvision'"),
    ({"encoder_layout": "torchvision", "pretrained_weights": "/no/such/resnet34.pth"}, DataError, "/no/such/resnet34.pth: pretrained_weights file not found"),
])  # fmt: skip
def test_bad_weight_options(kwargs, error, message):
    with pytest.raises(error, match=message):
        MultiscaleUNet(**kwargs)


def test_unreadable_weights_file(tmp_path):
    path = tmp_path / "resnet34.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot be read as a torch checkpoint"):
        MultiscaleUNet(encoder_layout="torchvision", pretrained_weights=path)


@pytest.mark.skipif(is_online(), reason="this machine is online: the offline error cannot be observed (the download would run)")
def test_pretrained_offline_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached file: the real download is attempted
    with pytest.raises(DataError) as raised:
        MultiscaleUNet(encoder_layout="torchvision", pretrained=True)
    text = str(raised.value)
    assert text.startswith(IMAGENET_WEIGHTS_URLS["resnet34"]) and "--pretrained_weights PATH" in text
    assert "\n" not in text
