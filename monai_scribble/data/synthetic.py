"""Seeded synthetic nuclei: the bundle's embedded default dataset and the unit tests' data.

Each image holds elliptical nuclei of varied size, orientation and eccentricity with slightly wavy
outlines; about a third of them are placed against an existing nucleus so that instances touch. Where
two nuclei overlap each pixel goes to the nucleus with the smaller normalised elliptical distance, so
touching nuclei share a boundary and keep distinct ids. Two imaging styles:

- ``"fluorescence"``: dark background, bright gray or blue-tinted nuclei whose brightness varies per
  nucleus, with chromatin-like texture (DSB 2018 fluorescence look);
- ``"brightfield"``: bright background with a faint pink counterstain, darker purple (hematoxylin) or
  gray nuclei rendered by Beer-Lambert absorption (DSB 2018 brightfield/histology look).

Both get an uneven low-frequency illumination, optical blur and Poisson-like plus Gaussian noise. The
generator is vectorised numpy (a Python loop over nuclei only); a 256 x 256 image takes a few
milliseconds.

Reproducibility: image ``i`` of a dataset is drawn from ``numpy.random.default_rng([seed, i])``, so it
does not depend on how many images are generated, and :func:`write_synthetic_dataset` writes
byte-identical files for the same arguments and :data:`GENERATOR_VERSION`.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import ndimage

from monai_scribble.data.image_io import write_png
from monai_scribble.data.records import Sample
from monai_scribble.utils.atomic import atomic_write

__all__ = [
    "GENERATOR_VERSION",
    "STYLES",
    "MIN_SIZE",
    "MIN_INSTANCE_PIXELS",
    "generate_nuclei_image",
    "generate_dataset",
    "write_synthetic_dataset",
]

GENERATOR_VERSION = 1
"""Bumped whenever the generated pixels change, so cached datasets on disk are regenerated."""

STYLES: tuple[str, ...] = ("fluorescence", "brightfield")
MIN_SIZE = 64
"""Smallest allowed image height/width."""
MIN_INSTANCE_PIXELS = 20
"""Every instance id in a generated label map covers at least this many pixels."""

MANIFEST_NAME = "manifest.json"
_DEFAULT_NUM_NUCLEI_256 = (15, 40)  # per 256 x 256 pixels; scaled with the image area by default
_TOUCH_PROBABILITY = 0.35
_MAX_TRIES = 30

# Beer-Lambert optical density vectors (R, G, B), as in colour deconvolution of H&E stains.
_HEMATOXYLIN = np.array([0.650, 0.704, 0.286])
_EOSIN = np.array([0.072, 0.990, 0.105])


# ----------------------------------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------------------------------
def _check_shape(shape: Sequence[int]) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in shape)
        ok = all(float(s) == int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be a pair of integers (H, W), got {shape!r}") from None
    if not ok or h < MIN_SIZE or w < MIN_SIZE:
        raise ValueError(f"shape must be (H, W) with integers H, W >= {MIN_SIZE}, got {tuple(shape)!r}")
    return h, w


def _check_style(style: str) -> str:
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(map(repr, STYLES))}")
    return style


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0):
        return np.random.default_rng(rng)
    raise ValueError(f"rng must be a numpy Generator, a non-negative int seed or None, got {rng!r}")


def _num_range(num_nuclei: int | Sequence[int] | None, h: int, w: int) -> tuple[int, int]:
    if num_nuclei is None:
        scale = h * w / (256 * 256)
        lo, hi = _DEFAULT_NUM_NUCLEI_256
        return max(1, round(lo * scale)), max(1, round(hi * scale))
    if isinstance(num_nuclei, (int, np.integer)) and not isinstance(num_nuclei, bool):
        lo = hi = int(num_nuclei)
    else:
        try:
            lo, hi = (int(v) for v in num_nuclei)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise ValueError(f"num_nuclei must be an int or a (min, max) pair, got {num_nuclei!r}") from None
    if lo < 1 or hi < lo:
        raise ValueError(f"num_nuclei must be >= 1 with min <= max, got {num_nuclei!r}")
    return lo, hi


def _radius_range(radius_range: Sequence[float], h: int, w: int) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in radius_range)
    except (TypeError, ValueError):
        raise ValueError(f"radius_range must be a (min, max) pair, got {radius_range!r}") from None
    if not (3.0 <= lo <= hi <= min(h, w) / 4):
        raise ValueError(
            f"radius_range must satisfy 3 <= min <= max <= min(H, W) / 4 = {min(h, w) / 4:g}, got {radius_range!r}"
        )
    return lo, hi


# ----------------------------------------------------------------------------------------------------
# geometry
# ----------------------------------------------------------------------------------------------------
def _extent(a: np.ndarray, b: np.ndarray, theta: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Distance from the centre of an ellipse (semi-axes a, b, rotated theta) to its edge along ``direction``."""
    phi = direction - theta
    return a * b / np.sqrt((b * np.cos(phi)) ** 2 + (a * np.sin(phi)) ** 2)


