"""ModelLoader / read_model_file: model.pt files of every kind, good and bad, on a tiny network."""

from __future__ import annotations

import collections
import logging

import pytest
import torch
from ignite.engine import Engine

from monai_scribble.errors import DataError
from monai_scribble.handlers import ModelLoader
from monai_scribble.inference import read_model_file

WARNING = "was trained on the synthetic demo data; it is meant to show the workflow, not to segment real images"


def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))


WEIGHTS = tiny().state_dict()


@pytest.mark.parametrize(
    "content, metadata",
    [
        ({"model": WEIGHTS, "metadata": {"dataset": "monuseg", "method": "s2l_r1r4", "epoch": 80, "metric": "iou", "value": 0.61}}, {"dataset": "monuseg", "method": "s2l_r1r4", "epoch": 80, "metric": "iou", "value": 0.61}),
        ({"model": WEIGHTS}, {}),  # older files, MONAI Label / model-zoo files
        (dict(WEIGHTS), {}),  # a bare state dict
    ],
    ids=["with-metadata", "without-metadata", "bare-state-dict"],
)
def test_loads_weights_and_metadata(tmp_path, content, metadata):
    torch.save(content, tmp_path / "model.pt")
    network = tiny()
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
    loader = ModelLoader(tmp_path / "model.pt", network)
    engine = Engine(lambda e, b: None)
    loader.attach(engine)
    engine.run([0], max_epochs=1)
    assert loader.metadata == metadata
    for key, value in WEIGHTS.items():
        assert torch.equal(network.state_dict()[key], value), key


class NotWeights:
    """A pickled object that weights_only=True refuses."""


@pytest.mark.parametrize(
    "write, message",
    [
        (None, "model file not found: train a model first .* pass --ckpt_dir <training output_dir>/models"),
        (lambda p: p.write_bytes(b"not a torch file"), "cannot be read as a model file \\(corrupt"),
        (lambda p: (torch.save({"model": WEIGHTS}, p), p.write_bytes(p.read_bytes()[:500])), "cannot be read as a model file \\(corrupt, truncated"),
        (lambda p: torch.save({"model": WEIGHTS, "extra": NotWeights()}, p), "Weights only load failed \\(it holds objects other than tensors"),
        (lambda p: p.mkdir(), "model file not found"),
        (lambda p: torch.save({"network": WEIGHTS, "optimizer": {"state": {}}}, p), "holds no network weights under 'model' \\(found \\['network', 'optimizer'\\]\\).*not a training checkpoint"),
        (lambda p: torch.save([1, 2], p), "holds no network weights under 'model' \\(found list\\)"),
    ],
    ids=["missing", "garbage", "truncated", "not-weights-only", "a-folder", "training-checkpoint", "a-list"],
)
def test_bad_model_files_name_the_file(tmp_path, write, message):
    path = tmp_path / "model.pt"
    if write:
        write(path)
    with pytest.raises(DataError, match=message) as err:
        read_model_file(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "weights, strict, message",
    [
        ({k: v for k, v in WEIGHTS.items() if k != "1.bias"}, True, "1 missing, 0 unexpected, 0 differently shaped weights, e.g. '1.bias'"),
        ({**WEIGHTS, "2.weight": torch.zeros(1)}, True, "0 missing, 1 unexpected, 0 differently shaped weights, e.g. '2.weight'"),
        ({**WEIGHTS, "0.weight": torch.zeros(8, 3, 1, 1)}, False, "0 missing, 0 unexpected, 1 differently shaped weights, e.g. '0.weight'"),
    ],
    ids=["missing-key", "unexpected-key", "shape-mismatch-even-if-not-strict"],
)
def test_a_model_of_another_network_is_refused(tmp_path, weights, strict, message):
    torch.save({"model": weights}, tmp_path / "model.pt")
    with pytest.raises(DataError, match=f"does not fit the network of the config \\({message}\\): was it trained with another network_def"):
        ModelLoader(tmp_path / "model.pt", tiny(), strict=strict)()


@pytest.mark.parametrize(
    "metadata, warned",
    [({"dataset": "synthetic", "method": "s2l_r1r4"}, True), ({"dataset": "monuseg"}, False), ({"dataset": "folder"}, False), (None, False)],
    ids=["synthetic", "monuseg", "folder", "no-metadata"],
)
def test_synthetic_demo_model_is_announced(tmp_path, caplog, metadata, warned):
    content = {"model": WEIGHTS} if metadata is None else {"model": WEIGHTS, "metadata": metadata}
    torch.save(content, tmp_path / "model.pt")
    with caplog.at_level(logging.INFO, logger="monai_scribble"):
        ModelLoader(tmp_path / "model.pt", tiny())()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ([f"{tmp_path / 'model.pt'} {WARNING} — train on your data (README: Training on your own data)"] if warned else [])
    assert f"loaded {tmp_path / 'model.pt'}" in caplog.text


def test_metadata_survives_weights_only_loading(tmp_path):
    """The metadata training writes is plain Python values, so weights_only=True loads it back as given."""
    metadata = collections.OrderedDict(dataset="dsb_fluo", method="supervised", epoch=3, metric="scribble", value=0.875)
    torch.save({"model": WEIGHTS, "metadata": metadata}, tmp_path / "model.pt")
    assert read_model_file(tmp_path / "model.pt")[1] == dict(metadata)
