"""Reading and writing of images, instance label maps and scribble maps.

Every reader raises :class:`DataError` naming the offending file and the problem, and every writer
writes to a temporary file in the destination directory and renames it, so an interrupted run never
leaves a half-written file behind.

Supported inputs: PNG, JPEG, TIFF (through Pillow, which also reads the LZW/PackBits TIFFs of MoNuSeg),
NIfTI (``.nii``/``.nii.gz`` through nibabel) and NumPy ``.npy``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from monai_scribble.errors import DataError
from monai_scribble.utils.atomic import atomic_write

__all__ = [
    "IMAGE_SUFFIXES",
    "write_label",
    "image_size",
    "file_stem",
    "has_image_suffix",
    "read_array",
    "read_image",
    "read_instance_label",
    "image_to_rgb_float",
    "write_png",
]


IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".nii.gz", ".nii", ".npy")


def file_stem(path: str | os.PathLike) -> str:
    """File name without its image suffix (``a.nii.gz`` -> ``a``, ``b.png`` -> ``b``)."""
    name = Path(path).name
    lower = name.lower()
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def has_image_suffix(path: str | os.PathLike) -> bool:
    """Whether ``path`` ends with one of :data:`IMAGE_SUFFIXES` (case-insensitive)."""
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def _read_pil(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode == "P":  # palette images: colour images use the palette, label maps keep the indices
                img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
            elif mode in ("1", "LA", "CMYK", "YCbCr", "HSV", "LAB"):
                img = img.convert("L" if mode in ("1", "LA") else "RGB")
            array = np.array(img)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(path, f"unreadable or corrupt image ({type(e).__name__}: {e})") from e
    return array


def read_array(path: str | os.PathLike) -> np.ndarray:
    """Read a 2-D image file as stored: ``(H, W)`` or ``(H, W, C)``, original dtype.

    Raises:
        DataError: missing, unreadable or corrupt file, unsupported suffix, or not 2-D.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    lower = path.name.lower()
    if lower.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        try:
            array = np.asarray(nib.load(str(path)).dataobj)
        except Exception as e:  # nibabel raises many types for corrupt files
            raise DataError(path, f"unreadable or corrupt NIfTI ({type(e).__name__}: {e})") from e
        array = np.squeeze(array)
        if array.ndim >= 2:  # NIfTI stores (x, y[, c]); images here are (row, col[, c])
            array = np.swapaxes(array, 0, 1)
    elif lower.endswith(".npy"):
        try:
            array = np.load(path, allow_pickle=False)
        except Exception as e:
            raise DataError(path, f"unreadable .npy file ({type(e).__name__}: {e})") from e
    elif has_image_suffix(path):
        array = _read_pil(path)
    else:
        raise DataError(path, f"unsupported file type; expected one of {', '.join(IMAGE_SUFFIXES)}")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] > 4):
        raise DataError(path, f"expected a 2-D image (H, W) or (H, W, C<=4), got shape {tuple(array.shape)}")
    if array.size == 0:
        raise DataError(path, f"empty image of shape {tuple(array.shape)}")
    return array


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(H, W)`` of an image file from its header (pixels are not decoded), for every readable type.

    Raises:
        DataError: missing, unreadable or unsupported file.
    """
    path = Path(path)
    lower = path.name.lower()
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        if lower.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            shape = [s for s in nib.load(str(path)).shape if s != 1]
            return int(shape[1]), int(shape[0])  # NIfTI (x, y) = (column, row), as read_array
        if lower.endswith(".npy"):
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
            return int(shape[0]), int(shape[1])
        with Image.open(path) as img:
            width, height = img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, IndexError) as e:
        raise DataError(path, f"unreadable or corrupt image ({type(e).__name__}: {e})") from e
    return int(height), int(width)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image and convert it to RGB float32 ``(H, W, 3)`` in ``[0, 1]``.

    See :func:`image_to_rgb_float` for the conversion rules.
    """
    return image_to_rgb_float(read_array(path), path)


