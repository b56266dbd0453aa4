"""Hand-drawn-like scribbles: short wobbly strokes inside some nuclei and in the background away from them.

The S2L skeletons (:func:`~monai_scribble.data.scribbles.synthesize_scribble`) are what a program draws from full
masks: the whole medial axis of a nucleus, and long background skeleton segments. A person draws less and less
regularly: one short stroke across a nucleus, a few strokes through empty background. :func:`synthesize_strokes`
draws that, seeded per image like the skeletons (:func:`~monai_scribble.data.scribbles.image_rng`), in the package's
S2L convention (write either file format with :func:`~monai_scribble.data.scribbles.write_scribble`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.draw import disk
from skimage.measure import label as connected_components
from skimage.measure import regionprops

from monai_scribble.constants import BACKGROUND, FOREGROUND, IGNORE
from monai_scribble.data.scribbles import synthesis_arguments

__all__ = ["synthesize_strokes"]

BACKGROUND_ATTEMPTS = 10
"""Random starts tried per background stroke before it is left out (a crowded image gets fewer)."""


def synthesize_strokes(
    instance_map: np.ndarray,
    ratio: float = 0.3,
    rng: np.random.Generator | int | None = None,
    width: tuple[int, int] = (1, 3),
    length: tuple[float, float] = (0.4, 0.8),
    wobble: float = 1.0,
    background_margin: int = 4,
) -> np.ndarray:
    """A scribble of short, slightly wobbly strokes: one inside each of a random ``ratio`` of the nuclei, as many in the background.

    Nucleus strokes run through the nucleus centre (its distance-transform maximum) along its long axis, turned by
    up to 30 degrees, over ``length`` (a random fraction) of that axis, with a smooth sideways wobble of up to
    ``wobble`` pixels, drawn ``width`` pixels wide (random in the range) and clipped to the nucleus. Background
    strokes (one per nucleus stroke, as S2L keeps as many background segments as nucleus ones) start at a random
    pixel at least ``background_margin`` pixels from every nucleus, run in a random direction over about one
    nucleus diameter, keep only their pixels that far from the nuclei and do not touch each other (a stroke
    that would is drawn again elsewhere, up to :data:`BACKGROUND_ATTEMPTS` times).

    Args:
        instance_map: ``(H, W)`` instance label map (a binary mask is split into connected components).
        ratio: fraction of nuclei that get a stroke, in ``(0, 1]`` (at least one).
        rng: a ``numpy.random.Generator`` (e.g. :func:`~monai_scribble.data.scribbles.image_rng`), a seed or ``None``.
        width: smallest and largest stroke width in pixels (1-3 by default).
        length: range of a nucleus stroke's length as a fraction of the nucleus' long axis.
        wobble: amplitude of the sideways wobble in pixels.
        background_margin: least distance of a background stroke pixel from any nucleus.

    Returns:
        ``uint8`` ``(H, W)`` in {0 background, 1 nucleus, 250 unlabeled}.

    Raises:
        ValueError: ``ratio`` outside ``(0, 1]``, a bad ``width`` range or a map that is not 2-D (the message quotes it).
    """
    instances, ratio, rng = synthesis_arguments(instance_map, ratio, rng)
    if not 1 <= width[0] <= width[1]:
        raise ValueError(f"stroke width range must satisfy 1 <= low <= high, got {tuple(width)}")
    if instances.dtype == bool or instances.max() <= 1:
        instances = connected_components(instances > 0, connectivity=2)
    scribble = np.full(instances.shape, IGNORE, dtype=np.uint8)
    regions = regionprops(instances.astype(np.int32))
    if not regions:
        return scribble
    count = len(regions) - int(len(regions) * (1.0 - ratio))  # as the skeletons: 1 <= count <= nuclei
    chosen = rng.choice(len(regions), size=count, replace=False)
    for index in sorted(chosen):
        region = regions[index]
        inside = instances == region.label
        distance = ndimage.distance_transform_edt(inside)
        centre = np.array(np.unravel_index(np.argmax(distance), distance.shape), dtype=float)
        angle = region.orientation + rng.uniform(-np.pi / 6, np.pi / 6)  # skimage: angle of the long axis to the rows
        half = 0.5 * rng.uniform(*length) * max(region.axis_major_length, 2.0)
        stroke = _stroke(centre, angle, half, wobble, int(rng.integers(width[0], width[1] + 1)), rng, instances.shape)
        scribble[stroke & inside] = FOREGROUND
    away = ndimage.distance_transform_edt(instances == 0) >= background_margin
    starts = np.argwhere(away)
    diameter = float(np.median([r.axis_major_length for r in regions]))
    drawn = np.zeros(instances.shape, dtype=bool)
    near_drawn = np.zeros(instances.shape, dtype=bool)  # the drawn strokes dilated by 2 px, updated once per accepted stroke
    for _ in range(count if len(starts) else 0):
        for _attempt in range(BACKGROUND_ATTEMPTS):  # strokes do not touch each other, as a person's do not
            centre = starts[rng.integers(len(starts))].astype(float)
            half = 0.5 * rng.uniform(1.0, 2.0) * max(diameter, 4.0)
            stroke = _stroke(centre, rng.uniform(0, np.pi), half, wobble, int(rng.integers(width[0], width[1] + 1)), rng, instances.shape) & away
            if stroke.any() and not (stroke & near_drawn).any():
                drawn |= stroke
                near_drawn = ndimage.binary_dilation(drawn, iterations=2)
                break
    scribble[drawn] = BACKGROUND
    return scribble


def _stroke(centre: np.ndarray, angle: float, half_length: float, wobble: float, width: int, rng: np.random.Generator,
            shape: tuple[int, int]) -> np.ndarray:  # fmt: skip
    """Mask of a stroke through ``centre`` at ``angle`` (radians from the row axis): a wobbly polyline, ``width`` px wide."""
    steps = max(int(np.ceil(2 * half_length)), 1)
    along = np.linspace(-half_length, half_length, steps + 1)
    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    phase, cycles = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5)  # one smooth sideways swing or so over the stroke
    sideways = wobble * np.sin(phase + 2 * np.pi * cycles * (along - along[0]) / max(2 * half_length, 1.0))
    points = centre[None] + along[:, None] * direction[None] + sideways[:, None] * normal[None]
    mask = np.zeros(shape, dtype=bool)
    radius = width / 2.0
    for row, col in points:
        if width == 1:
            r, c = int(round(row)), int(round(col))
            if 0 <= r < shape[0] and 0 <= c < shape[1]:
                mask[r, c] = True
        else:
            rr, cc = disk((row, col), radius, shape=shape)
            mask[rr, cc] = True
    return mask
