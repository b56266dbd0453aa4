"""TorchScript export as the model zoo's ``ckpt_export`` does it: the exported model gives the eager network's logits at any size."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from monai_scribble.networks import MultiscaleUNet
from monai_scribble.networks.shortcut import ZeroPadShortcut

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "scribble_cell_segmentation"


def test_the_shortcut_modules_compute_what_monai_computes():
    torch.manual_seed(0)
    ours = MultiscaleUNet().train()
    shortcuts = [m for m in ours.modules() if isinstance(m, ZeroPadShortcut)]
    assert [(s.planes, s.stride) for s in shortcuts] == [(128, 2), (256, 2), (512, 2)]  # ResNet-34's three type-A shortcuts
    x = torch.randn(2, 64, 32, 32, requires_grad=True)
    out = shortcuts[0](x)
    expected = torch.cat([x.data[:, :, ::2, ::2], torch.zeros(2, 64, 16, 16)], dim=1)  # MONAI's _downsample_basic_block
    assert torch.equal(out, expected) and not out.requires_grad  # no gradient through the shortcut, as MONAI's .data


@pytest.mark.slow
def test_ckpt_export_gives_a_torchscript_model_equal_to_the_eager_one(tmp_path):
    torch.manual_seed(0)
    network = MultiscaleUNet().eval()
    torch.save({"model": network.state_dict()}, tmp_path / "model.pt")
    command = [sys.executable, "-m", "monai.bundle", "ckpt_export", "network_def", "--filepath", str(tmp_path / "model.ts"),
               "--ckpt_file", str(tmp_path / "model.pt"), "--meta_file", "configs/metadata.json", "--config_file",
               "configs/inference.json", "--key_in_ckpt", "model", "--use_trace", "True", "--input_shape", "[1, 3, 256, 256]"]  # fmt: skip
    done = subprocess.run(command, cwd=BUNDLE, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    exported = torch.jit.load(str(tmp_path / "model.ts"))
    with torch.no_grad():
        for shape in [(1, 3, 256, 256), (2, 3, 384, 512), (1, 3, 96, 160)]:  # traced at 256²; any multiple of 32 works
            x = torch.randn(*shape)
            torch.testing.assert_close(exported(x), network(x), rtol=0, atol=1e-5)
