"""Reader for the 2018 Data Science Bowl ``stage1_train`` set in its original Kaggle layout.

Layout::

    stage1_train/<image_id>/images/<image_id>.png     RGBA (or RGB / gray) image
    stage1_train/<image_id>/masks/<mask_id>.png       one binary mask (0/255) per nucleus

Each image's masks are merged into one instance map (ids ``1..N`` in sorted mask-file order) and
cached as a 16-bit PNG, together with a small JSON sidecar holding the image's mean HSV (used by the
modality split, :mod:`monai_scribble.data.splits`) and a file signature. Later reads only list the
mask folders and compare signatures, so the slow first read (670 images, 29,461 masks) is done once.

Overlapping masks: a pixel claimed by several masks goes to the **smallest** mask (ties: the mask
file that sorts first), so small nuclei are not swallowed by larger neighbours. The number of such
pixels is recorded per image (``overlap_pixels`` in the sidecar) and logged.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from skimage.color import rgb2hsv

from monai_scribble.data.cache import dataset_cache_dir
from monai_scribble.data.image_io import image_to_rgb_float, read_array, write_png
from monai_scribble.data.records import Sample
from monai_scribble.errors import DataError
from monai_scribble.utils.atomic import atomic_write

__all__ = ["DSBImageInfo", "read_dsb2018", "merge_instance_masks", "CACHE_VERSION"]

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
"""Bumped whenever the cached conversion changes, which invalidates older caches."""


@dataclass(frozen=True)
class DSBImageInfo:
    """What the reader knows about one DSB image after conversion.

    Attributes:
        sample: image path, cached instance-map path and id.
        shape: ``(H, W)`` of the image.
        num_masks: number of mask files, equal to the number of instance ids.
        overlap_pixels: pixels claimed by more than one mask (resolved to the smallest mask).
        mean_hsv: per-image mean of the HSV pixels, each channel in ``[0, 1]`` (skimage convention).
    """

    sample: Sample
    shape: tuple[int, int]
    num_masks: int
    overlap_pixels: int
    mean_hsv: tuple[float, float, float]


def merge_instance_masks(masks: Iterable[np.ndarray], shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Merge binary masks into one instance map; overlaps go to the smallest mask.

    Args:
        masks: binary ``(H, W)`` arrays (non-zero = inside), in id order (id = position + 1).
        shape: ``(H, W)`` of the output.

    Returns:
        ``(instance_map, overlap_pixels)``: int32 ``(H, W)`` map with ids ``1..N`` (0 background), and
        the number of pixels covered by two or more masks.
    """
    # sparse: only the pixels of each mask are touched, then overlaps are resolved in one sort
    pixels, areas, ids = [], [], []
    for index, mask in enumerate(masks):
        flat = np.flatnonzero(np.asarray(mask).ravel() != 0)  # nonzero on bool is ~20x faster than on uint8
        pixels.append(flat)
        areas.append(np.full(flat.size, flat.size, dtype=np.int64))
        ids.append(np.full(flat.size, index + 1, dtype=np.int32))
    instance_map = np.zeros(int(np.prod(shape)), dtype=np.int32)
    if not pixels:
        return instance_map.reshape(shape), 0
    pixel, area, ident = np.concatenate(pixels), np.concatenate(areas), np.concatenate(ids)
    # per pixel: smallest area first, then lowest id (sorted file order); the first claim wins
    order = np.lexsort((ident, area, pixel))
    pixel, ident = pixel[order], ident[order]
    first = np.ones(pixel.size, dtype=bool)
    first[1:] = pixel[1:] != pixel[:-1]
    instance_map[pixel[first]] = ident[first]
    overlap = int(np.unique(pixel[~first]).size)  # pixels claimed more than once
    return instance_map.reshape(shape), overlap


def _image_path(image_dir: Path) -> Path:
    return image_dir / "images" / f"{image_dir.name}.png"


def _mask_files(image_dir: Path) -> list[Path]:
    mask_dir = image_dir / "masks"
    if not mask_dir.is_dir():
        raise DataError(mask_dir, "mask directory not found (every DSB image needs images/ and masks/)")
    masks = sorted(p for p in mask_dir.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith("."))
    if not masks:
        raise DataError(mask_dir, "image has no mask files (*.png)")
    return masks


def _signature(image_path: Path, masks: list[Path]) -> dict:
    stat = image_path.stat()
    return {
        "version": CACHE_VERSION,
        "image_size": stat.st_size,
        "image_mtime_ns": stat.st_mtime_ns,
        "masks": [m.name for m in masks],
    }


