"""Scribble files: formats, reading and writing, class checks and seeded synthesis from instance maps.

Inside the package a scribble is a ``uint8`` array ``(H, W)`` in the Scribble2Label (S2L) convention:
:data:`~monai_scribble.constants.BACKGROUND` (0), :data:`~monai_scribble.constants.FOREGROUND` (1) and
:data:`~monai_scribble.constants.IGNORE` (250) for unlabeled pixels. Files may also use the
zero-unlabeled convention drawn by napari and MONAI Label (0 unlabeled, 1 background, 2 foreground);
the conversion happens here, at the file boundary, and the file format is always given explicitly,
never guessed from the values.

Scribbles are synthesised from instance maps with the S2L skeleton method (docs/method.md#scribble-generation),
seeded per image through :func:`image_rng` (docs/method.md#pitfall-unseeded) and with ``1 - mask``
semantics for the background (docs/method.md#pitfall-uint8-wrap).
"""

from __future__ import annotations

import hashlib
import os
from enum import Enum
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.feature import corner_harris, corner_peaks
from skimage.morphology import skeletonize

from monai_scribble.constants import BACKGROUND, FOREGROUND, IGNORE
from monai_scribble.data.image_io import read_array, write_png
from monai_scribble.errors import DataError

__all__ = [
    "ScribbleFormat",
    "s2l_to_zero_unlabeled",
    "zero_unlabeled_to_s2l",
    "read_scribble",
    "write_scribble",
    "check_scribble_classes",
    "scribble_class_counts",
    "synthesize_scribble",
    "image_rng",
    "scribble_file_name",
]


class ScribbleFormat(str, Enum):
    """Value convention of a scribble *file*.

    Attributes:
        S2L: ``0`` background, ``1`` foreground, ``250`` unlabeled (the internal convention).
        ZERO_UNLABELED: ``0`` unlabeled, ``1`` background, ``2`` foreground (napari / MONAI Label).
    """

    S2L = "s2l"
    ZERO_UNLABELED = "zero_unlabeled"


_S2L_VALUES: tuple[int, ...] = (BACKGROUND, FOREGROUND, IGNORE)
_ZU_UNLABELED, _ZU_BACKGROUND, _ZU_FOREGROUND = 0, 1, 2
_ZU_VALUES: tuple[int, ...] = (_ZU_UNLABELED, _ZU_BACKGROUND, _ZU_FOREGROUND)
_FORMAT_VALUES: dict[ScribbleFormat, tuple[int, ...]] = {
    ScribbleFormat.S2L: _S2L_VALUES,
    ScribbleFormat.ZERO_UNLABELED: _ZU_VALUES,
}
_MAX_LISTED_VALUES = 10

_CORNER_MIN_DISTANCE = 5
_CORNER_THRESHOLD_REL = 0.1
"""Relative Harris threshold of ``corner_peaks``: the implicit default of scikit-image <= 0.17, which S2L ran
with. Newer versions default to no relative threshold, so every pixel of the flat zero-response plateau
becomes a "corner" (about 9000 on a 520x696 DSB-sized map, ~15 s in ``corner_peaks``) and the 3x3 cuts fall
on arbitrary skeleton pixels instead of the junctions."""


def _lookup_table(mapping: dict[int, int]) -> np.ndarray:
    table = np.zeros(256, dtype=np.uint8)
    for src, dst in mapping.items():
        table[src] = dst
    return table


_S2L_TO_ZU = _lookup_table({BACKGROUND: _ZU_BACKGROUND, FOREGROUND: _ZU_FOREGROUND, IGNORE: _ZU_UNLABELED})
_ZU_TO_S2L = _lookup_table({_ZU_UNLABELED: IGNORE, _ZU_BACKGROUND: BACKGROUND, _ZU_FOREGROUND: FOREGROUND})


def _as_format(fmt: ScribbleFormat | str) -> ScribbleFormat:
    try:
        return ScribbleFormat(fmt)
    except ValueError:
        valid = ", ".join(repr(f.value) for f in ScribbleFormat)
        raise ValueError(f"unknown scribble format {fmt!r}; expected one of {valid}") from None


