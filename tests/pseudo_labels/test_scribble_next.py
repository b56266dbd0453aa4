from __future__ import annotations

import csv

import numpy as np
import pytest
from ignite.engine import Engine

from monai_scribble.pseudo_labels import PseudoLabelConfig, PseudoLabelStore, ScribbleNextWriter, rank_images_to_scribble


def store_with_maps(root, maps: dict[str, np.ndarray]) -> PseudoLabelStore:
    store = PseudoLabelStore(root, {k: v.shape for k, v in maps.items()})
    store.update(maps, momentum=1.0)  # E = p exactly
    return store


MAPS = {
    # 16 pixels each; thresholds 0.8 (nucleus > 0.8, background < 0.2)
    "confident": np.array([0.9] * 8 + [0.1] * 8, dtype=np.float32).reshape(4, 4),
    "half": np.array([0.9] * 4 + [0.5] * 8 + [0.05] * 4, dtype=np.float32).reshape(4, 4),
    "unsure": np.array([0.5] * 12 + [0.95] * 4, dtype=np.float32).reshape(4, 4),
}


def test_rank_images_by_unconfident_share(tmp_path):
    store = store_with_maps(tmp_path / "ema", MAPS)
    items = [{"id": k, "image": f"/data/{k}.png"} for k in ("confident", "half", "unsure", "no_map")]
    rows = rank_images_to_scribble(store, items, PseudoLabelConfig(threshold=0.8))
    assert [(r["rank"], r["id"], r["unconfident_share"], r["nucleus_share"], r["background_share"]) for r in rows] == [
        (1, "unsure", 0.75, 0.25, 0.0),
        (2, "half", 0.5, 0.25, 0.25),
        (3, "confident", 0.0, 0.5, 0.5),
    ]
    assert rows[0]["image"] == "/data/unsure.png"
    stricter = rank_images_to_scribble(store, items, PseudoLabelConfig(threshold=0.92))  # neither 0.9 nor 0.1 is confident
    assert [(r["id"], r["unconfident_share"]) for r in stricter] == [("confident", 1.0), ("half", 0.75), ("unsure", 0.75)]


def test_writer_writes_the_table_once_training_completes(tmp_path):
    store = store_with_maps(tmp_path / "ema", MAPS)
    items = [{"id": k, "image": f"{k}.png"} for k in MAPS]
    engine = Engine(lambda e, b: None)
    ScribbleNextWriter(store, items, PseudoLabelConfig(), tmp_path).attach(engine)
    engine.run([0], max_epochs=1)
    with open(tmp_path / "scribble_next.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["id"] for row in table] == ["unsure", "half", "confident"]
    assert list(table[0]) == ["rank", "id", "image", "unconfident_share", "nucleus_share", "background_share"]
    assert float(table[0]["unconfident_share"]) == pytest.approx(0.75)
    assert not (tmp_path / "scribble_next.csv.tmp").exists()


@pytest.mark.parametrize("enabled, refreshed", [(False, True), (True, False)])
def test_writer_writes_nothing_without_maps(tmp_path, enabled, refreshed):
    store = store_with_maps(tmp_path / "ema", MAPS) if refreshed else PseudoLabelStore(tmp_path / "ema", {k: v.shape for k, v in MAPS.items()})
    engine = Engine(lambda e, b: None)
    ScribbleNextWriter(store, [{"id": k} for k in MAPS], PseudoLabelConfig(), tmp_path, enabled=enabled).attach(engine)
    engine.run([0], max_epochs=1)
    assert not (tmp_path / "scribble_next.csv").exists()
