"""Inputs and outputs of ``configs/inference.json``: the images of a folder in, instance maps and overlays out."""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Mapping
from pathlib import Path

import torch
from monai.transforms import MapTransform

from monai_scribble.data.image_io import file_stem, has_image_suffix, read_image, write_label, write_png
from monai_scribble.errors import DataError
from monai_scribble.visualize import contour_overlay

__all__ = ["MonaiLabelLayoutd", "SaveInstancesd", "check_output_dir", "list_input_images"]

logger = logging.getLogger(__name__)

INPUT_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".nii.gz", ".nii")


def check_output_dir(input_dir: str | os.PathLike, output_dir: str | os.PathLike) -> None:
    """Refuse an ``output_dir`` that is the ``input_dir`` folder (compared resolved, so symlinks count).

    There, ``<stem>_label.<ext>`` outputs would overwrite inputs of that name and a later run would
    read the outputs as inputs. An output folder inside the input folder, or an input folder inside
    the output folder, is fine: inputs are listed non-recursively and outputs go to the output folder
    itself.

    Raises:
        DataError: both name the same folder (the message names both arguments and what to do).
    """
    source, target = Path(input_dir).resolve(), Path(output_dir).resolve()
    if source == target or (source.exists() and target.exists() and os.path.samefile(source, target)):
        both = "" if str(input_dir) == str(output_dir) else f" (both are {source})"
        raise DataError(
            output_dir,
            f"--output_dir is the same folder as --input_dir {input_dir}{both}: the <stem>_label and <stem>_overlay.png "
            "outputs would overwrite inputs of those names and be read as inputs next time; pass another --output_dir",
        )


def list_input_images(input_dir: str | os.PathLike, output_dir: str | os.PathLike | None = None) -> list[dict]:
    """``[{"id": stem, "image": path}]`` for every readable image in ``input_dir`` (sorted by name).

    Each image is read once here: an unreadable or corrupt file is logged (naming the file and the
    problem) and skipped, so the other images are still segmented. With ``output_dir`` (where the
    results will be written), :func:`check_output_dir` runs first, before anything is read or written.

    Raises:
        DataError: ``input_dir`` is missing or holds no image files, or ``output_dir`` is the same folder.
    """
    if output_dir is not None:
        check_output_dir(input_dir, output_dir)
    folder = Path(input_dir)
    if not folder.is_dir():
        raise DataError(folder, "input folder not found")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and has_image_suffix(p) and p.name.lower().endswith(INPUT_SUFFIXES))
    if not paths:
        raise DataError(folder, f"no image files ({', '.join(INPUT_SUFFIXES)}) in the input folder")
    items, skipped = [], []
    for path in paths:
        try:
            read_image(path)
        except DataError as err:
            logger.error("skipping %s", err)
            skipped.append(path.name)
            continue
        items.append({"id": file_stem(path), "image": str(path.resolve())})
    stems = [item["id"] for item in items]
    duplicated = sorted({s for s in stems if stems.count(s) > 1})
    if duplicated:
        raise DataError(folder, f"several files share the stems {duplicated}: their outputs would overwrite each other")
    logger.info("%d images to segment in %s, %d skipped as unreadable %s", len(items), folder, len(skipped), skipped or "")
    return items


class SaveInstancesd(MapTransform):
    """Write ``<output_dir>/<stem>_label<ext>`` (uint16 instance ids, input H x W) and ``<stem>_overlay.png``.

    The stem is that of the file the image was read from (``meta["filename_or_obj"]`` of ``image_key``).

    Args:
        keys: the instance map key (``(1, H, W)``).
        output_dir: output folder (created).
        output_ext: ``.tif`` (default), ``.png`` or ``.nii.gz``.
        image_key: key whose metadata names the input file.
        overlay: also write the contour overlay PNG.
    """

    def __init__(self, keys: str, output_dir: str | os.PathLike, output_ext: str = ".tif", image_key: str = "image", overlay: bool = True) -> None:
        super().__init__(keys)
        if not output_ext.startswith("."):
            output_ext = "." + output_ext
        if output_ext.lower() not in (".tif", ".tiff", ".png", ".nii.gz", ".nii"):
            raise ValueError(f"unsupported output_ext '{output_ext}'; use .tif, .png or .nii.gz")
        self.output_dir = Path(output_dir)
        self.output_ext = output_ext
        self.image_key = image_key
        self.overlay = overlay

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        source = Path(str(d[self.image_key].meta["filename_or_obj"]))
        for key in self.key_iterator(d):
            instances = torch.as_tensor(d[key]).detach().cpu().numpy().reshape(d[key].shape[-2:])
            label_path = write_label(self.output_dir / f"{file_stem(source)}_label{self.output_ext}", instances)
            if self.overlay:
                write_png(self.output_dir / f"{file_stem(source)}_overlay.png", contour_overlay(read_image(source), instances))
            logger.info("%s: %d nuclei -> %s", source.name, int(instances.max()), label_path)
        return d


class MonaiLabelLayoutd(MapTransform):
    """``(1, H, W)`` -> ``(W, H)``: the 2-D layout MONAI Label's result writer expects.

    MONAI's image readers index 2-D images as ``(x, y)``, so MONAI Label's writer transposes the array it
    gets and drops no channel: our row-major ``(1, H, W)`` maps would come back as ``1 x H`` images. The
    deployed bundle of a MONAI Label app sets ``monailabel_layout: true`` in inference.json (done by
    :mod:`monai_scribble.monailabel_app`); our own command line keeps ``(1, H, W)``.

    Args:
        keys: keys to convert.
        enabled: ``False`` passes data through unchanged.
    """

    def __init__(self, keys: str, enabled: bool = True) -> None:
        super().__init__(keys)
        self.enabled = bool(enabled)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        if not self.enabled:
            return d
        for key in self.key_iterator(d):
            value = d[key]
            if value.ndim != 3 or value.shape[0] != 1:
                raise ValueError(f"expected a (1, H, W) map under '{key}', got shape {tuple(value.shape)}")
            d[key] = value[0].T
        return d
