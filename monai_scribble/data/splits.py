"""Seeded splits: DSB 2018 modality clustering and k-fold train/validation/test assignment.

Modality split (docs/method.md#splits, made deterministic): every image is summarised by its mean HSV
pixel (skimage convention, channels in ``[0, 1]``); KMeans with 3 clusters groups the images. The
clusters are named by their centroids, not by cluster id:

- **fluorescence**: the centroid with the lowest value (V), i.e. a dark background;
- **histology**: of the other two, the centroid with the higher saturation (stained H&E);
- **brightfield**: the remaining one (bright, unsaturated).

On the original ``stage1_train`` (670 images) this gives 16 brightfield, 546 fluorescence and 108
histology images for any seed; the paper reports 542 fluorescence images.

Folds: within one group of ids (one modality, or the MoNuSeg training tiles), ids are sorted and
assigned to ``n_splits`` folds with a seeded shuffled ``KFold``. With a held-out ``test_fold`` (DSB:
fold 4) the split is 60/20/20: ``fold`` is validation and the remaining folds are training.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans
from sklearn.model_selection import KFold

__all__ = ["MODALITIES", "cluster_modalities", "fold_of", "split_ids"]

MODALITIES: tuple[str, str, str] = ("fluorescence", "brightfield", "histology")


def cluster_modalities(mean_hsv: np.ndarray, seed: int = 0) -> list[str]:
    """Assign each image a modality name from its mean HSV.

    Args:
        mean_hsv: ``(N, 3)`` per-image mean hue, saturation, value in ``[0, 1]``, ``N >= 3``.
        seed: KMeans random state.

    Returns:
        ``N`` names from :data:`MODALITIES`.
    """
    features = np.asarray(mean_hsv, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] != 3 or features.shape[0] < 3:
        raise ValueError(f"mean_hsv must have shape (N >= 3, 3), got {features.shape}")
    kmeans = KMeans(n_clusters=3, random_state=seed, n_init=10).fit(features)
    centroids = kmeans.cluster_centers_
    fluorescence = int(np.argmin(centroids[:, 2]))
    others = [c for c in range(3) if c != fluorescence]
    histology = max(others, key=lambda c: centroids[c, 1])
    brightfield = next(c for c in others if c != histology)
    names = {fluorescence: "fluorescence", brightfield: "brightfield", histology: "histology"}
    return [names[int(c)] for c in kmeans.labels_]


def fold_of(ids: Sequence[str], n_splits: int = 5, seed: int = 0) -> dict[str, int]:
    """Seeded k-fold assignment of ids (independent of the order they are given in).

    Args:
        ids: unique ids, at least ``n_splits`` of them.
        n_splits: number of folds.
        seed: shuffle seed.

    Returns:
        ``{id: fold index in [0, n_splits)}``.
    """
    ordered = sorted(ids)
    if len(set(ordered)) != len(ordered):
        raise ValueError("ids must be unique")
    if len(ordered) < n_splits:
        raise ValueError(f"need at least n_splits={n_splits} ids for a {n_splits}-fold split, got {len(ordered)}")
    folds: dict[str, int] = {}
    splitter = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(ordered)):
        for index in held_out:
            folds[ordered[index]] = fold
    return folds


def split_ids(
    ids: Sequence[str], fold: int = 0, seed: int = 0, n_splits: int = 5, test_fold: int | None = 4
) -> dict[str, list[str]]:
    """Split ids into ``training`` / ``validation`` / ``test`` lists by seeded folds.

    Args:
        ids: unique ids.
        fold: the validation fold; must differ from ``test_fold``.
        seed: shuffle seed.
        n_splits: number of folds.
        test_fold: the fold held out for testing, or ``None`` for a train/validation split only
            (e.g. MoNuSeg, whose test tiles are separate).

    Returns:
        ``{"training": [...], "validation": [...], "test": [...]}``, each sorted.
    """
    if not 0 <= fold < n_splits:
        raise ValueError(f"fold must be in [0, {n_splits}), got {fold}")
    if test_fold is not None and fold == test_fold:
        raise ValueError(f"fold {fold} is the test fold; choose a validation fold in 0..{n_splits - 1} except {test_fold}")
    folds = fold_of(ids, n_splits=n_splits, seed=seed)
    split: dict[str, list[str]] = {"training": [], "validation": [], "test": []}
    for image_id in sorted(folds):
        f = folds[image_id]
        key = "test" if f == test_fold else "validation" if f == fold else "training"
        split[key].append(image_id)
    return split
