"""Shared fixtures: the real shared data root and a per-session cache for converted labels."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from monai_scribble.constants import DATA_ENV_VAR

torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path:
    """``$MONAI_SCRIBBLE_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get(DATA_ENV_VAR)
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def require_dir(path: Path) -> Path:
    """Skip (with the reason) when a real-data folder is absent, e.g. outside CI without ../shared/data."""
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set ${DATA_ENV_VAR} to the folder holding dsb2018/ and monuseg/)")
    return path


@pytest.fixture(scope="session")
def dsb_stage_dir() -> Path:
    return require_dir(shared_data_root() / "dsb2018" / "stage1_train")


@pytest.fixture(scope="session")
def monuseg_root() -> Path:
    return require_dir(shared_data_root() / "monuseg")
