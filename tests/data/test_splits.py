from __future__ import annotations

import numpy as np
import pytest

from monai_scribble.data.splits import MODALITIES, cluster_modalities, fold_of, split_ids


def modality_features(counts: dict[str, int], seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Mean-HSV points around the centroids measured on DSB (fluo dark, BF bright gray, histology pink)."""
    centres = {"fluorescence": (0.0, 0.0, 0.05), "brightfield": (0.0, 0.0, 0.83), "histology": (0.7, 0.29, 0.79)}
    rng = np.random.default_rng(seed)
    points, names = [], []
    for name, count in counts.items():
        points.append(np.asarray(centres[name]) + rng.normal(0, 0.01, size=(count, 3)))
        names += [name] * count
    order = rng.permutation(len(names))
    return np.concatenate(points)[order], [names[i] for i in order]


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
@pytest.mark.parametrize("counts", [{"fluorescence": 50, "brightfield": 6, "histology": 12}, {"fluorescence": 5, "brightfield": 30, "histology": 9}])
def test_cluster_names_follow_centroids_not_cluster_ids(seed, counts):
    features, truth = modality_features(counts, seed)
    assert cluster_modalities(features, seed=seed) == truth


@pytest.mark.parametrize("bad", [np.zeros((2, 3)), np.zeros((10, 2)), np.zeros(9)])
def test_cluster_bad_shape(bad):
    with pytest.raises(ValueError, match="mean_hsv must have shape"):
        cluster_modalities(bad)


def test_modalities_constant():
    assert set(MODALITIES) == {"fluorescence", "brightfield", "histology"}


@pytest.mark.parametrize("num_ids", [5, 16, 30, 546])
def test_split_sizes_and_disjoint(num_ids):
    ids = [f"img{i:04d}" for i in range(num_ids)]
    for fold in range(4):
        split = split_ids(ids, fold=fold, seed=0)
        parts = [set(split[k]) for k in ("training", "validation", "test")]
        assert sum(map(len, parts)) == num_ids and set().union(*parts) == set(ids)
        assert all(not (a & b) for i, a in enumerate(parts) for b in parts[i + 1 :])
        # KFold: fold sizes differ by at most one
        assert abs(len(split["validation"]) - num_ids / 5) < 1 and abs(len(split["test"]) - num_ids / 5) < 1
    # the test set is the same whatever the validation fold
    assert len({tuple(split_ids(ids, fold=f, seed=0)["test"]) for f in range(4)}) == 1


def test_split_seeded_and_order_independent():
    ids = [f"id{i}" for i in range(40)]
    assert split_ids(ids, seed=3) == split_ids(list(reversed(ids)), seed=3)
    assert split_ids(ids, seed=3) != split_ids(ids, seed=4)
    assert fold_of(ids, seed=3) == fold_of(ids[::-1], seed=3)


def test_split_without_test_fold():
    split = split_ids([f"t{i}" for i in range(30)], fold=4, seed=0, test_fold=None)
    assert (len(split["training"]), len(split["validation"]), len(split["test"])) == (24, 6, 0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fold": 4}, "fold 4 is the test fold"),
        ({"fold": 5}, "fold must be in"),
        ({"fold": -1}, "fold must be in"),
    ],
)
def test_split_bad_fold(kwargs, message):
    with pytest.raises(ValueError, match=message):
        split_ids([f"i{k}" for k in range(10)], **kwargs)


@pytest.mark.parametrize("ids, message", [(["a", "b"], "need at least n_splits=5"), (["a"] * 6, "must be unique")])
def test_fold_of_bad_ids(ids, message):
    with pytest.raises(ValueError, match=message):
        fold_of(ids)
