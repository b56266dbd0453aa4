"""MoNuSeg Aperio ImageScope XML annotations: polygons and instance label maps.

A MoNuSeg annotation file lists one ``<Region>`` per nucleus, each with a ``<Vertices>`` list of
``<Vertex X="..." Y="..."/>`` in image pixel coordinates (``X`` = column, ``Y`` = row, pixel centres
at integer coordinates, the convention of :func:`skimage.draw.polygon`).

Rasterisation rules of :func:`polygons_to_instance_map` (one place, deterministic):

- **Ids**: region ``i`` (0-based, document order of ``<Region>`` elements over the whole file) gets id
  ``i + 1``; ids are never renumbered, so ``id - 1`` indexes the polygon list.
- **Fill**: a pixel belongs to a polygon when its centre lies inside it (:func:`skimage.draw.polygon`).
  Polygons are clipped to the image: pixels outside ``shape`` are dropped, which is the exact
  intersection of the polygon with the image rectangle (the vertices themselves are not moved, so a
  nucleus cut by the border keeps its shape inside the image).
- **Overlaps**: a pixel covered by several polygons goes to the *smallest* of them, "size" being the
  number of pixels the polygon fills inside the image before overlaps are resolved; equal sizes go to
  the earlier region. Nested small nuclei therefore survive inside a large one, and an overlap between
  two nuclei goes to the smaller one instead of depending on drawing order.
- **Centroid fallback**: a region that ends with no pixel (fewer than 3 vertices, zero area, smaller
  than a pixel, entirely outside the image, or completely covered by smaller/earlier regions) gets
  the pixel at its rounded vertex mean (``floor(x + 0.5)``, clipped to the image). If that pixel is the
  only pixel of another region, the nearest pixel that is background or belongs to a region with more
  than one pixel is used instead (smallest square window around the centroid, then Euclidean
  distance, then row-major order). Fallback regions are placed in region order. Hence **the number of
  distinct non-zero ids always equals the number of regions** (``<Region>`` elements).
- Regions with 1 or 2 vertices are kept (they cannot enclose an area and are rasterised by the
  centroid fallback); a region with no vertex at all has no position and is an error.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from skimage.draw import polygon as draw_polygon

from monai_scribble.errors import DataError

__all__ = [
    "RasterStats",
    "parse_aperio_xml",
    "polygons_to_instance_map",
    "xml_to_instance_map",
]


@dataclass(frozen=True)
class RasterStats:
    """What :func:`polygons_to_instance_map` had to resolve.

    Attributes:
        n_regions: number of polygons (= number of distinct non-zero ids in the map).
        n_fallback: regions that filled no pixel of their own and got the centroid fallback.
        n_relocated: fallback regions whose centroid pixel was the only pixel of another region and
            that were moved to the nearest free pixel.
        n_overlap_pixels: pixels covered by two or more polygon fills (resolved by the overlap rule).
    """

    n_regions: int
    n_fallback: int
    n_relocated: int
    n_overlap_pixels: int

    def to_dict(self) -> dict[str, int]:
        return {
            "n_regions": self.n_regions,
            "n_fallback": self.n_fallback,
            "n_relocated": self.n_relocated,
            "n_overlap_pixels": self.n_overlap_pixels,
        }


def _coordinate(vertex: ET.Element, name: str, path: str, where: str) -> float:
    raw = vertex.get(name)
    if raw is None:
        raise DataError(path, f"{where}: <Vertex> has no {name} attribute")
    try:
        value = float(raw)
    except ValueError:
        raise DataError(path, f"{where}: non-numeric {name} coordinate {raw!r}") from None
    if not math.isfinite(value):
        raise DataError(path, f"{where}: non-finite {name} coordinate {raw!r}")
    return value


def parse_aperio_xml(path: str | os.PathLike) -> list[np.ndarray]:
    """Read the region polygons of an Aperio ImageScope XML annotation file (MoNuSeg format).

    Every ``<Region>`` element of the file (all ``<Annotation>`` layers, document order) gives one
    polygon; none is dropped. Regions with fewer than 3 vertices are returned as they are (see the
    module docstring for how they are rasterised).

    Args:
        path: the ``.xml`` file.

    Returns:
        One ``(N, 2)`` float64 array per region, columns ``x`` (column) and ``y`` (row).

    Raises:
        DataError: missing file, malformed XML, a file that is not an Aperio annotation, a region
            without vertices, a vertex without ``X``/``Y`` attribute, or a non-numeric/non-finite
            coordinate. The message starts with the path and names the region (``Id`` and position).
    """
    path_str = str(path)
    if not os.path.isfile(path_str):
        raise DataError(path_str, "annotation file not found")
    try:
        root = ET.parse(path_str).getroot()
    except ET.ParseError as e:
        raise DataError(path_str, f"malformed XML ({e})") from None
    except OSError as e:
        raise DataError(path_str, f"unreadable annotation file ({e})") from None
    regions = list(root.iter("Region"))
    if not regions and root.tag != "Annotations":
        raise DataError(path_str, f"not an Aperio annotation file: root element <{root.tag}> and no <Region>")
    polygons: list[np.ndarray] = []
    for index, region in enumerate(regions):
        where = f"region #{index + 1} (Id={region.get('Id', '?')})"
        vertices = list(region.iter("Vertex"))
        if not vertices:
            raise DataError(path_str, f"{where} has no <Vertex>; its position is unknown")
        try:  # fast path: numpy parses all coordinate strings at once
            coords = np.array([(v.attrib["X"], v.attrib["Y"]) for v in vertices], dtype=np.float64)
            if not np.all(np.isfinite(coords)):
                raise ValueError("non-finite")
        except (KeyError, ValueError, TypeError):  # slow path: find and name the offending vertex
            coords = np.empty((len(vertices), 2), dtype=np.float64)
            for k, vertex in enumerate(vertices):
                coords[k, 0] = _coordinate(vertex, "X", path_str, f"{where}, vertex #{k + 1}")
                coords[k, 1] = _coordinate(vertex, "Y", path_str, f"{where}, vertex #{k + 1}")
        polygons.append(coords)
    return polygons


def _check_polygon(polygon: np.ndarray, index: int) -> np.ndarray:
    p = np.asarray(polygon, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] == 0:
        raise ValueError(f"polygon {index} must be a non-empty (N, 2) array of (x, y), got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"polygon {index} has non-finite coordinates")
    return p


def _nearest_free_pixel(
    label: np.ndarray, counts: np.ndarray, row: int, col: int
) -> tuple[int, int]:
    """Nearest pixel to (row, col) that is background or not the only pixel of its region."""
    height, width = label.shape
    for radius in range(1, max(height, width) + 1):
        r0, r1 = max(row - radius, 0), min(row + radius + 1, height)
        c0, c1 = max(col - radius, 0), min(col + radius + 1, width)
        window = label[r0:r1, c0:c1]
        free = (window == 0) | (counts[window] > 1)
        if free.any():
            rr, cc = np.nonzero(free)
            rr = rr + r0
            cc = cc + c0
            dist = (rr - row) ** 2 + (cc - col) ** 2
            best = np.lexsort((cc, rr, dist))[0]
            return int(rr[best]), int(cc[best])
        if r0 == 0 and c0 == 0 and r1 == height and c1 == width:
            break
    raise ValueError(f"more regions than pixels in a {height}x{width} image: cannot give every region a pixel")


def polygons_to_instance_map(
    polygons: Sequence[np.ndarray],
    shape: tuple[int, int],
    *,
    return_stats: bool = False,
) -> np.ndarray | tuple[np.ndarray, RasterStats]:
    """Rasterise polygons to an int32 instance label map; polygon ``i`` gets id ``i + 1``.

    Overlaps go to the smallest polygon (fewest filled pixels, ties to the earlier polygon); regions
    left without a pixel get their centroid pixel, so every polygon keeps exactly one id with at least
    one pixel. See the module docstring for the exact rules.

    Args:
        polygons: ``(N, 2)`` arrays of ``(x, y)`` vertices (as returned by :func:`parse_aperio_xml`).
        shape: ``(H, W)`` of the image.
        return_stats: also return a :class:`RasterStats`.

    Returns:
        ``(H, W)`` int32 map (0 background), or ``(map, stats)`` when ``return_stats``.

    Raises:
        ValueError: bad ``shape``, a malformed or non-finite polygon, or more polygons than pixels.
    """
    if len(shape) != 2 or int(shape[0]) <= 0 or int(shape[1]) <= 0:
        raise ValueError(f"shape must be a positive (H, W), got {tuple(shape)}")
    height, width = int(shape[0]), int(shape[1])
    n = len(polygons)
    if n > min(height * width, np.iinfo(np.int32).max):
        raise ValueError(f"{n} regions cannot each get a pixel of a {height}x{width} image")
    checked = [_check_polygon(p, i) for i, p in enumerate(polygons)]

    linear_parts: list[np.ndarray] = []
    fill_counts = np.zeros(n, dtype=np.int64)
    for i, p in enumerate(checked):
        if p.shape[0] < 3:
            continue
        rr, cc = draw_polygon(p[:, 1], p[:, 0], shape=(height, width))
        if rr.size:
            linear_parts.append(rr.astype(np.int64) * width + cc)
            fill_counts[i] = rr.size

    label = np.zeros(height * width, dtype=np.int32)
    n_overlap = 0
    if linear_parts:
        linear = np.concatenate(linear_parts)
        owner = np.repeat(np.arange(n, dtype=np.int64), fill_counts)
        # priority rank: smaller fill first, then region order
        rank = np.empty(n, dtype=np.int64)
        rank[np.lexsort((np.arange(n), fill_counts))] = np.arange(n)
        order = np.lexsort((rank[owner], linear))
        linear_sorted = linear[order]
        first = np.ones(linear_sorted.size, dtype=bool)
        first[1:] = linear_sorted[1:] != linear_sorted[:-1]
        label[linear_sorted[first]] = (owner[order][first] + 1).astype(np.int32)
        group_sizes = np.diff(np.flatnonzero(np.append(first, True)))
        n_overlap = int(np.count_nonzero(group_sizes > 1))
    label = label.reshape(height, width)

    # centroid fallback for regions without a pixel of their own
    counts = np.bincount(label.ravel(), minlength=n + 1).astype(np.int64)
    counts[0] = 0
    missing = np.flatnonzero(counts[1:] == 0)
    n_relocated = 0
    for i in missing:
        centre = checked[i].mean(axis=0)
        col = int(np.clip(np.floor(centre[0] + 0.5), 0, width - 1))
        row = int(np.clip(np.floor(centre[1] + 0.5), 0, height - 1))
        current = int(label[row, col])
        if current != 0 and counts[current] <= 1:
            row, col = _nearest_free_pixel(label, counts, row, col)
            current = int(label[row, col])
            n_relocated += 1
        if current != 0:
            counts[current] -= 1
        label[row, col] = i + 1
        counts[i + 1] = 1

    if return_stats:
        stats = RasterStats(n_regions=n, n_fallback=int(missing.size), n_relocated=n_relocated,
                            n_overlap_pixels=n_overlap)
        return label, stats
    return label


def xml_to_instance_map(
    xml_path: str | os.PathLike,
    shape: tuple[int, int],
    *,
    return_stats: bool = False,
) -> np.ndarray | tuple[np.ndarray, RasterStats]:
    """:func:`parse_aperio_xml` then :func:`polygons_to_instance_map` (int32 ``(H, W)``, ids = region order).

    Raises:
        DataError: unreadable or malformed XML, or more regions than the image has pixels.
    """
    polygons = parse_aperio_xml(xml_path)
    try:
        return polygons_to_instance_map(polygons, shape, return_stats=return_stats)
    except ValueError as e:
        raise DataError(xml_path, str(e)) from e
