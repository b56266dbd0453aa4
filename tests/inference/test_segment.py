"""segment(): one call from images (files or arrays) to instance maps, with probabilities on request."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
import torch

from monai_scribble.errors import DataError
from monai_scribble.inference import foreground_to_instances, segment
from monai_scribble.networks import MultiscaleUNet


class DiskNet(torch.nn.Module):
    """Logits of a bright disk: nucleus where the image's first channel is above its mean."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fg = (x[:, :1] - x[:, :1].mean(dim=(2, 3), keepdim=True)) * 10.0
        return torch.cat([-fg, fg], dim=1)


def disk_image(size: tuple[int, int], centre: tuple[int, int], radius: int) -> np.ndarray:
    yy, xx = np.mgrid[: size[0], : size[1]]
    disk = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2
    return np.repeat((disk * 200 + 20).astype(np.uint8)[..., None], 3, axis=-1)


@pytest.mark.parametrize("shape", [(70, 45, 3), (64, 64), (33, 90, 4)])
def test_one_array_gives_one_instance_map_of_its_size(shape):
    image = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    instances = segment(image, model=DiskNet(), min_size=1)
    assert instances.shape == shape[:2] and instances.dtype == np.int32


def test_a_list_gives_a_list_and_probabilities_on_request():
    images = [disk_image((64, 64), (30, 30), 10), disk_image((50, 80), (25, 60), 8), disk_image((64, 64), (10, 50), 4)]
    maps, probabilities = segment(images, model=DiskNet(), return_probabilities=True, min_size=64)
    assert [m.max() for m in maps] == [1, 1, 0]  # the third disk (49 px) is removed at min_size 64, ...
    maps_small = segment(images, model=DiskNet(), min_size=10)
    assert [m.max() for m in maps_small] == [1, 1, 1]  # ... and kept at 10
    for image, instances, probability in zip(images, maps, probabilities):
        assert probability.shape == image.shape[:2] and 0.0 <= probability.min() <= probability.max() <= 1.0
        np.testing.assert_array_equal(instances, foreground_to_instances(probability > 0.5, min_size=64))


def test_a_model_file_or_folder_loads_the_trained_weights(tmp_path):
    torch.manual_seed(0)
    network = MultiscaleUNet().eval()
    (tmp_path / "models").mkdir()
    torch.save({"model": network.state_dict()}, tmp_path / "models" / "model.pt")
    image = disk_image((64, 64), (30, 30), 12)
    _, from_network = segment(image, model=network, return_probabilities=True)
    for model in (tmp_path / "models" / "model.pt", tmp_path / "models", tmp_path):
        _, from_file = segment(image, model=model, return_probabilities=True)
        np.testing.assert_array_equal(from_file, from_network)


def test_a_model_file_is_loaded_once_and_again_when_it_changes(tmp_path, monkeypatch):
    segment_module = importlib.import_module("monai_scribble.inference.segment")  # the package's `segment` is the function

    loads = []
    real_load = segment_module.load_network
    monkeypatch.setattr(segment_module, "load_network", lambda *args: loads.append(args[0]) or real_load(*args))
    segment_module._inference_network.cache_clear()
    image = disk_image((64, 64), (30, 30), 12)
    path = tmp_path / "model.pt"
    probabilities = []
    for seed in (0, 0, 1):  # the same file twice, then rewritten with other weights
        if seed not in (s for s, _ in probabilities):
            torch.manual_seed(seed)
            torch.save({"model": MultiscaleUNet().state_dict()}, path)
            os.utime(path, ns=(seed + 1, seed + 1))  # a distinct modification time even on coarse file systems
        probabilities.append((seed, segment(image, model=path, return_probabilities=True)[1]))
    assert len(loads) == 2  # not reloaded for the second call, reloaded after the rewrite
    np.testing.assert_array_equal(probabilities[0][1], probabilities[1][1])
    assert not np.array_equal(probabilities[1][1], probabilities[2][1])


@pytest.mark.parametrize("images, model, message", [
    ([], "m.pt", "images: no image to segment"),
    ("missing.png", DiskNet(), "missing.png: file not found"),
    (np.zeros((8, 8, 3), np.uint8), "nowhere/model.pt", "nowhere/model.pt: model file not found"),
])  # fmt: skip
def test_bad_input_names_what_is_wrong(images, model, message):
    with pytest.raises(DataError, match=message):
        segment(images, model=model)
