"""Reader for MoNuSeg 2018 (H&E, 40x, 1000x1000 tiles): images with instance label maps or Aperio XML.

Layouts (per split directory; ``read_monuseg(root, "train")`` reads ``<root>/train``):

- the shared benchmark layout::

      <root>/train/images/<stem>.tif  +  <root>/train/instance_labels_bruceyang2012/<stem>.png
      <root>/test/images/<stem>.tif   +  <root>/test/annotations/<stem>.xml

- the original releases: ``MoNuSeg 2018 Training Data/{Tissue Images,Annotations}`` and
  ``MoNuSegTestData/`` (``.tif`` and ``.xml`` side by side). ``<root>/MoNuSegTrainingData`` and
  ``<root>/MoNuSegTestData`` are accepted as the ``train`` / ``test`` split directories.
- any split directory with an image folder (``images``, ``Images``, ``Tissue Images``,
  ``Tissue_Images``, or the split directory itself when it holds ``.tif`` files) and labels that are
  either label maps (``.png``/``.tif``/``.tiff``, 0 = background, k = nucleus k) or Aperio XML.

Label lookup for image ``<stem>``: the folders ``instance_labels*`` (sorted by name), ``labels``,
``Labels``, ``annotations``, ``Annotations`` of the split directory and then the image folder itself
are searched in this order (or only ``labels_dir`` when given); in each folder ``<stem>.png``,
``<stem>.tif``, ``<stem>.tiff`` and then ``<stem>.xml``; the first file found is the label. (The image
folder itself is only searched for ``.xml``.)

XML annotations are rasterised once by :func:`~monai_scribble.data.monuseg_xml.xml_to_instance_map`
(smallest polygon wins overlaps, one id per ``<Region>``) to a uint16 PNG in
``dataset_cache_dir("monuseg_xml", <split dir>, cache_dir)``; ``manifest.json`` there records each
XML file's path, byte size and mtime and the image shape, and a PNG is regenerated when any of these
changes or the PNG is missing or was altered. The source directories are never written to.

Image and label sizes are read from the file headers (no pixel decoding), so reading the sample list
is fast; pixels are decoded later by the transforms.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Sequence

from monai_scribble.data.cache import dataset_cache_dir
from monai_scribble.data.image_io import image_size, write_png
from monai_scribble.data.monuseg_xml import xml_to_instance_map
from monai_scribble.data.records import Sample
from monai_scribble.errors import DataError
from monai_scribble.utils.atomic import atomic_write

__all__ = [
    "MONUSEG_SPLITS",
    "MONUSEG_XML_CACHE_KIND",
    "read_monuseg",
    "read_monuseg_split",
    "validate_sample_sizes",
]

MONUSEG_SPLITS: tuple[str, ...] = ("train", "test")
MONUSEG_XML_CACHE_KIND = "monuseg_xml"

_SPLIT_DIR_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("train", "MoNuSegTrainingData", "MoNuSeg 2018 Training Data"),
    "test": ("test", "MoNuSegTestData", "MoNuSeg 2018 Test Data"),
}
_IMAGE_DIR_NAMES: tuple[str, ...] = ("images", "Images", "Tissue Images", "Tissue_Images")
_LABEL_DIR_NAMES: tuple[str, ...] = ("labels", "Labels", "annotations", "Annotations")
_IMAGE_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".png")
_LABEL_MAP_SUFFIXES: tuple[str, ...] = (".png", ".tif", ".tiff")
_MANIFEST_NAME = "manifest.json"
_MANIFEST_VERSION = 1  # bump when the rasterisation rules change: every cached PNG is then regenerated


def _find_split_dir(root: Path, split: str) -> Path:
    if split not in _SPLIT_DIR_NAMES:
        raise ValueError(f"split must be one of {MONUSEG_SPLITS}, got {split!r}")
    if not root.is_dir():
        raise DataError(root, "MoNuSeg root directory not found")
    for name in _SPLIT_DIR_NAMES[split]:
        if (root / name).is_dir():
            return root / name
    others = ", ".join(repr(n) for n in _SPLIT_DIR_NAMES[split][1:])
    raise DataError(root / split, f"MoNuSeg {split!r} split directory not found (also looked for {others} in {root})")


def _list_images(folder: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    images: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or not entry.is_file() or entry.suffix.lower() not in suffixes:
            continue
        stem = entry.stem
        if stem in images:
            raise DataError(entry, f"two images with the id {stem!r}: {images[stem].name} and {entry.name}")
        images[stem] = entry
    return images


def _find_images_dir(split_dir: Path) -> Path:
    for name in _IMAGE_DIR_NAMES:
        if (split_dir / name).is_dir():
            return split_dir / name
    if any(p.suffix.lower() in (".tif", ".tiff") for p in split_dir.iterdir() if p.is_file()):
        return split_dir  # original MoNuSegTestData: .tif and .xml side by side
    names = ", ".join(_IMAGE_DIR_NAMES)
    raise DataError(
        split_dir / "images", f"image directory not found (looked for {names} and .tif files in {split_dir})"
    )


def _label_dirs(split_dir: Path, images_dir: Path) -> list[Path]:
    dirs = sorted(p for p in split_dir.iterdir() if p.is_dir() and p.name.startswith("instance_labels"))
    dirs += [split_dir / n for n in _LABEL_DIR_NAMES if (split_dir / n).is_dir()]
    dirs.append(images_dir)
    return dirs


def _find_label(stem: str, label_dirs: Sequence[Path], images_dir: Path) -> Path | None:
    for folder in label_dirs:
        suffixes = (".xml",) if folder == images_dir else (*_LABEL_MAP_SUFFIXES, ".xml")
        for suffix in suffixes:
            candidate = folder / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _missing_label_error(image: Path, stem: str, label_dirs: Sequence[Path], images_dir: Path) -> DataError:
    first_dir = label_dirs[0]
    expected = first_dir / (f"{stem}.xml" if first_dir == images_dir else f"{stem}.png")
    searched = ", ".join(str(d) for d in label_dirs)
    return DataError(
        image,
        f"no instance label map or XML annotation for this image; expected {expected} "
        f"(looked for {stem}.png/.tif/.tiff/.xml in: {searched})",
    )


def _read_manifest(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(manifest, dict) or manifest.get("version") != _MANIFEST_VERSION:
        return {}
    entries = manifest.get("entries")
    return entries if isinstance(entries, dict) else {}


def _write_manifest(path: Path, entries: dict) -> None:
    merged = _read_manifest(path)  # keep entries another process may have added meanwhile
    merged.update(entries)
    text = json.dumps({"version": _MANIFEST_VERSION, "entries": merged}, indent=1, sort_keys=True)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _convert_xml_labels(
    pairs: Iterable[tuple[str, Path, Path]], cache: Path
) -> tuple[dict[str, Path], bool]:
    """Rasterise (stem, image, xml) triples into ``cache`` unless an up-to-date PNG is there.

    Returns the PNG path per stem and whether anything was (re)generated.
    """
    manifest_path = cache / _MANIFEST_NAME
    entries = _read_manifest(manifest_path)
    outputs: dict[str, Path] = {}
    updated: dict[str, dict] = {}
    for stem, image, xml in pairs:
        png = cache / f"{stem}.png"
        xml_stat = xml.stat()
        shape = list(image_size(image))
        entry = entries.get(stem)
        fresh = (
            isinstance(entry, dict)
            and entry.get("xml") == str(xml.resolve())
            and entry.get("xml_size") == xml_stat.st_size
            and entry.get("xml_mtime_ns") == xml_stat.st_mtime_ns
            and entry.get("shape") == shape
            and png.is_file()
            and entry.get("png_size") == png.stat().st_size
            and entry.get("png_mtime_ns") == png.stat().st_mtime_ns
        )
        if not fresh:
            label, stats = xml_to_instance_map(xml, tuple(shape), return_stats=True)
            try:
                write_png(png, label)
            except ValueError as e:  # more than 65535 regions
                raise DataError(xml, f"cannot store the instance map as uint16 PNG ({e})") from e
            png_stat = png.stat()
            updated[stem] = {
                "xml": str(xml.resolve()),
                "xml_size": xml_stat.st_size,
                "xml_mtime_ns": xml_stat.st_mtime_ns,
                "image": str(image.resolve()),
                "shape": shape,
                "png_size": png_stat.st_size,
                "png_mtime_ns": png_stat.st_mtime_ns,
                **stats.to_dict(),
            }
        outputs[stem] = png
    if updated:
        _write_manifest(manifest_path, updated)
    return outputs, bool(updated)


def validate_sample_sizes(samples: Iterable[Sample]) -> None:
    """Check that every sample's label map (and scribble, if any) has its image's height and width.

    Only file headers are read.

    Raises:
        DataError: naming the label file and both sizes (``HxW``), or an unreadable file.
    """
    for sample in samples:
        size = image_size(sample.image)
        for kind, other in (("label map", sample.label), ("scribble", sample.scribble)):
            if other is None:
                continue
            other_size = image_size(other)
            if other_size != size:
                raise DataError(
                    other,
                    f"{kind} size {other_size[0]}x{other_size[1]} (HxW) differs from image size "
                    f"{size[0]}x{size[1]} of {sample.image}",
                )


def read_monuseg_split(
    split_dir: str | os.PathLike,
    *,
    images_dir: str | os.PathLike | None = None,
    labels_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    require_labels: bool = True,
    check_sizes: bool = True,
) -> list[Sample]:
    """Read one MoNuSeg split directory (see the module docstring for the layouts).

    Args:
        split_dir: folder holding the images (and usually the labels) of one split.
        images_dir: image folder; default: found in ``split_dir``.
        labels_dir: the only folder searched for labels; default: the standard folders of ``split_dir``.
        cache_dir: cache root for rasterised XML (default ``$MONAI_SCRIBBLE_CACHE`` or
            ``~/.cache/monai_scribble``).
        require_labels: raise for an image without label; when ``False`` it gets ``label=None``.
        check_sizes: check label sizes against image sizes (headers only).

    Returns:
        One :class:`Sample` per image, sorted by id; ``label`` is the label map, or the cached PNG
        rasterised from the XML annotation.

    Raises:
        DataError: missing split/image/label folder, no image, an image without label (naming the
            image and the expected label path), a label of another size than its image, or an
            unreadable/malformed file.
    """
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DataError(split_dir, "MoNuSeg split directory not found")
    if images_dir is None:
        images = _find_images_dir(split_dir)
    else:
        images = Path(images_dir)
        if not images.is_dir():
            raise DataError(images, "image directory not found")
    suffixes = (".tif", ".tiff") if images == split_dir else _IMAGE_SUFFIXES
    image_files = _list_images(images, suffixes)
    if not image_files:
        raise DataError(images, f"no images ({', '.join('*' + s for s in suffixes)}) found")
    if labels_dir is not None:
        label_dirs = [Path(labels_dir)]
        if not label_dirs[0].is_dir():
            raise DataError(label_dirs[0], "label directory not found")
    else:
        label_dirs = _label_dirs(split_dir, images)

    labels: dict[str, Path | None] = {}
    xml_pairs: list[tuple[str, Path, Path]] = []
    for stem, image in image_files.items():
        label = _find_label(stem, label_dirs, images)
        if label is None and require_labels:
            raise _missing_label_error(image, stem, label_dirs, images)
        if label is not None and label.suffix.lower() == ".xml":
            xml_pairs.append((stem, image, label))
        else:
            labels[stem] = label
    if xml_pairs:
        cache = dataset_cache_dir(MONUSEG_XML_CACHE_KIND, split_dir, cache_dir)
        converted, _ = _convert_xml_labels(xml_pairs, cache)
        labels.update(converted)

    samples = [
        Sample(id=stem, image=str(image_files[stem]), label=None if labels[stem] is None else str(labels[stem]))
        for stem in sorted(image_files)
    ]
    if check_sizes:
        validate_sample_sizes(samples)
    return samples


def read_monuseg(
    root: str | os.PathLike,
    split: str = "train",
    cache_dir: str | os.PathLike | None = None,
    *,
    require_labels: bool = True,
    check_sizes: bool = True,
) -> list[Sample]:
    """Read the ``train`` or ``test`` split of MoNuSeg under ``root`` (e.g. ``../shared/data/monuseg``).

    The split directory is ``<root>/<split>`` (or ``<root>/MoNuSegTrainingData`` /
    ``<root>/MoNuSegTestData``); see :func:`read_monuseg_split` for the rest.

    Returns:
        Samples sorted by id (30 for the shared ``train``, 14 for ``test``).
    """
    split_dir = _find_split_dir(Path(root), split)
    return read_monuseg_split(split_dir, cache_dir=cache_dir, require_labels=require_labels,
                              check_sizes=check_sizes)