def _convert_and_cache(image_id: str, image_path: Path, masks: list[Path], signature: dict, cache: Path) -> dict:
    """Merge one image's masks, write the instance map and its sidecar (atomically); return the sidecar."""
    rgb = image_to_rgb_float(read_array(image_path), image_path)
    shape = rgb.shape[:2]

    def load(mask_path: Path) -> np.ndarray:
        mask = read_array(mask_path)
        if mask.ndim == 3:
            mask = mask[..., 0]
        if mask.shape != shape:
            raise DataError(mask_path, f"mask size {mask.shape} differs from image size {shape} ({image_path})")
        return mask

    instance_map, overlap = merge_instance_masks((load(m) for m in masks), shape)
    mean_hsv = rgb2hsv(rgb).reshape(-1, 3).mean(axis=0)
    info = {
        "shape": list(shape),
        "num_masks": len(masks),
        "overlap_pixels": overlap,
        "mean_hsv": [float(v) for v in mean_hsv],
        "signature": signature,
    }
    missing = len(masks) - (len(np.unique(instance_map)) - 1)
    if missing:
        # a mask fully covered by smaller ones, or an empty mask file: report, keep the others
        info["lost_masks"] = missing
    write_png(cache / f"{image_id}.png", instance_map)
    atomic_write(cache / f"{image_id}.json", lambda tmp: Path(tmp).write_text(json.dumps(info)))
    return info


def _convert_job(job: tuple[str, Path, list[Path], dict, Path]) -> dict:
    return _convert_and_cache(*job)


def read_dsb2018(
    stage_dir: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    num_workers: int | None = None,
) -> list[DSBImageInfo]:
    """Read every image of a DSB 2018 ``stage1_train``-style folder, converting masks once.

    Args:
        stage_dir: folder holding one sub-folder per image id.
        cache_dir: cache root (default ``$MONAI_SCRIBBLE_CACHE`` or ``~/.cache/monai_scribble``); the
            instance maps go to ``<cache_dir>/dsb2018/<name>-<hash>/<image_id>.png``.
        progress: show a tqdm progress bar while converting.
        num_workers: processes used for the conversion (default: one per CPU core; 1 = no pool).

    Returns:
        One :class:`DSBImageInfo` per image, sorted by image id.

    Raises:
        DataError: missing or empty folder, image without masks, unreadable/corrupt PNG, mask size
            different from the image size. The message names the file.
    """
    stage = Path(stage_dir)
    if not stage.is_dir():
        raise DataError(stage, "DSB 2018 directory not found")
    image_dirs = sorted(p for p in stage.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not image_dirs:
        raise DataError(stage, "no image folders found (expected <image_id>/images/<image_id>.png)")
    cache = dataset_cache_dir("dsb2018", stage, cache_dir)
    cache.mkdir(parents=True, exist_ok=True)

    todo: list[tuple[Path, Path, list[Path], dict]] = []
    infos: dict[str, DSBImageInfo] = {}
    for image_dir in image_dirs:
        image_path = _image_path(image_dir)
        if not image_path.is_file():
            raise DataError(image_path, "image file not found (expected <image_id>/images/<image_id>.png)")
        masks = _mask_files(image_dir)
        signature = _signature(image_path, masks)
        sidecar = cache / f"{image_dir.name}.json"
        label_path = cache / f"{image_dir.name}.png"
        if sidecar.is_file() and label_path.is_file():
            try:
                cached = json.loads(sidecar.read_text())
            except (OSError, ValueError):
                cached = {}
            if cached.get("signature") == signature:
                infos[image_dir.name] = _info(image_dir.name, image_path, label_path, cached)
                continue
        todo.append((image_dir, image_path, masks, signature))

    if todo:
        workers = max(1, min(num_workers if num_workers is not None else (os.cpu_count() or 1), len(todo)))
        logger.info("converting %d of %d DSB images (masks -> instance maps, %d processes) into %s", len(todo), len(image_dirs), workers, cache)
        jobs = [(image_dir.name, image_path, masks, signature, cache) for image_dir, image_path, masks, signature in todo]
        with ExitStack() as stack:
            results: Iterable[dict] = map(_convert_job, jobs)
            if workers > 1:
                pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers))
                results = pool.map(_convert_job, jobs, chunksize=4)
            if progress:
                from tqdm import tqdm

                results = tqdm(results, total=len(jobs), desc="DSB masks", unit="image", disable=None)  # silent when not a terminal
            for (image_id, image_path, _, _, _), info in zip(jobs, results):
                if info["overlap_pixels"]:
                    logger.info("%s: %d pixels covered by several masks, given to the smallest", image_id, info["overlap_pixels"])
                if info.get("lost_masks"):
                    logger.warning("%s: %d mask(s) empty or fully covered by smaller masks", image_id, info["lost_masks"])
                infos[image_id] = _info(image_id, image_path, cache / f"{image_id}.png", info)
    return [infos[d.name] for d in image_dirs]


def _info(image_id: str, image_path: Path, label_path: Path, info: dict) -> DSBImageInfo:
    return DSBImageInfo(
        sample=Sample(id=image_id, image=str(image_path), label=str(label_path)),
        shape=(int(info["shape"][0]), int(info["shape"][1])),
        num_masks=int(info["num_masks"]),
        overlap_pixels=int(info["overlap_pixels"]),
        mean_hsv=(float(info["mean_hsv"][0]), float(info["mean_hsv"][1]), float(info["mean_hsv"][2])),
    )
