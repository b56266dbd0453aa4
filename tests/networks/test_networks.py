from __future__ import annotations

import pytest
import torch

from monai_scribble.networks import DECODER_FEATURES, MultiscaleUNet, ProjectionHead


@pytest.fixture(scope="module")
def network() -> MultiscaleUNet:
    torch.manual_seed(0)
    return MultiscaleUNet(feature_names=tuple(DECODER_FEATURES)).eval()


@pytest.mark.parametrize("height, width", [(256, 256), (320, 256), (64, 96)])
def test_feature_shapes(network, height, width):
    with torch.no_grad():
        logits, features = network.forward_features(torch.randn(1, 3, height, width))
    assert logits.shape == (1, 2, height, width)
    expected = {"d1": (256, 16), "d2": (128, 8), "d3": (64, 4), "d4": (32, 2), "d5": (16, 1)}
    for name, (channels, stride) in expected.items():
        assert features[name].shape == (1, channels, height // stride, width // stride), name


def test_forward_is_plain_logits_and_matches_forward_features(network):
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(network(x), network.forward_features(x)[0])
        logits, features = network(x, return_features=True)  # through forward, as DistributedDataParallel needs
        expected_logits, expected_features = network.forward_features(x)
    torch.testing.assert_close(logits, expected_logits)
    assert features.keys() == expected_features.keys()


def test_default_features_are_the_papers():
    net = MultiscaleUNet()
    assert net.feature_names == ("d5", "d3")
    assert (net.feature_channels["d5"], net.feature_channels["d3"]) == (16, 64)
    assert net.segmentation_head[0].kernel_size == (1, 1)


@pytest.mark.parametrize("shape", [(1, 3, 250, 250), (1, 3, 256, 250), (1, 3, 48, 64)])
def test_sides_not_multiple_of_32(network, shape):
    with pytest.raises(ValueError, match=rf"input spatial size \({shape[2]}, {shape[3]}\) must be a multiple of 32"):
        network(torch.randn(*shape))
    with pytest.raises(ValueError, match="multiple of 32"):
        network.forward_features(torch.randn(*shape))


def test_unknown_feature_name():
    with pytest.raises(ValueError, match=r"unknown decoder features \['d6'\]"):
        MultiscaleUNet(feature_names=("d6",))


def test_state_dict_loads_into_plain_flexible_unet_keys():
    """The deployable network has the same parameter names as FlexibleUNet (head kernel aside)."""
    from monai.networks.nets import FlexibleUNet

    ours = MultiscaleUNet().state_dict()
    theirs = FlexibleUNet(in_channels=3, out_channels=2, backbone="resnet34", pretrained=False).state_dict()
    assert set(ours) == set(theirs)


@pytest.mark.parametrize("in_ch, hidden, out", [(16, 16, 32), (64, 32, 32), (8, 4, 2)])
def test_projection_head(in_ch, hidden, out):
    head = ProjectionHead(in_ch, hidden, out)
    layers = [type(m).__name__ for m in head]
    assert layers == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d"]
    y = head(torch.randn(4, in_ch, 8, 8))
    assert y.shape == (4, out, 8, 8)
    assert (y < 0).any()  # no ReLU after the final BN


def test_projection_head_errors():
    with pytest.raises(ValueError, match=r"expected \(B, 16, H, W\) features, got shape \(2, 8, 4, 4\)"):
        ProjectionHead(16, 16, 32)(torch.randn(2, 8, 4, 4))
    with pytest.raises(ValueError, match="hidden_channels must be >= 1"):
        ProjectionHead(16, 0, 32)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(2, 16, 32, 32), (3, 64, 8, 12)])
def test_projection_head_forward_at_equals_full_head(training, shape):
    torch.manual_seed(0)
    full, sparse = ProjectionHead(shape[1], 16, 32), ProjectionHead(shape[1], 16, 32)
    sparse.load_state_dict(full.state_dict())
    full.train(training)
    sparse.train(training)
    x = torch.randn(*shape) * 3 + 1
    x_full, x_sparse = x.clone().requires_grad_(), x.clone().requires_grad_()
    index = torch.randperm(shape[0] * shape[2] * shape[3], generator=torch.Generator().manual_seed(1))[:50]
    expected = full(x_full).permute(0, 2, 3, 1).reshape(-1, 32)[index]
    actual = sparse.forward_at(x_sparse, index)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
    weights = torch.randn_like(expected)
    (expected * weights).sum().backward()
    (actual * weights).sum().backward()
    torch.testing.assert_close(x_sparse.grad, x_full.grad, rtol=1e-4, atol=1e-5)
    for (name, p), q in zip(full.named_parameters(), sparse.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-4, msg=name)
    for (name, b), c in zip(full.named_buffers(), sparse.buffers()):  # running statistics updated alike
        torch.testing.assert_close(c, b, rtol=1e-5, atol=1e-6, msg=name)
