"""On-disk cache locations for converted data (instance maps from DSB mask folders or MoNuSeg XML).

The cache root is ``$MONAI_SCRIBBLE_CACHE`` or ``~/.cache/monai_scribble``. Each source dataset gets
its own folder keyed by the real path of its directory, so two copies of a dataset never share a cache
and the read-only source is never written to.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from monai_scribble.constants import CACHE_ENV_VAR

__all__ = ["default_cache_root", "dataset_cache_dir"]


def default_cache_root() -> Path:
    """``$MONAI_SCRIBBLE_CACHE`` if set, else ``~/.cache/monai_scribble``."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "monai_scribble"


def dataset_cache_dir(kind: str, source_dir: str | os.PathLike, cache_root: str | os.PathLike | None = None) -> Path:
    """Cache folder for one source dataset: ``<cache_root>/<kind>/<name>-<hash of its real path>``.

    Args:
        kind: dataset kind, e.g. ``"dsb2018"`` or ``"monuseg_xml"``.
        source_dir: the dataset directory being converted.
        cache_root: defaults to :func:`default_cache_root`.
    """
    source = Path(source_dir).resolve()
    digest = hashlib.sha1(str(source).encode("utf-8")).hexdigest()[:12]
    root = Path(cache_root).expanduser() if cache_root is not None else default_cache_root()
    return root / kind / f"{source.name}-{digest}"
