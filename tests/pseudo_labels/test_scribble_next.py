from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from PIL import Image

from monai_scribble.pseudo_labels import ModelFileRanking, PseudoLabelConfig, ScribbleNextWriter, rank_images_to_scribble


class ChannelLogit(torch.nn.Module):
    """Logits (0, scale * red channel): after ImageNet normalisation, red 255 -> p(nucleus) ~ 1, 0 -> ~ 0, 124 -> 0.5."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(x[:, :1]), self.scale * x[:, :1]], dim=1)


RED = {  # rows of an 8 x 8 image: 255 confident nucleus, 0 confident background, 124 unsure
    "confident": [255] * 4 + [0] * 4,
    "half": [255] * 2 + [124] * 4 + [0] * 2,
    "unsure": [124] * 6 + [255] * 2,
}


@pytest.fixture
def pool(tmp_path):
    items = []
    for name, rows in RED.items():
        image = np.zeros((8, 8, 3), np.uint8)
        image[..., 0] = np.array(rows, np.uint8)[:, None]
        Image.fromarray(image).save(tmp_path / f"{name}.png")
        items.append({"id": name, "image": str(tmp_path / f"{name}.png"), **({"scribble": "s.png"} if name == "confident" else {})})
    return items


def test_rank_by_the_models_unconfident_share(pool):
    rows = rank_images_to_scribble(ChannelLogit(4.0), pool, PseudoLabelConfig(threshold=0.8))
    assert [(r["rank"], r["id"], r["scribbled"], r["unconfident_share"], r["nucleus_share"], r["background_share"]) for r in rows] == [
        (1, "unsure", 0, 0.75, 0.25, 0.0),
        (2, "half", 0, 0.5, 0.25, 0.25),
        (3, "confident", 1, 0.0, 0.5, 0.5),
    ]
    assert rows[0]["image"].endswith("unsure.png")
    assert [r["unconfident_share"] for r in rank_images_to_scribble(ChannelLogit(0.0), pool, PseudoLabelConfig())] == [1.0] * 3


def test_writer_ranks_by_the_selected_model_when_training_completes(tmp_path, pool):
    torch.save({"model": ChannelLogit(4.0).state_dict()}, tmp_path / "model.pt")
    engine = Engine(lambda e, b: None)
    ScribbleNextWriter(ChannelLogit(0.0), pool, PseudoLabelConfig(), tmp_path, model_file=tmp_path / "model.pt").attach(engine)
    engine.run([0], max_epochs=1)
    with open(tmp_path / "scribble_next.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["id"] for row in table] == ["unsure", "half", "confident"]  # the model file's weights, not the network's
    assert list(table[0]) == ["rank", "id", "image", "scribbled", "unconfident_share", "nucleus_share", "background_share"]
    assert float(table[0]["unconfident_share"]) == pytest.approx(0.75) and table[2]["scribbled"] == "1"
    assert not (tmp_path / "scribble_next.csv.tmp").exists()


class CountingLoader:
    """Loads a :class:`ChannelLogit` model file and counts the images the loaded network predicts."""

    def __init__(self) -> None:
        self.loads, self.predicted = 0, 0

    def __call__(self, path, device) -> torch.nn.Module:
        self.loads += 1
        network = ChannelLogit(0.0)
        network.load_state_dict(torch.load(path)["model"])
        network.register_forward_hook(lambda module, args, output: setattr(self, "predicted", self.predicted + output.shape[0]))
        return network


def test_model_file_ranking_predicts_each_image_once_per_model_version(tmp_path, pool):
    model = tmp_path / "model.pt"
    torch.save({"model": ChannelLogit(4.0).state_dict()}, model)
    loader = CountingLoader()
    ranking = ModelFileRanking(PseudoLabelConfig(threshold=0.8), chunk=2, load_network=loader)
    images = {item["id"]: item["image"] for item in pool}
    rows = ranking(model, images)
    assert [(r["rank"], r["id"], r["unconfident_share"]) for r in rows] == [(1, "unsure", 0.75), (2, "half", 0.5), (3, "confident", 0.0)]
    assert (loader.loads, loader.predicted) == (1, 3)
    del images["unsure"]  # labelled meanwhile: it leaves the pool, nothing is predicted again
    assert [r["id"] for r in ranking(model, images)] == ["half", "confident"] and (loader.loads, loader.predicted) == (1, 3)
    before = model.stat().st_mtime_ns
    torch.save({"model": ChannelLogit(0.0).state_dict()}, model)  # a training request rewrote the model (same size)
    os.utime(model, ns=(before + 10**9, before + 10**9))  # as minutes later, whatever the file system's time resolution
    assert [r["unconfident_share"] for r in ranking(model, images)] == [1.0, 1.0] and (loader.loads, loader.predicted) == (2, 5)
