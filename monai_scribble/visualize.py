"""Pictures a lab looks at: scribbles, predicted instances, EMA / pseudo-label maps, learning curves.

The overlay functions return ``(H, W, 3)`` uint8 RGB arrays (save with
:func:`monai_scribble.data.image_io.write_png`, show with ``matplotlib.pyplot.imshow``); they need only
NumPy and scikit-image. :func:`plot_learning_curves` needs matplotlib (``pip install -e ".[notebooks]"``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from skimage.segmentation import find_boundaries

from monai_scribble.constants import BACKGROUND, FOREGROUND

__all__ = ["contour_overlay", "learning_curves", "plot_learning_curves", "probability_map_view", "scribble_overlay", "to_rgb_uint8", "training_summary"]

SCRIBBLE_COLORS = {BACKGROUND: (0, 160, 255), FOREGROUND: (255, 40, 40)}
"""Scribble class -> RGB: background strokes blue, nucleus strokes red."""


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """``(H, W)``, ``(H, W, 3)`` or channel-first ``(3, H, W)`` float in ``[0, 1]`` or uint8 -> ``(H, W, 3)`` uint8."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"expected a gray or RGB image, got shape {np.asarray(image).shape}")
    if array.dtype == np.uint8:
        return array.copy()
    return (np.clip(array.astype(np.float32), 0.0, 1.0) * 255).round().astype(np.uint8)


