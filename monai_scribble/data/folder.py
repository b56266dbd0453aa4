"""Generic folder reader for a lab's own data.

Layout (files matched by stem, any supported suffix, see
:data:`~monai_scribble.data.image_io.IMAGE_SUFFIXES`)::

    <root>/images/<stem>.png|.tif|...      the images (required)
    <root>/scribbles/<stem>.png             scribbles (format chosen explicitly when reading)
    <root>/labels/<stem>.png|.tif           optional instance label maps (for evaluation)

An image without a scribble gets one synthesised from its label map when ``labels/`` holds one
(``Sample.scribble`` is ``None``). An image with neither is *unannotated* (both ``None``): it is not trained on,
but ``prepare`` lists it under ``datalist["unscribbled"]`` so that ``scribble_next.csv`` ranks it with the
training images (README: Scribble in rounds). A scribble or label without an image is reported as a warning
and ignored.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from monai_scribble.data.image_io import file_stem, has_image_suffix
from monai_scribble.data.records import Sample
from monai_scribble.errors import DataError

__all__ = ["is_annotated", "read_folder"]

logger = logging.getLogger(__name__)


def _index(directory: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.name.startswith(".") or not has_image_suffix(path):
            continue
        stem = file_stem(path)
        if stem in files:
            raise DataError(path, f"two files share the stem '{stem}' ({files[stem].name}); stems must be unique")
        files[stem] = path
    return files


def read_folder(root: str | os.PathLike) -> list[Sample]:
    """List the samples of a folder dataset.

    Args:
        root: folder holding ``images/`` and ``scribbles/`` and/or ``labels/``.

    Returns:
        Samples sorted by id (the file stem); unannotated images have neither ``scribble`` nor ``label``.

    Raises:
        DataError: ``root`` or ``images/`` missing, no images, neither ``scribbles/`` nor ``labels/``,
            duplicate stems, or no image with a scribble or label.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "dataset directory not found")
    image_dir, scribble_dir, label_dir = root / "images", root / "scribbles", root / "labels"
    if not image_dir.is_dir():
        raise DataError(image_dir, "images directory not found (expected images/, scribbles/ and optional labels/)")
    images = _index(image_dir)
    if not images:
        raise DataError(image_dir, "no image files found")
    if not scribble_dir.is_dir() and not label_dir.is_dir():
        raise DataError(root, "neither scribbles/ nor labels/ found; scribbles are needed for training")
    scribbles = _index(scribble_dir) if scribble_dir.is_dir() else {}
    labels = _index(label_dir) if label_dir.is_dir() else {}

    for kind, files in (("scribble", scribbles), ("label", labels)):
        orphans = sorted(set(files) - set(images))
        if orphans:
            logger.warning("%s: %d %s file(s) without an image are ignored: %s", root, len(orphans), kind, orphans[:5])
    samples = [Sample(id=stem, image=str(image), label=str(labels[stem]) if stem in labels else None,
                      scribble=str(scribbles[stem]) if stem in scribbles else None) for stem, image in images.items()]  # fmt: skip
    unannotated = [s.id for s in samples if not is_annotated(s)]
    if len(unannotated) == len(samples):
        raise DataError(root, "no image has a scribble (scribbles/<stem>.png) or a label (labels/<stem>.png)")
    if unannotated:
        logger.warning("%s: %d image(s) without scribble or label are not trained on (listed as unscribbled, ranked in "
                       "scribble_next.csv): %s", root, len(unannotated), unannotated[:5])  # fmt: skip
    return samples


def is_annotated(sample: Sample) -> bool:
    """Whether a folder sample has a scribble or a label map (else it is only ranked, not trained on)."""
    return sample.scribble is not None or sample.label is not None
