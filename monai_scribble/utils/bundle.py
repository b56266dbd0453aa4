"""Where the bundle lives when a config runs: the repository's bundle folder, or a deployed copy."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["BUNDLE_IN_REPOSITORY", "bundle_root"]

BUNDLE_IN_REPOSITORY = Path("bundles") / "scribble_cell_segmentation"
"""The bundle folder relative to the repository root."""


def bundle_root(cwd: str | os.PathLike | None = None) -> str:
    """The bundle folder: ``bundles/scribble_cell_segmentation`` when run from the repository root, else
    the current folder (a deployed bundle, e.g. the model folder of a MONAI Label app)."""
    here = Path(cwd or os.getcwd())
    inside = here / BUNDLE_IN_REPOSITORY
    return str((inside if (inside / "configs").is_dir() else here).resolve())
