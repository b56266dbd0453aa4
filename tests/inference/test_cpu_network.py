from __future__ import annotations

import pytest
import torch

from monai_scribble.inference import WholeImageInferer
from monai_scribble.inference.cpu_network import WinogradConv2d, cpu_inference_network, fold_batch_norms
from monai_scribble.networks import MultiscaleUNet


def trained_like_network() -> MultiscaleUNet:
    """A small network whose batch norms hold non-trivial running statistics (as after training)."""
    torch.manual_seed(0)
    network = MultiscaleUNet()
    network.train()
    with torch.no_grad():
        for _ in range(2):
            network(torch.randn(2, 3, 64, 64) * 2 + 0.5)
    return network.eval()


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (2, 3, 96, 160)])
def test_same_logits_as_eager(shape):
    network = trained_like_network()
    fast = cpu_inference_network(network)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert sum(isinstance(m, WinogradConv2d) for m in fast.modules()) == 39
    x = torch.randn(*shape)
    with torch.inference_mode():
        expected, actual = network(x), fast(x)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in network.modules())  # the original is untouched


def test_inferer_fast_path_equal_and_training_network_untouched():
    network = trained_like_network()
    x = torch.randn(1, 3, 100, 70)
    exact = WholeImageInferer()(x, network)
    fast = WholeImageInferer(cpu_fast_path=True)(x, network)
    torch.testing.assert_close(fast, exact, rtol=1e-4, atol=1e-5)
    assert torch.equal(fast.argmax(1), exact.argmax(1))
    network.train()  # a training network is never rewritten: same arithmetic as without the option
    assert torch.equal(WholeImageInferer(cpu_fast_path=True)(x, network), WholeImageInferer()(x, network))


@pytest.mark.parametrize(
    "conv, supported",
    [
        (torch.nn.Conv2d(4, 4, 3, padding=1), True),
        (torch.nn.Conv2d(4, 4, 3, padding=1, stride=2), False),
        (torch.nn.Conv2d(4, 4, 1), False),
        (torch.nn.Conv2d(4, 4, 3, padding=1, groups=2), False),
        (torch.nn.Conv2d(4, 4, 3, padding=2, dilation=2), False),
        (torch.nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), False),
    ],
)
def test_winograd_supports(conv, supported):
    assert WinogradConv2d.supports(conv) is supported
    if not supported:
        with pytest.raises(ValueError, match="3x3, stride-1"):
            WinogradConv2d(conv)
        return
    x = torch.randn(2, 4, 17, 23)
    winograd = WinogradConv2d(conv)
    with torch.inference_mode():
        torch.testing.assert_close(winograd(x), conv(x), rtol=1e-4, atol=1e-5)
    y = x.clone().requires_grad_(True)  # with gradients: the autograd-capable F.conv2d path
    winograd(y).sum().backward()
    assert y.grad is not None


def test_fold_batch_norms_needs_eval_mode():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(MultiscaleUNet().train())


def test_segment_fast_path_same_instances():
    from monai_scribble.inference import segment

    network = trained_like_network()
    image = (torch.rand(3, 96, 80) * 255).round().numpy().astype("uint8").transpose(1, 2, 0)
    exact, exact_probability = segment(image, network, min_size=4, device="cpu", return_probabilities=True)
    fast, fast_probability = segment(image, network, min_size=4, device="cpu", return_probabilities=True, cpu_fast_path=True)
    assert (fast == exact).all()
    torch.testing.assert_close(torch.from_numpy(fast_probability), torch.from_numpy(exact_probability), rtol=1e-4, atol=1e-5)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in network.modules())  # a network passed in is copied, not rewritten


def bf16_error_bound(reference: torch.Tensor) -> float:
    """Logit tolerance of bf16 arithmetic through the network: 2 % of the logits' range (autocast stays well inside)."""
    return 0.02 * float(reference.abs().max())


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (2, 3, 96, 160)])
def test_bf16_network_close_to_fp32_and_autocast(shape):
    network = trained_like_network()
    fast = cpu_inference_network(network, dtype=torch.bfloat16)
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, WinogradConv2d)) for m in fast.modules())
    assert {p.dtype for p in fast.parameters()} == {torch.bfloat16}
    x = torch.randn(*shape)
    with torch.inference_mode():
        exact = network(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = network(x).float()
        actual = fast(x)
    assert actual.dtype == torch.float32 and actual.shape == exact.shape
    bound = bf16_error_bound(exact)
    assert float((actual - exact).abs().max()) < bound
    assert float((autocast - exact).abs().max()) < bound  # the same order of error as autocast
    margin = (exact[:, 1] - exact[:, 0]).abs() > 2 * bound  # pixels whose class bf16 rounding cannot flip
    assert margin.any() and torch.equal(actual.argmax(1)[margin], exact.argmax(1)[margin])
    assert {p.dtype for p in network.parameters()} == {torch.float32}  # the original is untouched


def test_cpu_inference_network_refuses_other_dtypes():
    with pytest.raises(ValueError, match="torch.float32 or torch.bfloat16, got torch.float16"):
        cpu_inference_network(trained_like_network(), dtype=torch.float16)


def test_inferer_and_segment_bf16_fast_path():
    from monai_scribble.inference import segment

    network = trained_like_network()
    x = torch.randn(1, 3, 100, 70)
    autocast = WholeImageInferer(amp_dtype=torch.bfloat16)(x, network)
    fast = WholeImageInferer(amp_dtype=torch.bfloat16, cpu_fast_path=True)(x, network)
    assert fast.dtype == torch.float32 and fast.shape == autocast.shape
    assert float((fast - autocast).abs().max()) < 2 * bf16_error_bound(autocast)
    image = (torch.rand(3, 96, 80) * 255).round().numpy().astype("uint8").transpose(1, 2, 0)
    _, exact = segment(image, network, min_size=4, device="cpu", return_probabilities=True)
    _, bf16 = segment(image, network, min_size=4, device="cpu", return_probabilities=True, amp_dtype=torch.bfloat16, cpu_fast_path=True)
    assert bf16.dtype == exact.dtype and float(abs(bf16 - exact).max()) < 0.01
    assert {p.dtype for p in network.parameters()} == {torch.float32}