def image_to_rgb_float(array: np.ndarray, path: str | os.PathLike = "<array>") -> np.ndarray:
    """Convert a gray, gray+alpha, RGB or RGBA array of any bit depth to RGB float32 in ``[0, 1]``.

    Rules (explicit, in this one place):
        - gray ``(H, W)`` is replicated to three channels; the alpha channel of RGBA/LA is dropped
          (the DSB 2018 PNGs are RGBA with an opaque alpha);
        - ``uint8`` is divided by 255, ``uint16`` by 65535 unless its maximum is below 4096 (12-bit
          microscopy data), in which case by the image maximum;
        - other integer or float data is min-max scaled per image (a constant image becomes zeros).

    Args:
        array: ``(H, W)`` or ``(H, W, C)`` with ``C`` in 1..4.
        path: used in error messages.

    Returns:
        ``(H, W, 3)`` float32 array.
    """
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise DataError(path, f"cannot convert an array of shape {tuple(array.shape)} to RGB")
    channels = array.shape[-1]
    if channels in (2, 4):  # drop alpha
        array = array[..., : channels - 1]
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        peak = int(array.max())
        scale = 65535.0 if peak >= 4096 else float(max(peak, 1))
        return array.astype(np.float32) / scale
    if array.dtype == bool:
        return array.astype(np.float32)
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise DataError(path, "image contains NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if high <= low:
        return np.zeros_like(array)
    return (array - low) / (high - low)


def read_instance_label(path: str | os.PathLike) -> np.ndarray:
    """Read an instance label map (0 background, k > 0 instance ids) losslessly as int32 ``(H, W)``.

    Unlike ``PIL.Image.convert('L')`` (docs/method.md#pitfall-id-clipping) ids above 255 are kept.

    Raises:
        DataError: unreadable file, more than one channel with differing values, negative or
            non-integer values.
    """
    array = read_array(path)
    if array.ndim == 3:
        if not all(np.array_equal(array[..., 0], array[..., c]) for c in range(1, min(array.shape[-1], 3))):
            raise DataError(path, f"instance label map must have one channel, got shape {tuple(array.shape)}")
        array = array[..., 0]
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise DataError(path, "instance label map holds non-integer values")
    elif array.dtype.kind not in "uib":
        raise DataError(path, f"instance label map has unsupported dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise DataError(path, f"instance label map holds negative ids (min {array.min()})")
    if array.size and int(array.max()) > np.iinfo(np.int32).max:
        raise DataError(path, f"instance id {int(array.max())} does not fit in int32")
    return array.astype(np.int32)


def write_png(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a ``uint8`` (gray or RGB) or ``uint16`` (gray) array as PNG, atomically.

    Integer label maps with ids up to 65535 are stored as 16-bit PNG; larger ids raise ``ValueError``.
    """
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if array.dtype != np.uint8:
        if array.ndim != 2:
            raise ValueError(f"only 2-D arrays can be written as 16-bit PNG, got shape {array.shape}")
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise ValueError(f"values in [{array.min()}, {array.max()}] do not fit a 16-bit PNG ({path})")
        array = array.astype(np.uint16)
    image = Image.fromarray(array)
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def write_label(path: str | os.PathLike, labels: np.ndarray) -> Path:
    """Write a ``(H, W)`` instance map as uint16, atomically: ``.tif``/``.tiff``, ``.png`` or ``.nii.gz``/``.nii``.

    NIfTI files store ``(x, y) = (column, row)``, the layout :func:`read_array` reads back.

    Raises:
        ValueError: not 2-D, negative ids or ids above 65535, or an unsupported suffix.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"expected a (H, W) instance map for {path}, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 65535):
        raise ValueError(f"instance ids in [{labels.min()}, {labels.max()}] do not fit uint16 ({path})")
    labels = labels.astype(np.uint16)
    lower = str(path).lower()
    if lower.endswith((".tif", ".tiff")):
        import tifffile

        return atomic_write(path, lambda tmp: tifffile.imwrite(tmp, labels))
    if lower.endswith((".nii.gz", ".nii")):
        import nibabel as nib

        image = nib.Nifti1Image(np.ascontiguousarray(labels.T), affine=np.eye(4))
        return atomic_write(path, lambda tmp: nib.save(image, tmp))
    if lower.endswith(".png"):
        return write_png(path, labels)
    raise ValueError(f"{path}: unsupported label file type; use .tif, .png or .nii.gz")
