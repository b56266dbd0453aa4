from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from monai_scribble.errors import DataError
from monai_scribble.data.image_io import (
    file_stem,
    image_to_rgb_float,
    read_array,
    read_image,
    read_instance_label,
    write_png,
)


@pytest.mark.parametrize(
    "array, expected_pixel",
    [
        (np.full((4, 5), 51, np.uint8), (0.2, 0.2, 0.2)),  # gray -> replicated
        (np.dstack([np.full((4, 5), v, np.uint8) for v in (255, 0, 51, 7)]), (1.0, 0.0, 0.2)),  # RGBA: alpha dropped
        (np.full((4, 5), 65535, np.uint16), (1.0, 1.0, 1.0)),  # 16-bit full range
        (np.full((4, 5), 2000, np.uint16), (1.0, 1.0, 1.0)),  # 12-bit data: by image max
        (np.dstack([np.full((4, 5), v, np.uint8) for v in (0, 255)]), (0.0, 0.0, 0.0)),  # gray + alpha
    ],
)
def test_image_to_rgb_float(array, expected_pixel):
    rgb = image_to_rgb_float(array)
    assert rgb.shape == (4, 5, 3) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb[0, 0], expected_pixel, atol=1e-6)


def test_float_image_min_max_and_nan():
    rgb = image_to_rgb_float(np.array([[1.0, 3.0]], np.float32))
    np.testing.assert_allclose(rgb[0, :, 0], [0.0, 1.0])
    with pytest.raises(DataError, match="x.tif: image contains NaN"):
        image_to_rgb_float(np.array([[np.nan, 1.0]]), "x.tif")


@pytest.mark.parametrize("suffix", [".png", ".tif", ".nii.gz", ".npy"])
def test_read_formats(tmp_path, suffix):
    array = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    path = tmp_path / f"img{suffix}"
    if suffix == ".nii.gz":
        nib.save(nib.Nifti1Image(array.T.copy(), np.eye(4)), str(path))  # NIfTI stores (x, y)
    elif suffix == ".npy":
        np.save(path, array)
    else:
        Image.fromarray(array).save(path)
    np.testing.assert_array_equal(read_array(path), array)
    assert read_instance_label(path).max() == 11000
    assert file_stem(path) == "img"


@pytest.mark.parametrize(
    "content, name, message",
    [
        (None, "missing.png", "file not found"),
        (b"\x89PNG\r\n\x1a\ntruncated", "broken.png", "unreadable or corrupt image"),
        (b"II*\x00garbage", "broken.tif", "unreadable or corrupt image"),
        (b"hello", "notes.txt", "unsupported file type"),
    ],
)
def test_bad_files_name_the_file(tmp_path, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        read_image(path)
    assert err.value.path == str(path) and str(err.value).startswith(str(path))


@pytest.mark.parametrize(
    "array, message",
    [
        (np.dstack([np.zeros((3, 3), np.uint8), np.ones((3, 3), np.uint8), np.zeros((3, 3), np.uint8)]), "must have one channel"),
        (np.array([[0.5, 1.0]], np.float32), "non-integer values"),
        (np.array([[-1, 2]], np.int16), "negative ids"),
    ],
)
def test_bad_instance_labels(tmp_path, array, message):
    path = tmp_path / "label.npy"
    np.save(path, array)
    with pytest.raises(DataError, match=message):
        read_instance_label(path)


def test_write_png_16_bit(tmp_path):
    labels = np.array([[0, 300], [65535, 2]], np.int32)
    path = write_png(tmp_path / "sub" / "l.png", labels)
    np.testing.assert_array_equal(read_instance_label(path), labels)
    with pytest.raises(ValueError, match="do not fit a 16-bit PNG"):
        write_png(tmp_path / "big.png", np.array([[70000]], np.int32))
    assert not (tmp_path / "big.png").exists()


@pytest.mark.parametrize("suffix", [".png", ".tif", ".nii.gz", ".npy"])
def test_image_size_from_headers(tmp_path, suffix):
    from monai_scribble.data.image_io import image_size, read_array, write_label

    labels = np.zeros((7, 9), np.uint16)
    path = tmp_path / f"a{suffix}"
    if suffix == ".npy":
        np.save(path, labels)
    else:
        write_label(path, labels)
    assert image_size(path) == read_array(path).shape[:2] == (7, 9)


def test_image_size_errors(tmp_path):
    from monai_scribble.data.image_io import DataError, image_size

    with pytest.raises(DataError, match="file not found"):
        image_size(tmp_path / "none.png")
    (tmp_path / "bad.png").write_bytes(b"xx")
    with pytest.raises(DataError, match="unreadable or corrupt image"):
        image_size(tmp_path / "bad.png")