def _format_values(values: np.ndarray) -> str:
    shown = [v.item() for v in values[:_MAX_LISTED_VALUES]]
    text = "[" + ", ".join(str(v) for v in shown)
    if values.size > _MAX_LISTED_VALUES:
        text += f", ... ({values.size} distinct values)"
    return text + "]"


def _unknown_values_problem(s: np.ndarray, fmt: ScribbleFormat) -> str | None:
    """Problem text if ``s`` holds values outside ``fmt``'s value set, else ``None``."""
    allowed = _FORMAT_VALUES[fmt]
    bad = ~np.isin(s, allowed)
    if not bad.any():
        return None
    expected = ", ".join(str(v) for v in allowed)
    return f"unknown scribble values {_format_values(np.unique(s[bad]))} for format '{fmt.value}' (expected {expected})"


def _convert(s: np.ndarray, fmt: ScribbleFormat, table: np.ndarray) -> np.ndarray:
    s = np.asarray(s)
    problem = _unknown_values_problem(s, fmt)
    if problem is not None:
        raise ValueError(problem)
    return table[s.astype(np.intp, copy=False)]  # values are known to lie in 0..250 here


def s2l_to_zero_unlabeled(s: np.ndarray) -> np.ndarray:
    """Map an S2L scribble (0 bg, 1 fg, 250 unlabeled) to the zero-unlabeled convention (0/1/2).

    Args:
        s: array of any shape and integer (or integral float/bool) dtype with values in {0, 1, 250}.

    Returns:
        ``uint8`` array of the same shape with 0 unlabeled, 1 background, 2 foreground.

    Raises:
        ValueError: ``s`` holds other values (they are quoted in the message).
    """
    return _convert(s, ScribbleFormat.S2L, _S2L_TO_ZU)


def zero_unlabeled_to_s2l(s: np.ndarray) -> np.ndarray:
    """Map a zero-unlabeled scribble (0 unlabeled, 1 bg, 2 fg) to the S2L convention (0/1/250).

    Args:
        s: array of any shape and integer (or integral float/bool) dtype with values in {0, 1, 2}.

    Returns:
        ``uint8`` array of the same shape with 0 background, 1 foreground, 250 unlabeled.

    Raises:
        ValueError: ``s`` holds other values (they are quoted in the message).
    """
    return _convert(s, ScribbleFormat.ZERO_UNLABELED, _ZU_TO_S2L)


