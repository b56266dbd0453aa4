"""WholeImageInferer: any input size in, logits of the same size out."""

from __future__ import annotations

import pytest
import torch

from monai_scribble.inference import WholeImageInferer
from monai_scribble.networks import MultiscaleUNet


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return MultiscaleUNet().eval()


@pytest.mark.parametrize("mode", ["pad", "sliding_window"])
@pytest.mark.parametrize("size", [(64, 64), (70, 45), (300, 96)])
def test_output_has_the_input_size(network, mode, size):
    with torch.no_grad():
        out = WholeImageInferer(mode=mode, roi_size=64)(torch.randn(1, 3, *size), network)
    assert out.shape == (1, 2, *size) and out.dtype == torch.float32


def test_pad_mode_is_the_network_on_the_zero_padded_image(network):
    image = torch.randn(1, 3, 50, 70)
    padded = torch.zeros(1, 3, 64, 96)
    padded[..., :50, :70] = image
    with torch.no_grad():
        torch.testing.assert_close(WholeImageInferer()(image, network), network(padded)[..., :50, :70])


@pytest.mark.parametrize("channels_last, amp_dtype, expected", [
    (None, None, True),  # CPU: channels-last inputs by default, also in fp32
    (False, None, False),
    (True, None, True),
    (None, torch.bfloat16, True),
])  # fmt: skip
def test_channels_last_inputs_on_cpu_by_default_with_the_same_logits(network, channels_last, amp_dtype, expected):
    seen = []

    def recording(x):
        seen.append(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
        return network(x)

    image = torch.randn(1, 3, 64, 64)
    logits = WholeImageInferer(channels_last=channels_last, amp_dtype=amp_dtype)(image, recording)
    assert seen == [expected]
    if amp_dtype is None:
        with torch.no_grad():
            torch.testing.assert_close(logits, network(image), atol=1e-5, rtol=1e-4)


def test_errors():
    with pytest.raises(ValueError, match="unknown inference mode 'tiles'"):
        WholeImageInferer(mode="tiles")
    with pytest.raises(ValueError, match=r"expected \(B, C, H, W\) inputs, got shape \(3, 32, 32\)"):
        WholeImageInferer()(torch.zeros(3, 32, 32), torch.nn.Identity())