def _place_nuclei(rng: np.random.Generator, h: int, w: int, n: int, r_lo: float, r_hi: float) -> np.ndarray:
    """Centres and shapes of up to ``n`` nuclei, rows ``(cy, cx, a, b, theta)``.

    Free nuclei keep a small gap to all others; a "touching" nucleus is put against a random existing
    one so that the two ellipses overlap by a few percent of their extent (the overlap is split later),
    and keeps clear of the rest.
    """
    r_mid = rng.uniform(r_lo, r_hi)  # nuclei of one image have similar sizes, as in real data
    nuclei = np.zeros((0, 5))
    for _ in range(n):
        a = float(np.clip(r_mid * rng.lognormal(0.0, 0.2), r_lo, r_hi))  # semi-major axis
        b = a * rng.uniform(0.55, 1.0)
        theta = rng.uniform(0.0, math.pi)
        touch = len(nuclei) > 0 and rng.random() < _TOUCH_PROBABILITY
        for _ in range(_MAX_TRIES):
            if touch:
                j = int(rng.integers(len(nuclei)))
                alpha = rng.uniform(0.0, 2 * math.pi)
                pj = nuclei[j]
                dist = (_extent(pj[2], pj[3], pj[4], alpha) + _extent(a, b, theta, alpha)) * rng.uniform(0.8, 0.95)
                cy, cx = pj[0] + dist * math.sin(alpha), pj[1] + dist * math.cos(alpha)
                if not (0 <= cy < h and 0 <= cx < w):
                    continue
            else:
                j = -1
                cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            if len(nuclei):
                dy, dx = nuclei[:, 0] - cy, nuclei[:, 1] - cx
                direction = np.arctan2(dy, dx)
                need = _extent(nuclei[:, 2], nuclei[:, 3], nuclei[:, 4], direction) + _extent(a, b, theta, direction)
                clear = np.hypot(dy, dx) >= need * (0.9 if touch else 1.05)
                if j >= 0:
                    clear[j] = True
                if not clear.all():
                    continue
            nuclei = np.vstack([nuclei, [cy, cx, a, b, theta]])
            break
    return nuclei


