"""Where the real datasets (``dsb2018/``, ``monuseg/``) are looked for when no path is given.

``$MONAI_SCRIBBLE_DATA`` if set, else ``shared/data`` beside the repository that holds this package (the
project's development layout, also used by CI). Installed elsewhere, set the variable or pass paths
(``--dataset_dir``, ``--data_root``) explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path

from monai_scribble.constants import DATA_ENV_VAR

__all__ = ["default_data_root"]

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
"""The folder holding the ``monai_scribble`` package (the repository, for an editable install)."""


def default_data_root() -> Path:
    """``$MONAI_SCRIBBLE_DATA`` if set, else ``<repository>/../shared/data`` (which may not exist)."""
    env = os.environ.get(DATA_ENV_VAR)
    return Path(env).expanduser() if env else REPOSITORY_ROOT.parent / "shared" / "data"