def _single_channel(array: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """Reduce ``(H, W, C)`` to ``(H, W)`` when the colour channels agree and any alpha is constant."""
    if array.ndim == 2:
        return array
    channels = array.shape[-1]
    has_alpha = channels in (2, 4)
    colour = array[..., : channels - 1] if has_alpha else array
    first = colour[..., 0]
    if not all(np.array_equal(first, colour[..., c]) for c in range(1, colour.shape[-1])):
        raise DataError(path, f"scribble file must have one channel or equal channels, got shape {array.shape}")
    if has_alpha:
        alpha = array[..., -1]
        if alpha.min() != alpha.max():
            raise DataError(path, "scribble file has a non-constant alpha channel")
    return first


def read_scribble(path: str | os.PathLike, fmt: ScribbleFormat | str) -> np.ndarray:
    """Read a scribble file stored in ``fmt`` and return it in the internal S2L convention.

    Multi-channel files (e.g. a gray scribble saved as RGB/RGBA) are accepted only when all colour
    channels are equal and an alpha channel, if any, is constant.

    Args:
        path: scribble file (any format :func:`~monai_scribble.data.image_io.read_array` reads).
        fmt: the file's value convention; never guessed.

    Returns:
        ``uint8`` array ``(H, W)`` with values in {0 background, 1 foreground, 250 unlabeled}.

    Raises:
        DataError: missing or corrupt file, differing channels, or values outside ``fmt``'s set
            (e.g. ``"<path>: unknown scribble values [3] for format 'zero_unlabeled' (expected 0, 1, 2)"``).
        ValueError: unknown ``fmt``.
    """
    fmt = _as_format(fmt)
    array = _single_channel(read_array(path), path)
    if array.dtype.kind not in "uifb":
        raise DataError(path, f"scribble file has unsupported dtype {array.dtype}")
    problem = _unknown_values_problem(array, fmt)
    if problem is not None:
        raise DataError(path, problem)
    if fmt is ScribbleFormat.ZERO_UNLABELED:
        return _ZU_TO_S2L[array.astype(np.intp, copy=False)]
    return array.astype(np.uint8)  # values are known to be 0, 1 or 250


def write_scribble(path: str | os.PathLike, s: np.ndarray, fmt: ScribbleFormat | str = ScribbleFormat.S2L) -> Path:
    """Write an internal S2L scribble as a ``uint8`` PNG in the file convention ``fmt``, atomically.

    Args:
        path: destination ``.png`` path (parent directories are created).
        s: ``(H, W)`` array with values in {0, 1, 250}.
        fmt: value convention of the written file.

    Returns:
        The written path.

    Raises:
        ValueError: ``s`` is not 2-D, holds values outside {0, 1, 250}, or ``fmt`` is unknown.
    """
    fmt = _as_format(fmt)
    s = np.asarray(s)
    if s.ndim != 2:
        raise ValueError(f"{path}: a scribble must be 2-D (H, W), got shape {tuple(s.shape)}")
    problem = _unknown_values_problem(s, ScribbleFormat.S2L)
    if problem is not None:
        raise ValueError(f"{path}: cannot write scribble: {problem}")
    out = s2l_to_zero_unlabeled(s) if fmt is ScribbleFormat.ZERO_UNLABELED else s.astype(np.uint8)
    return write_png(path, out)


def scribble_class_counts(s: np.ndarray) -> tuple[int, int]:
    """Number of scribbled pixels per class of an S2L scribble.

    Args:
        s: array in the S2L convention, any shape.

    Returns:
        ``(n_background, n_foreground)``: pixels equal to 0 and to 1.
    """
    s = np.asarray(s)
    return int(np.count_nonzero(s == BACKGROUND)), int(np.count_nonzero(s == FOREGROUND))


def check_scribble_classes(s: np.ndarray, path: str | os.PathLike = "<array>") -> None:
    """Raise if an S2L scribble lacks a foreground or a background pixel.

    Partial cross-entropy on a scribble with a single class teaches the network nothing about the
    other class, so readers reject such scribbles early.

    Args:
        s: array in the S2L convention.
        path: file named in the error message.

    Raises:
        DataError: no foreground (1) and/or no background (0) pixel; the message names the missing class(es).
    """
    n_bg, n_fg = scribble_class_counts(s)
    missing = [name for name, n in (("foreground (1)", n_fg), ("background (0)", n_bg)) if n == 0]
    if missing:
        raise DataError(path, f"scribble has no {' and no '.join(missing)} pixel")


def _skeleton_segments(mask: np.ndarray) -> tuple[np.ndarray, int, np.ndarray, int]:
    """Label the fg skeleton components and the corner-split bg skeleton segments of a binary mask.

    Args:
        mask: bool ``(H, W)`` foreground mask.

    Returns:
        ``(fg_labels, n_fg, bg_labels, n_bg)``: int32 ``(H, W)`` label maps (8-connectivity, 0 = none)
        and their component counts.
    """
    eight = np.ones((3, 3), dtype=bool)
    fg_skel = skeletonize(mask)
    bg_skel = skeletonize(~mask)  # ``1 - mask`` without uint8 wrap-around (docs/method.md#pitfall-uint8-wrap)
    if bg_skel.any():
        response = corner_harris(bg_skel.astype(np.float64))
        corners = corner_peaks(response, min_distance=_CORNER_MIN_DISTANCE, threshold_rel=_CORNER_THRESHOLD_REL)
        if len(corners):
            height, width = mask.shape
            for dy in (-1, 0, 1):  # zero a 3x3 region around every corner, vectorised over corners
                for dx in (-1, 0, 1):
                    rows = np.clip(corners[:, 0] + dy, 0, height - 1)
                    cols = np.clip(corners[:, 1] + dx, 0, width - 1)
                    bg_skel[rows, cols] = False
    fg_labels, n_fg = ndimage.label(fg_skel, structure=eight)
    bg_labels, n_bg = ndimage.label(bg_skel, structure=eight)
    return fg_labels, int(n_fg), bg_labels, int(n_bg)


def synthesize_scribble(
    instance_map: np.ndarray,
    ratio: float = 0.3,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Synthesise a scribble from a label map with the Scribble2Label skeleton method.

    With ``M = instance_map > 0`` (touching instances merge, as in S2L):

    1. foreground skeleton = ``skeletonize(M)``; background skeleton = ``skeletonize(~M)`` with a 3x3
       region zeroed around each Harris corner (``corner_peaks(corner_harris(.), min_distance=5)`` with
       the scikit-image <= 0.17 default ``threshold_rel=0.1`` made explicit) so that it splits into
       segments; both are labelled with 8-connectivity (``n_fg``, ``n_bg``);
    2. ``int(n_fg * (1 - ratio))`` random foreground components are dropped, leaving ``k``
       (``1 <= k <= n_fg`` when ``n_fg > 0``), and ``min(k, n_bg)`` random background segments are kept;
    3. the result is 250 everywhere, 0 on the kept background segments and 1 on the kept foreground
       components.

    A map without foreground gives ``k = 0`` and an all-unlabeled scribble; use
    :func:`check_scribble_classes` to reject it.

    Args:
        instance_map: ``(H, W)`` instance (or binary) label map; pixels ``> 0`` are foreground.
        ratio: fraction of foreground components kept, in ``(0, 1]``.
        rng: a ``numpy.random.Generator`` (e.g. from :func:`image_rng`), an int seed, or ``None`` for
            fresh OS entropy (not reproducible).

    Returns:
        ``uint8`` array ``(H, W)`` with values in {0 background, 1 foreground, 250 unlabeled}.

    Raises:
        ValueError: ``ratio`` outside ``(0, 1]`` or ``instance_map`` not 2-D.
    """
    instance_map, ratio, rng = synthesis_arguments(instance_map, ratio, rng)
    mask = instance_map > 0
    fg_labels, n_fg, bg_labels, n_bg = _skeleton_segments(mask)
    k = n_fg - int(n_fg * (1.0 - ratio))  # literal S2L formula; 1 <= k <= n_fg for ratio in (0, 1]
    keep_fg = rng.choice(np.arange(1, n_fg + 1), size=k, replace=False)
    keep_bg = rng.choice(np.arange(1, n_bg + 1), size=min(k, n_bg), replace=False)

    scribble = np.full(mask.shape, IGNORE, dtype=np.uint8)
    scribble[np.isin(bg_labels, keep_bg)] = BACKGROUND
    scribble[np.isin(fg_labels, keep_fg)] = FOREGROUND
    return scribble


def synthesis_arguments(instance_map: np.ndarray, ratio: float, rng: np.random.Generator | int | None) -> tuple[np.ndarray, float, np.random.Generator]:
    """``(instance_map, ratio, rng)`` checked for a scribble synthesiser: a 2-D map, a ratio in ``(0, 1]``, a generator.

    Raises:
        ValueError: ``ratio`` outside ``(0, 1]`` or ``instance_map`` not 2-D (the message quotes it).
    """
    ratio = float(ratio)
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"scribble ratio must be in (0, 1], got {ratio}")
    instance_map = np.asarray(instance_map)
    if instance_map.ndim != 2:
        raise ValueError(f"instance_map must be 2-D (H, W), got shape {tuple(instance_map.shape)}")
    return instance_map, ratio, rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def image_rng(seed: int, image_id: str) -> np.random.Generator:
    """Deterministic random generator for one image, independent of image order and ``PYTHONHASHSEED``.

    The generator is seeded with 128 bits of ``sha256(f"{seed}\\0{image_id}")``, so every
    ``(seed, image_id)`` pair gets its own stream.

    Args:
        seed: global (run or dataset) seed.
        image_id: unique id of the image within its dataset.

    Returns:
        A fresh ``numpy.random.Generator``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    digest = hashlib.sha256(f"{int(seed)}\0{image_id}".encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def scribble_file_name(image_id: str) -> str:
    """File name of the generated scribble of ``image_id``: ``f"{image_id}.png"``.

    Raises:
        ValueError: empty id or an id holding a path separator.
    """
    if not image_id or any(sep in image_id for sep in ("/", "\\", "\0")):
        raise ValueError(f"invalid image id for a file name: {image_id!r}")
    return f"{image_id}.png"