def _rasterise(rng: np.random.Generator, nuclei: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Instance map (int32, ids 1..N) and normalised elliptical distance map (0 at centres, 1 at edges)."""
    labels = np.zeros((h, w), np.int32)
    best = np.full((h, w), np.inf, np.float32)
    for k, (cy, cx, a, b, theta) in enumerate(nuclei.tolist(), start=1):
        amp = rng.uniform(0.0, 0.08, size=2).tolist()  # wavy outline: 2- and 3-fold harmonics of the radius
        phase = rng.uniform(0.0, 2 * math.pi, size=2).tolist()
        half = int(math.ceil(a * (1 + sum(amp)))) + 1
        y0, y1 = max(0, int(cy) - half), min(h, int(cy) + half + 2)
        x0, x1 = max(0, int(cx) - half), min(w, int(cx) + half + 2)
        dy = (np.arange(y0, y1, dtype=np.float32) - cy)[:, None]
        dx = (np.arange(x0, x1, dtype=np.float32) - cx)[None, :]
        c, s = math.cos(theta), math.sin(theta)
        u, v = (dx * c + dy * s) / a, (dy * c - dx * s) / b
        phi = np.arctan2(v, u)
        d = np.sqrt(u * u + v * v) / (1 + amp[0] * np.cos(2 * phi + phase[0]) + amp[1] * np.cos(3 * phi + phase[1]))
        box_best = best[y0:y1, x0:x1]
        win = (d < 1.0) & (d < box_best)  # nearest (normalised) centre wins the overlap
        box_best[win] = d[win]
        labels[y0:y1, x0:x1][win] = k
    return _clean_labels(labels), best


def _clean_labels(labels: np.ndarray) -> np.ndarray:
    """Keep the largest connected piece of each instance, drop instances < MIN_INSTANCE_PIXELS, renumber 1..N."""
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        mask = labels[sl] == k
        parts, n_parts = ndimage.label(mask)
        if n_parts > 1:
            largest = 1 + int(np.argmax(np.bincount(parts.ravel())[1:]))
            labels[sl][mask & (parts != largest)] = 0
    sizes = np.bincount(labels.ravel())
    keep = sizes >= MIN_INSTANCE_PIXELS
    keep[0] = False
    lut = np.zeros(len(sizes), np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[labels]


# ----------------------------------------------------------------------------------------------------
# rendering
# ----------------------------------------------------------------------------------------------------
def _smooth_field(rng: np.random.Generator, h: int, w: int, n_waves: int = 3) -> np.ndarray:
    """Low-frequency field in ``[0, 1]``: a linear gradient plus a few long-wavelength plane waves."""
    y = np.linspace(0.0, 2 * math.pi, h, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 2 * math.pi, w, dtype=np.float32)[None, :]
    gy, gx = (rng.normal(0.0, 1.0, size=2) / (2 * math.pi)).tolist()
    field = gy * y + gx * x
    for _ in range(n_waves):  # cos(fy*y + fx*x + p), separable: cos(fy*y)cos(fx*x + p) - sin(fy*y)sin(fx*x + p)
        fy, fx = rng.uniform(-1.2, 1.2, size=2).tolist()
        amplitude, p = rng.uniform(0.3, 1.0), rng.uniform(0, 2 * math.pi)
        field += amplitude * (np.cos(fy * y) * np.cos(fx * x + p) - np.sin(fy * y) * np.sin(fx * x + p))
    low, high = float(field.min()), float(field.max())
    field -= low
    field *= 1.0 / max(high - low, 1e-6)
    return field


def _texture(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance blobby noise (chromatin texture)."""
    t = ndimage.gaussian_filter(rng.standard_normal((h, w), dtype=np.float32), sigma)
    return t / max(float(t.std()), 1e-6)


def _nucleus_profile(rng: np.random.Generator, labels: np.ndarray, dist: np.ndarray, n: int,
                     strength: tuple[float, float], texture_amp: float, sigma: float) -> np.ndarray:
    """Per-nucleus strength x slightly domed profile x texture, zero outside nuclei (float32)."""
    per_nucleus = np.concatenate([[0.0], rng.uniform(*strength, size=n)]).astype(np.float32)
    inside = labels > 0
    d = np.where(inside, np.minimum(dist, 1.0), 1.0)
    dome = 0.8 + 0.2 * (1.0 - d * d)
    texture = 1.0 + texture_amp * _texture(rng, *labels.shape, sigma)
    return per_nucleus[labels] * dome * np.clip(texture, 0.2, None) * inside


def _noise(rng: np.random.Generator, signal: np.ndarray, photons: float, sigma: float) -> np.ndarray:
    """Poisson-like (variance proportional to the signal) plus Gaussian read noise, as one Gaussian draw."""
    std = np.sqrt(np.clip(signal, 0.0, None) * (1.0 / photons) + sigma * sigma)
    return signal + std * rng.standard_normal(signal.shape, dtype=np.float32)


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def _render_fluorescence(rng: np.random.Generator, labels: np.ndarray, dist: np.ndarray) -> np.ndarray:
    h, w = labels.shape
    n = int(labels.max())
    nuclei = _nucleus_profile(rng, labels, dist, n, (0.4, 1.0), rng.uniform(0.08, 0.25), rng.uniform(0.8, 1.6))
    nuclei = ndimage.gaussian_filter(nuclei, rng.uniform(0.6, 1.4))
    illumination = 1.0 - rng.uniform(0.1, 0.35) * _smooth_field(rng, h, w)  # vignetting / uneven excitation
    background = rng.uniform(0.01, 0.08) * (1.0 + rng.uniform(0.2, 1.0) * _smooth_field(rng, h, w))
    signal = rng.uniform(0.6, 1.0) * illumination * nuclei + background
    signal = _noise(rng, signal, photons=rng.uniform(80, 400), sigma=rng.uniform(0.004, 0.02))
    if rng.random() < 0.6:  # gray, like most DSB fluorescence images
        tint = np.ones(3, np.float32)
    else:  # DAPI/Hoechst blue to cyan
        tint = np.array([rng.uniform(0.1, 0.45), rng.uniform(0.3, 0.8), 1.0], np.float32)
    return _to_uint8(signal[..., None] * tint)


def _render_brightfield(rng: np.random.Generator, labels: np.ndarray, dist: np.ndarray) -> np.ndarray:
    h, w = labels.shape
    n = int(labels.max())
    density = _nucleus_profile(rng, labels, dist, n, (0.5, 1.3), rng.uniform(0.15, 0.35), rng.uniform(0.8, 1.6))
    density = ndimage.gaussian_filter(density, rng.uniform(0.6, 1.4))
    if rng.random() < 0.7:  # hematoxylin purple, hue jittered per image
        stain = np.clip(_HEMATOXYLIN + rng.normal(0.0, 0.05, size=3), 0.1, None)
    else:  # unstained / gray brightfield
        stain = np.full(3, 0.6) + rng.normal(0.0, 0.02, size=3)
    counterstain = rng.uniform(0.0, 0.3) * _smooth_field(rng, h, w, n_waves=5)
    counterstain = counterstain * (1.0 + 0.3 * _texture(rng, h, w, sigma=6.0))  # patchy cytoplasm/stroma
    stain, eosin = stain.astype(np.float32), _EOSIN.astype(np.float32)
    optical_density = density[..., None] * stain + counterstain[..., None] * eosin
    light = rng.uniform(0.85, 0.98) * (1.0 - rng.uniform(0.05, 0.2) * _smooth_field(rng, h, w))
    white = np.clip(1.0 + rng.normal(0.0, 0.02, size=3), 0.9, 1.0).astype(np.float32)  # white balance
    rgb = light[..., None] * white * np.exp(-optical_density)
    rgb = _noise(rng, rgb, photons=rng.uniform(200, 800), sigma=rng.uniform(0.003, 0.012))
    return _to_uint8(rgb)


# ----------------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------------
def generate_nuclei_image(
    shape: Sequence[int] = (256, 256),
    style: str = "fluorescence",
    rng: np.random.Generator | int | None = None,
    num_nuclei: int | Sequence[int] | None = None,
    radius_range: Sequence[float] = (5, 16),
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic nuclei image with its instance label map.

    Args:
        shape: ``(H, W)``, both at least :data:`MIN_SIZE`.
        style: ``"fluorescence"`` (dark background, bright nuclei) or ``"brightfield"`` (bright
            background, dark purple/gray nuclei).
        rng: a ``numpy.random.Generator`` (consumed), an int seed, or ``None`` for fresh entropy.
        num_nuclei: number of nuclei to place, an int or an inclusive ``(min, max)`` range; ``None``
            means 15-40 per 256 x 256 pixels, scaled with the image area. Fewer may result when the
            image is too crowded to place them all or a border-clipped nucleus keeps fewer than
            :data:`MIN_INSTANCE_PIXELS` pixels.
        radius_range: ``(min, max)`` semi-major axis in pixels, ``3 <= min <= max <= min(H, W) / 4``.

    Returns:
        ``(image, label)``: ``uint8 (H, W, 3)`` RGB image and ``int32 (H, W)`` instance map with
        0 background and ids ``1..N`` consecutive, each covering at least :data:`MIN_INSTANCE_PIXELS`.

    Raises:
        ValueError: invalid shape, style, rng, num_nuclei or radius_range (the message quotes it).
    """
    h, w = _check_shape(shape)
    style = _check_style(style)
    lo, hi = _num_range(num_nuclei, h, w)
    r_lo, r_hi = _radius_range(radius_range, h, w)
    rng = _as_rng(rng)
    n = int(rng.integers(lo, hi + 1))
    nuclei = _place_nuclei(rng, h, w, n, r_lo, r_hi)
    labels, dist = _rasterise(rng, nuclei, h, w)
    render = _render_fluorescence if style == "fluorescence" else _render_brightfield
    return render(rng, labels, dist), labels


def _image_id(index: int) -> str:
    return f"synth_{index:03d}"


def _image_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def generate_dataset(
    num_images: int,
    seed: int,
    shape: Sequence[int] = (256, 256),
    styles: Sequence[str] = STYLES,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``num_images`` synthetic images as ``(id, image, label)`` with ids ``synth_000``, ``synth_001``, ...

    Image ``i`` uses style ``styles[i % len(styles)]`` and ``numpy.random.default_rng([seed, i])``, so
    it is the same whatever ``num_images`` is.

    Raises:
        ValueError: ``num_images < 1``, negative seed, empty or unknown styles, invalid shape.
    """
    num_images = _check_int("num_images", num_images, 1)
    seed = _check_int("seed", seed, 0)
    shape = _check_shape(shape)
    styles = _check_styles(styles)
    out = []
    for i in range(num_images):
        image, label = generate_nuclei_image(shape, styles[i % len(styles)], rng=_image_rng(seed, i))
        out.append((_image_id(i), image, label))
    return out


def _check_styles(styles: Sequence[str]) -> tuple[str, ...]:
    if isinstance(styles, str):
        styles = (styles,)
    styles = tuple(styles)
    if not styles:
        raise ValueError(f"styles must name at least one of {', '.join(map(repr, STYLES))}, got {styles!r}")
    for style in styles:
        _check_style(style)
    return styles


def write_synthetic_dataset(
    output_dir: str | os.PathLike,
    num_images: int = 24,
    seed: int = 0,
    shape: Sequence[int] = (256, 256),
    styles: Sequence[str] = STYLES,
) -> list[Sample]:
    """Write (or reuse) a synthetic dataset: ``images/<id>.png``, ``labels/<id>.png``, ``manifest.json``.

    Images are RGB ``uint8`` PNGs, labels ``uint16`` PNGs; every file is written atomically and the
    manifest last, so an interrupted run is simply redone. When ``manifest.json`` already records the
    same generator version and arguments and all listed files exist, nothing is written and the same
    samples are returned. Files of a previous dataset in the folder that the new one does not list are
    removed. The same arguments give byte-identical files.

    Returns:
        one :class:`Sample` per image (absolute paths, ``scribble=None``).

    Raises:
        ValueError: invalid arguments (see :func:`generate_dataset`).
    """
    num_images = _check_int("num_images", num_images, 1)
    seed = _check_int("seed", seed, 0)
    shape = _check_shape(shape)
    styles = _check_styles(styles)
    root = Path(output_dir).expanduser().absolute()
    ids = [_image_id(i) for i in range(num_images)]
    samples = [
        Sample(id=i, image=str(root / "images" / f"{i}.png"), label=str(root / "labels" / f"{i}.png")) for i in ids
    ]
    manifest = {
        "generator": __name__,
        "version": GENERATOR_VERSION,
        "num_images": num_images,
        "seed": seed,
        "shape": list(shape),
        "styles": list(styles),
        "ids": ids,
    }
    manifest_path = root / MANIFEST_NAME
    old = _read_manifest(manifest_path)
    if old == manifest and all(Path(s.image).is_file() and Path(s.label).is_file() for s in samples):
        return samples
    if isinstance(old, dict) and isinstance(old.get("ids"), list):  # remove files only we wrote and no longer list
        for stale in set(map(str, old["ids"])) - set(ids):
            for sub in ("images", "labels"):
                path = root / sub / f"{Path(stale).name}.png"
                if path.is_file():
                    path.unlink()
    for sample, (_, image, label) in zip(samples, generate_dataset(num_images, seed, shape, styles)):
        write_png(sample.image, image)
        write_png(sample.label, label.astype(np.uint16))
    text = json.dumps(manifest, indent=2) + "\n"
    atomic_write(manifest_path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return samples


def _read_manifest(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
