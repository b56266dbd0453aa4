"""Label values shared by every module (one constant, one place).

Scribble and pseudo-label tensors use the Scribble2Label convention: ``0`` background, ``1`` foreground
(nucleus) and :data:`IGNORE` for unlabeled pixels. The zero-unlabeled file format drawn by napari and
MONAI Label (``0`` unlabeled, ``1`` background, ``2`` foreground) is converted at the file boundary only
(see :mod:`monai_scribble.data.scribbles`).
"""

from __future__ import annotations

BACKGROUND: int = 0
FOREGROUND: int = 1
IGNORE: int = 250
"""Value of unlabeled pixels in scribble, pseudo-label and contrastive label maps (S2L-compatible)."""

DATA_ENV_VAR = "MONAI_SCRIBBLE_DATA"
"""Environment variable pointing at the shared data root (holding ``dsb2018/`` and ``monuseg/``)."""

CACHE_ENV_VAR = "MONAI_SCRIBBLE_CACHE"
"""Environment variable overriding the on-disk cache root (default ``~/.cache/monai_scribble``)."""

__all__ = ["BACKGROUND", "FOREGROUND", "IGNORE", "DATA_ENV_VAR", "CACHE_ENV_VAR"]