def scribble_overlay(image: np.ndarray, scribble: np.ndarray, thickness: int = 1) -> np.ndarray:
    """The image with scribble strokes drawn on it (S2L values: 0 background, 1 nucleus, 250 unlabeled).

    Args:
        image: gray or RGB image (see :func:`to_rgb_uint8`).
        scribble: ``(H, W)`` or ``(1, H, W)`` scribble.
        thickness: strokes are dilated to this width in pixels, so 1-px skeletons stay visible.
    """
    from scipy import ndimage

    rgb = to_rgb_uint8(image)
    scribble = np.asarray(scribble).reshape(rgb.shape[:2])
    for value, color in SCRIBBLE_COLORS.items():
        mask = scribble == value
        if thickness > 1:
            mask = ndimage.binary_dilation(mask, iterations=thickness // 2)
        rgb[mask] = color
    return rgb


def contour_overlay(image: np.ndarray, instances: np.ndarray, color: tuple[int, int, int] = (255, 255, 0)) -> np.ndarray:
    """The image with the boundary of every instance (``(H, W)`` ids, 0 background) drawn in ``color``."""
    rgb = to_rgb_uint8(image)
    rgb[find_boundaries(np.asarray(instances).reshape(rgb.shape[:2]), mode="inner")] = color
    return rgb


def probability_map_view(probability: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """An EMA / foreground-probability map as a picture: blue (0) -> white (0.5) -> red (1).

    With ``threshold`` (the pseudo-label confidence, e.g. 0.8) pixels that give no pseudo-label
    (``1 - threshold <= p <= threshold``) are shown gray, so the picture is the pseudo-label map.
    """
    p = np.clip(np.asarray(probability, dtype=np.float32), 0.0, 1.0)
    if p.ndim == 3 and p.shape[0] == 1:  # (1, H, W) channel-first
        p = p[0]
    if p.ndim != 2:
        raise ValueError(f"expected a (H, W) probability map, got shape {np.asarray(probability).shape}")
    low, high = np.clip(1.0 - 2.0 * p, 0, 1), np.clip(2.0 * p - 1.0, 0, 1)
    rgb = np.stack([1.0 - low, 1.0 - low - high, 1.0 - high], axis=-1)  # blue -> white -> red
    rgb = np.clip(rgb, 0.0, 1.0)
    if threshold is not None:
        rgb[(p >= 1.0 - threshold) & (p <= threshold)] = 0.5
    return (rgb * 255).round().astype(np.uint8)


def learning_curves(log_dir: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Scalars a run logged to TensorBoard (``<output_dir>/tensorboard``): ``{tag: (steps, values)}``, by step.

    A resumed run logs again the steps between its checkpoint and the interruption; the values written last
    (the resumed run's, which the final model descends from) are kept, one per step.

    Raises:
        FileNotFoundError: no event file in ``log_dir``.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not list(Path(log_dir).glob("events.out.tfevents.*")):
        raise FileNotFoundError(f"{log_dir}: no TensorBoard event file (is it <output_dir>/tensorboard of a run?)")
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    curves = {}
    for tag in accumulator.Tags()["scalars"]:
        by_step = {e.step: e.value for e in accumulator.Scalars(tag)}  # event files in write order: the last one wins
        steps = sorted(by_step)
        curves[tag] = (np.array(steps), np.array([by_step[step] for step in steps]))
    return curves


def training_summary(log_dir: str | os.PathLike) -> dict:
    """What a training run's TensorBoard log says about the method at work (benchmarks and reports).

    Returns a dict with: ``val_iou`` (``{epoch: value}``), ``best_val_iou`` and ``best_epoch``; over the
    main-stage iterations (those that logged ``pseudo_fg_share``): their number, for each contrastive
    term (``r1`` = δ1 on d5, ``r4`` = δ4 on d3) the share of iterations where it was non-zero and the
    first such iteration, the mean and last share of pixels with a foreground / background
    pseudo-label; and the last pseudo-label coverage / precision / recall per class that the EMA
    refresh measured against the training label maps (``last_pseudo_{fg,bg}_{coverage,precision,recall}``).
    Entries a run did not log are left out.
    """
    curves = learning_curves(log_dir)
    epochs, iou = curves.get("val_iou", ([], []))
    summary: dict = {"val_iou": {int(e): round(float(v), 4) for e, v in zip(epochs, iou)}}
    summary["best_val_iou"] = round(float(np.max(iou)), 4) if len(iou) else None
    summary["best_epoch"] = int(epochs[int(np.argmax(iou))]) if len(iou) else None
    if "pseudo_fg_share" in curves:
        steps = curves["pseudo_fg_share"][0]
        summary["main_stage_iterations"] = int(len(steps))
        for tag, name in (("contrastive_d5_delta1", "r1"), ("contrastive_d3_delta4", "r4")):
            if tag in curves:
                values = dict(zip(curves[tag][0].tolist(), curves[tag][1].tolist()))
                active = [int(s) for s in steps if values.get(int(s), 0.0) != 0.0]
                summary[f"{name}_nonzero_share"] = round(len(active) / max(len(steps), 1), 3)
                summary[f"{name}_first_nonzero_iteration"] = min(active) if active else None
        for tag in ("pseudo_fg_share", "pseudo_bg_share"):
            values = curves[tag][1]
            summary[f"mean_{tag}"] = round(float(np.mean(values)), 4)
            summary[f"last_{tag}"] = round(float(values[-1]), 4)
    for name in ("fg", "bg"):
        for measure in ("coverage", "precision", "recall"):
            tag = f"pseudo_{name}_{measure}"
            if tag in curves and len(curves[tag][1]):
                summary[f"last_{tag}"] = round(float(curves[tag][1][-1]), 4)
    return summary


def plot_learning_curves(log_dir: str | os.PathLike, tags: Sequence[str] | None = None, path: str | os.PathLike | None = None):
    """Plot the run's scalars (default: every loss term and validation metric), one panel each.

    ``val*`` tags are plotted against epochs, the others (loss terms) against iterations, as the bundle logs them.

    Returns the matplotlib figure; with ``path`` it is also saved as PNG.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    curves = learning_curves(log_dir)
    tags = list(tags) if tags else sorted(curves)
    missing = [t for t in tags if t not in curves]
    if missing:
        raise KeyError(f"tags {missing} not logged; available: {sorted(curves)}")
    figure, axes = plt.subplots(1, len(tags), figsize=(3.2 * len(tags), 2.8), squeeze=False)
    for ax, tag in zip(axes[0], tags):
        steps, values = curves[tag]
        ax.plot(steps, values, marker="." if len(steps) < 30 else None)
        ax.set_title(tag, fontsize=9)
        ax.set_xlabel("epoch" if tag.startswith("val") else "iteration", fontsize=8)  # the bundle logs training per iteration
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure
